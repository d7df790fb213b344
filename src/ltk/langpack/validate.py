"""`ltk langpacks validate`: check folders or files and report every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ltk.errors import Problem, ValidationError
from ltk.langpack.load import LANGPACK_FILE, load_langpack
from ltk.registry import load_registry


def validate_paths(paths: Iterable[Path], extra_paths: Iterable[str | Path] = ()) -> tuple[bool, str]:
    """Validate the given langpacks (or all known ones). Returns (all valid, report text)."""
    paths = list(paths)
    problems: list[Problem] = []
    checked: list[str] = []
    if paths:
        for path in paths:
            folder = path.parent if path.name == LANGPACK_FILE or path.is_file() else path
            if not (folder / LANGPACK_FILE).is_file():
                problems.append(
                    Problem(str(path), "", f"no {LANGPACK_FILE} here", fix="point at a langpack folder")
                )
                continue
            try:
                pack = load_langpack(folder)
                checked.append(f"ok  {pack.code} (version {pack.spec.version})")
            except ValidationError as err:
                problems.extend(err.problems)
    else:
        registry = load_registry(extra_paths)
        checked = [f"ok  {p.code} (version {p.spec.version})" for p in registry]
        for err in registry.broken.values():
            problems.extend(err.problems)
    if problems:
        return False, str(ValidationError(problems))
    return True, "\n".join([*checked, f"{len(checked)} langpack(s) valid."])
