"""One validation path for everything a user writes (langpacks, recipes): one strict base model, one
translator from pydantic's errors to ltk's problems (file, key, bad value, fix), and one validated way to
change a model's values (``override``).

This module imports only pydantic, PyYAML and ltk.errors: the Axolotl plugin validates recipes with it inside
Axolotl's own environment.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from ltk.errors import Problem, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Unknown keys are errors (a misspelt key is never silently ignored); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# ----------------------------------------------------------------------------------------------- YAML
class _AliasRefused(yaml.composer.ComposerError):
    """An anchor or alias in an ltk file (refused before anything is built from it)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently, and refuses
    anchors and aliases: a ten-line document of nested aliases (the "billion laughs" shape) expands to
    billions of nodes. Langpacks and recipes never need them, so the first one stops the reader at once,
    before any node is built, and memory stays proportional to the file."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
            sign = "*" if kind == "alias" else "&"
            raise _AliasRefused(
                None, None, f"YAML {kind} {sign}{anchor} is not allowed in ltk files", event.start_mark
            )
        return super().compose_node(parent, index)


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
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        fix = "fix the YAML syntax at that place"
        if str(problem).startswith("duplicate key"):
            fix = "keep only one of the two entries with that key"
        elif isinstance(exc, _AliasRefused):
            fix = "write the value out in full (a langpack can share keys with `include:` instead)"
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


# --------------------------------------------------------------------------------------------- pydantic
# What to do about each kind of pydantic error, in one table for every file ltk reads.
FIXES = {
    "missing": "add this key",
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


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation can hold (through Optional, unions, Annotated and containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        args = args[:1]
    for arg in args:
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _tags(model: type[BaseModel]) -> tuple[str, ...]:
    """A discriminated union's tag values for one branch (its ``kind: Literal[...]`` field)."""
    field = model.model_fields.get("kind")
    return tuple(str(a) for a in get_args(field.annotation)) if field is not None else ()


def locate(root: type[BaseModel], loc: tuple, *, unknown_key: bool = False) -> tuple[str, list[str]]:
    """The key path a user wrote for pydantic's ``loc`` (union branch labels dropped), and the keys
    valid where the last one stands (to suggest the key a user meant)."""
    key = ""
    models: list[type[BaseModel]] = [root]
    valid: list[str] = sorted(root.model_fields)
    for i, part in enumerate(loc):
        if isinstance(part, int):
            key += f"[{part}]"
            continue
        name = str(part)
        if len(models) > 1:  # a discriminated union: pydantic names the branch by its tag first
            branch = [m for m in models if name in _tags(m)]
            if branch:
                models, valid = branch, sorted(branch[0].model_fields)
                continue
        owner = next((m for m in models if name in m.model_fields), None)
        if owner is not None:
            key += ("." if key else "") + name
            valid = sorted({f for m in models for f in m.model_fields})
            models = _models_in(owner.model_fields[name].annotation)
            continue
        if unknown_key and i == len(loc) - 1:
            key += ("." if key else "") + name
            valid = sorted({f for m in models for f in m.model_fields})
            continue
        # Otherwise a label pydantic adds for a plain union branch ('bool', "literal['auto']", ...).
    return key, valid


def problems_from_pydantic(
    file: str,
    exc: PydanticValidationError,
    root: type[BaseModel],
    *,
    field_fixes: Mapping[str, str] | None = None,
) -> list[Problem]:
    """ltk's problems for every error pydantic found in a document validated against ``root``.

    ``field_fixes`` gives the fix for a schema's own checks (``value_error``), by the last key's name.
    """
    field_fixes = field_fixes or {}
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        key, valid = locate(root, loc, unknown_key=kind == "extra_forbidden")
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        value = err.get("input")
        fix = FIXES.get(kind, "")
        if kind == "extra_forbidden":
            message = "unknown key (a misspelt key would otherwise be silently ignored)"
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1) if loc else []
            fix = f"did you mean {close[0]!r}?" if close else "remove it"
            value = None
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected")
            fix = f"use one of: {expected}" if expected else fix
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx", {})
            tag = str(ctx.get("discriminator", "kind")).strip("'")
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            fix = f"set {tag} to one of: {expected}" if expected else f"add {tag}:"
        elif not fix:
            last = key.rsplit(".", 1)[-1].split("[")[0]
            fix = field_fixes.get(last, "")
        if kind == "missing" or isinstance(value, dict):
            value = None  # a whole mapping is noise in a one-line message
        problems.append(Problem(file, key or "(top level)", message, value, fix))
    return problems


def validate_model(
    model: type[M], data: Any, file: str, *, what: str, field_fixes: Mapping[str, str] | None = None
) -> M:
    """``model`` from a parsed document; every problem at once as a ValidationError (exit 2)."""
    if not isinstance(data, dict):
        raise ValidationError(
            [Problem(file, "(top level)", f"{what} must be a YAML mapping", type(data).__name__)]
        )
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(problems_from_pydantic(file, exc, model, field_fixes=field_fixes)) from None


def override(instance: M, values: Mapping[str, Any], *, source: str = "override") -> M:
    """A copy of ``instance`` with dotted keys set, validated as a whole like the file it came from.

        override(recipe, {"ltk.stages.cpt.max_steps": 30, "output_dir": "runs/qs"})

    A key that does not exist, or a value the schema rejects, raises ValidationError naming ``source``.
    """
    data = instance.model_dump(mode="json")
    problems: list[Problem] = []
    for dotted, value in values.items():
        node: Any = data
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                problems.append(
                    Problem(source, ".".join(parts[: i + 1]), "not a section that can be set into")
                )
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ValidationError(problems)
    try:
        return type(instance).model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(problems_from_pydantic(source, exc, type(instance))) from None
