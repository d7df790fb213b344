"""One discovery path and one registry for langpacks: built-ins, extra folders, installed packages.

Order of precedence (a later one overrides an earlier one with the same code):
built-in langpacks < ``ltk.langpacks`` entry points < ``LTK_LANGPACK_PATH`` < ``--langpack-path``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from ltk.errors import LtkError, UsageError, ValidationError
from ltk.langpack.load import LANGPACK_FILE, Langpack, load_langpack
from ltk.languages import canonical_language, lookup_key

ENV_VAR = "LTK_LANGPACK_PATH"
ENTRY_POINT_GROUP = "ltk.langpacks"


def builtin_langpacks_dir() -> Path:
    """The shipped langpacks: inside the wheel when installed, the repo's ``langpacks/`` in a checkout."""
    packaged = resources.files("ltk").joinpath("_builtin", "langpacks")
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "langpacks"
    return checkout


def _langpack_folders(base: Path) -> Iterable[Path]:
    """A folder is either one langpack or a folder of langpacks (names starting with _ are skipped)."""
    if (base / LANGPACK_FILE).is_file():
        yield base
        return
    if not base.is_dir():
        return
    for child in sorted(base.iterdir()):
        if child.name.startswith(("_", ".")):
            continue
        if (child / LANGPACK_FILE).is_file():
            yield child


def _entry_point_dirs() -> list[tuple[str, Path]]:
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            path = Path(target() if callable(target) else target)
        except Exception as exc:  # a broken community package must not break ltk
            raise LtkError(f"langpack entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        found.append((ep.name, path))
    return found


def search_path(extra: Iterable[str | Path] = ()) -> list[tuple[str, Path]]:
    """Every (origin, folder) ltk looks in, lowest precedence first."""
    places: list[tuple[str, Path]] = [("builtin", builtin_langpacks_dir())]
    places += [(f"entry-point:{name}", path) for name, path in _entry_point_dirs()]
    env = os.environ.get(ENV_VAR, "")
    places += [("env", Path(p)) for p in env.split(os.pathsep) if p]
    places += [("path", Path(p)) for p in extra]
    return places


@dataclass
class Registry:
    packs: dict[str, Langpack] = field(default_factory=dict)  # by folder code
    broken: dict[str, ValidationError] = field(default_factory=dict)  # folder path -> problems
    index: dict[str, str] = field(default_factory=dict)  # any lookup key -> folder code

    def add(self, pack: Langpack) -> None:
        self.packs[pack.code] = pack
        lang = pack.spec.language
        keys = {pack.code, lang.iso639_3, lang.flores, lang.flores.split("_")[0], *lang.aliases}
        if lang.iso639_1:
            keys.add(lang.iso639_1)
        for key in keys:
            self.index[lookup_key(key)] = pack.code
            self.index[key.lower()] = pack.code

    def get(self, code: str) -> Langpack:
        """Find a langpack by any of its codes: ``sw``, ``swa``, ``swh`` and ``swh_Latn`` are the same."""
        raw = code.strip().lower().replace("-", "_")
        for key in (raw, lookup_key(code)):
            if key in self.index:
                return self.packs[self.index[key]]
        canonical = canonical_language(code)
        if canonical and lookup_key(canonical) in self.index:
            return self.packs[self.index[lookup_key(canonical)]]
        for path, err in self.broken.items():
            if Path(path).name.lower() == raw:
                raise err
        suggestions = difflib.get_close_matches(raw, sorted(self.index), n=3, cutoff=0.5)
        names = {self.packs[self.index[s]].spec.language.name.lower(): self.index[s] for s in self.index}
        by_name = [names[n] for n in difflib.get_close_matches(raw, names, n=2, cutoff=0.6)]
        hints = list(dict.fromkeys([*by_name, *suggestions]))
        hint = f" Did you mean: {', '.join(hints)}?" if hints else ""
        raise UsageError(
            f"No langpack for {code!r}.{hint} Run `ltk langpacks list` to see them all, "
            f"or `ltk langpacks new {code}` to start one."
        )

    def __iter__(self):
        return iter(sorted(self.packs.values(), key=lambda p: p.code))

    def __len__(self) -> int:
        return len(self.packs)


def load_registry(extra_paths: Iterable[str | Path] = ()) -> Registry:
    registry = Registry()
    for origin, base in search_path(extra_paths):
        if origin == "path" and not base.exists():
            raise UsageError(f"--langpack-path {base}: no such folder")
        for folder in _langpack_folders(base):
            try:
                registry.add(load_langpack(folder, origin=origin))
            except ValidationError as err:
                registry.broken[str(folder)] = err
    return registry


def get_langpack(code_or_path: str, extra_paths: Iterable[str | Path] = ()) -> Langpack:
    """A langpack by code (``sw``) or by folder path (``./my-pack``)."""
    as_path = Path(code_or_path)
    if (as_path / LANGPACK_FILE).is_file() or as_path.name == LANGPACK_FILE:
        return load_langpack(as_path)
    return load_registry(extra_paths).get(code_or_path)
