"""Reading and validating langpack folders. Every problem is gathered and reported at once."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ltk.errors import Problem, ValidationError
from ltk.langpack.schema import CANONICAL_FIELDS, LangpackSpec, LocalSource, cross_check

LANGPACK_FILE = "langpack.yml"


@dataclass(frozen=True)
class Langpack:
    """A validated langpack: its spec and the folder it lives in."""

    spec: LangpackSpec
    root: Path
    origin: str = "builtin"  # builtin | path | entry-point:<name>

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


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain values", key_node.start_mark
            ) from exc
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Safe-load one YAML file; raises ValidationError naming the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError([Problem(str(path), "", "file not found", fix="check the path")]) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ValidationError(
            [Problem(str(path), "", f"cannot read file: {exc}", fix="save it as UTF-8")]
        ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        fix = "fix the YAML syntax at that place"
        if str(problem).startswith("duplicate key"):
            fix = "keep only one of the two entries with that key"
        raise ValidationError([Problem(str(path), where, f"malformed YAML: {problem}", fix=fix)]) from None
    except RecursionError:
        raise ValidationError(
            [Problem(str(path), "", "YAML nested too deeply", fix="flatten the document")]
        ) from None
    except Exception as exc:
        # PyYAML's safe constructors raise ValueError, IndexError, AttributeError... for values such as
        # 2001-02-30 or a bare `!!int`: on untrusted input every one of them is the user's malformed YAML.
        raise ValidationError(
            [
                Problem(
                    str(path),
                    "",
                    f"malformed YAML value: {exc or type(exc).__name__}",
                    fix="quote the value if it is meant as text, e.g. '2001-02-30'",
                )
            ]
        ) from None


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


_UNION_TAGS = ("hf", "local", "url", "package", "ref")


def _key_path(loc: tuple) -> str:
    out = ""
    for i, part in enumerate(loc):
        prev = loc[i - 1] if i else None
        # pydantic's union branch tags are not keys a user wrote. A tag follows a list index
        # (corpus.sources[0]) or a parallel set's target/english; elsewhere 'url' is the url field.
        after_union = isinstance(prev, int) or (
            prev in ("target", "english") and i >= 2 and loc[i - 2] != "eval"
        )
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part in _UNION_TAGS and after_union) or "[" in str(part) or "function-" in str(part):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Valid field names at the parent of ``loc``, to suggest the key a user meant."""
    from typing import get_args

    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                # a union tag such as 'hf' selects the branch
                current = _branch(current, str(part))
                continue
            current = _unwrap(field.annotation)
        else:
            current = _branch(current, str(part))
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    names: set[str] = set()
    for arg in get_args(current) if current is not None else ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            names.update(arg.model_fields)
    return sorted(names)


def _unwrap(annotation: Any) -> Any:
    from typing import get_args

    args = [a for a in get_args(annotation) if a is not type(None)]
    while args and not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        if len(args) == 1:
            annotation = args[0]
            args = [a for a in get_args(annotation) if a is not type(None)]
        else:
            # list[X] or Annotated[Union[...], ...]: descend into the first model-bearing argument
            for a in args:
                if isinstance(a, type) and issubclass(a, BaseModel):
                    return annotation
            annotation = args[0]
            args = [a for a in get_args(annotation) if a is not type(None)]
    return annotation


def _branch(current: Any, tag: str) -> Any:
    from typing import get_args

    for arg in get_args(current) if current is not None else ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            kind = arg.model_fields.get("kind")
            if kind is not None and tag in get_args(kind.annotation):
                return arg
    return current


_FIXES = {
    "missing": "add this key",
    "extra_forbidden": "remove this key (unknown keys are errors)",
    "union_tag_invalid": "set kind to one of: hf, local, url, package",
    "union_tag_not_found": "add kind: hf | local | url | package",
    "literal_error": "use one of the allowed values",
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
    "less_than": "use a smaller number",
    "less_than_equal": "use a smaller number",
    "string_pattern_mismatch": "use only letters, digits, '.', '_' and '-' (hub ids look like owner/name)",
    "too_short": "add at least one entry",
    "string_too_short": "give a non-empty value",
    "int_parsing": "write a whole number, e.g. 1000",
    "int_type": "write a whole number, e.g. 1000",
    "int_from_float": "write a whole number, e.g. 1000",
    "float_parsing": "write a number, e.g. 0.25",
    "float_type": "write a number, e.g. 0.25",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write a text value (quote it if it looks like a number)",
    "list_type": "write a YAML list, e.g. [a, b] or one '- item' per line",
    "dict_type": "write a mapping: one 'key: value' per line",
    "model_type": "write a mapping: one 'key: value' per line",
    "model_attributes_type": "write a mapping: one 'key: value' per line",
    "finite_number": "write a finite number",
}
# Fixes for the schema's own checks (value_error), by the last key of the path.
_FIELD_FIXES = {
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
}


def problems_from_pydantic(file: str, exc: PydanticValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        key = _key_path(loc)
        kind = err.get("type", "")
        message = err.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        value = err.get("input")
        fix = _FIXES.get(kind, "")
        if not fix:
            last = next((str(p) for p in reversed(key.split(".")) if p), "")
            fix = _FIELD_FIXES.get(last.split("[")[0], "") or _FIELD_FIXES.get(
                str(loc[-1]) if loc else "", ""
            )
        if not fix and kind == "value_error" and loc and loc[-1] in _UNION_TAGS:
            fix = "check this source's keys against its kind (see CONTRIBUTING.md)"
        if kind == "extra_forbidden" and loc:
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(LangpackSpec, loc), n=1)
            if close:
                fix = f"did you mean {close[0]!r}? unknown keys are errors"
        if kind == "literal_error":
            expected = err.get("ctx", {}).get("expected")
            fix = f"use one of: {expected}" if expected else fix
        if kind == "missing":
            value = None
        elif isinstance(value, dict):
            value = None  # a whole mapping is noise in a one-line message
        problems.append(Problem(file, key or "(top level)", message, value, fix))
    return problems


def validate_document(data: Any, file: str, root: Path | None = None) -> LangpackSpec:
    """Validate a parsed langpack document. Raises ValidationError listing every problem."""
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
    try:
        spec = LangpackSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(problems_from_pydantic(file, exc)) from None
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
    data = read_yaml(file)
    spec = validate_document(data, str(file), root)
    return Langpack(spec=spec, root=root.resolve(), origin=origin)
