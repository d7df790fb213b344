"""Reading and validating langpack folders. Every problem is gathered and reported at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ltk.errors import Problem, ValidationError
from ltk.langpack.include import Resolved, resolve_includes
from ltk.langpack.schema import CANONICAL_FIELDS, LangpackSpec, LocalSource, cross_check
from ltk.validation import validate_model

LANGPACK_FILE = "langpack.yml"


@dataclass(frozen=True)
class Langpack:
    """A validated langpack: its spec and the folder it lives in."""

    spec: LangpackSpec
    root: Path
    origin: str = "builtin"  # builtin | path | entry-point:<name>
    includes: tuple[str, ...] = ()  # templates merged under the pack's own keys (relative paths)

    @property
    def code(self) -> str:
        """The folder name, which is the code a user types (``sw``, ``ny``)."""
        return self.root.name

    @property
    def file(self) -> Path:
        return self.root / LANGPACK_FILE

    def resolve(self, relative: str) -> Path:
        """A path from the langpack, resolved inside its folder (never outside, symlinks included)."""
        return resolve_inside(self.root, relative)


def resolve_inside(root: Path, relative: str) -> Path:
    root = root.resolve()
    try:
        target = (root / relative).resolve()
    except (OSError, ValueError, RuntimeError):  # NUL bytes, symlink loops
        target = None
    if target is None or (target != root and root not in target.parents):
        raise ValidationError(
            [
                Problem(
                    str(root),
                    "path",
                    "path escapes the langpack folder",
                    relative,
                    "keep data inside the folder",
                )
            ]
        )
    return target


# Fixes for the schema's own checks (value_error), by the last key of the path.
FIELD_FIXES = {
    "flores": "use a code listed by `ltk langpacks codes`, e.g. swh_Latn",
    "iso639_1": "use two lower-case letters (e.g. sw), or null if the language has none",
    "iso639_3": "use three lower-case letters, e.g. swa",
    "script": "use an ISO 15924 code such as Latn, Ethi or Deva",
    "language": "make script the same as the part of flores after the underscore",
    "tiers": "list positive example counts in increasing order, e.g. [1000, 65000, 950000]",
    "path": "use a relative path inside the langpack folder, e.g. data/corpus.txt",
    "url": "use an https:// URL",
    "field_map": f"map only these fields: {', '.join(CANONICAL_FIELDS)}",
    "reader": "use one of the readers listed in the message",
    "english": "add an English source (or set ratio: 0 for an ablation), and keep ratio below 1",
    "local": "set file_format: txt | jsonl | parquet",
    "instructions": "add a translate, ready_made or from_parallel entry",
    "translate": "set records: alpaca | sharegpt | messages on that source",
    "ready_made": "set records: alpaca | sharegpt | messages on that source",
    "quality": "make min_length_ratio smaller than max_length_ratio",
    "filters": "make min_chars smaller than max_chars",
    "sources": "check this source's keys against its kind (see CONTRIBUTING.md)",
}


def validate_document(
    data: Any, file: str, root: Path | None = None, resolved: Resolved | None = None
) -> LangpackSpec:
    """Validate a parsed langpack document. Raises ValidationError listing every problem, each naming
    the file its key came from (the pack, or a template it includes: ``resolved``)."""
    try:
        return _validate_document(data, file, root)
    except ValidationError as err:
        if resolved is None or not resolved.includes:
            raise
        problems = []
        for p in err.problems:
            source = resolved.file_of(p.key, file) if p.file == file else p.file
            if source != file:
                p = replace(p, file=f"{source} (included by {file})")
            problems.append(p)
        raise ValidationError(problems) from None


def _validate_document(data: Any, file: str, root: Path | None = None) -> LangpackSpec:
    if not isinstance(data, dict):
        raise ValidationError(
            [
                Problem(
                    file,
                    "(top level)",
                    "a langpack must be a YAML mapping",
                    type(data).__name__,
                    "start from `ltk langpacks new CODE`",
                )
            ]
        )
    spec = validate_model(LangpackSpec, data, file, what="a langpack", field_fixes=FIELD_FIXES)
    problems = [Problem(file, key, msg, value, fix) for key, msg, value, fix in cross_check(spec)]
    if root is not None:
        problems.extend(_check_local_paths(spec, file, root))
    if problems:
        raise ValidationError(problems)
    return spec


def _check_local_paths(spec: LangpackSpec, file: str, root: Path) -> list[Problem]:
    """Symlinks can still point outside the folder: resolve every local path to be sure."""
    problems = []
    sections = {
        "corpus.sources": spec.corpus.sources,
        "english.sources": spec.english.sources,
        "instructions.translate": spec.instructions.translate,
        "instructions.ready_made": spec.instructions.ready_made,
    }
    for section, sources in sections.items():
        for i, source in enumerate(sources):
            if isinstance(source, LocalSource):
                base = source.path.split("*", 1)[0] or "."
                try:
                    resolve_inside(root, base)
                except ValidationError:
                    problems.append(
                        Problem(
                            file,
                            f"{section}[{i}].path",
                            "path escapes the langpack folder",
                            source.path,
                            "keep data inside the langpack folder",
                        )
                    )
    return problems


def load_langpack(folder: str | Path, origin: str = "path") -> Langpack:
    """Load and validate ``folder/langpack.yml``. Raises ValidationError with every problem found."""
    root = Path(folder)
    if root.is_file():
        root = root.parent
    file = root / LANGPACK_FILE
    resolved = resolve_includes(file)
    spec = validate_document(resolved.data, str(file), root, resolved)
    return Langpack(spec=spec, root=root.resolve(), origin=origin, includes=tuple(resolved.includes))
