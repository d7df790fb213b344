"""``include:`` for langpacks: shared templates instead of copies, read as safely as the pack itself.

A langpack may start with ``include: _shared/fineweb-2.yml`` (or a list of such paths). Each path is
relative to the folder that holds the langpacks (the pack folder's parent), and must stay inside it.
Included documents are merged in order, then the pack's own keys on top: mappings merge key by key,
anything else (a number, a string, a list) is replaced whole. An included file may include others, up to
``MAX_DEPTH`` levels and ``MAX_FILES`` reads in all (a "wide" bomb of repeated includes fails as fast as
a deep one); a cycle is an error. Every key remembers the file it came from, so a validation problem
names the template that set the bad value, not the pack that included it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import Problem, ValidationError
from ltk.validation import read_yaml

INCLUDE_KEY = "include"
MAX_DEPTH = 4
MAX_FILES = 16
TEMPLATE_SUFFIXES = (".yml", ".yaml")


@dataclass
class Resolved:
    """A langpack document with its includes merged, and where each key came from."""

    data: dict
    origins: dict[str, str] = field(default_factory=dict)  # dotted key path -> file that set it
    includes: list[str] = field(default_factory=list)  # every file read, in order (relative paths)

    def file_of(self, key: str, default: str) -> str:
        """The file that set ``key`` (``corpus.sources[1].config``) or the nearest key above it."""
        path = key.split("[", 1)[0]  # lists are replaced whole: the list's key is where the value came from
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path.rpartition(".")[0]
        return default


def resolve_includes(file: Path, langpacks_root: Path | None = None) -> Resolved:
    """Read ``file`` (a ``langpack.yml``) and merge what it includes. Raises ValidationError naming the
    file, the ``include`` entry and the fix for a path that escapes, a cycle, a missing file or a bomb."""
    root = (langpacks_root or file.resolve().parent.parent).resolve()
    resolved = Resolved(data={})
    reads = [0]
    data = _read(file, root, resolved, reads, stack=[file.resolve()])
    resolved.data = data
    return resolved


def _read(file: Path, root: Path, resolved: Resolved, reads: list[int], stack: list[Path]) -> dict:
    data = read_yaml(file)
    if not isinstance(data, dict) or INCLUDE_KEY not in data:
        _record(data, str(file), resolved.origins, "")
        return data
    entries = data.pop(INCLUDE_KEY)
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise ValidationError(
            [
                Problem(
                    str(file),
                    INCLUDE_KEY,
                    "must be a path or a list of paths",
                    entries,
                    "write e.g. include: _shared/fineweb-2.yml",
                )
            ]
        )
    merged: dict = {}
    for entry in entries:
        target = _locate(file, entry, root, stack)
        reads[0] += 1
        if reads[0] > MAX_FILES:
            raise _problem(file, entry, f"more than {MAX_FILES} included files in all", "include fewer files")
        included = _read(target, root, resolved, reads, [*stack, target])
        if not isinstance(included, dict):
            raise _problem(
                target, "", "an included file must be a YAML mapping", "write one 'key: value' per line"
            )
        relative = target.relative_to(root).as_posix()
        if relative not in resolved.includes:
            resolved.includes.append(relative)
        merged = merge(merged, included)
    _record(data, str(file), resolved.origins, "")
    return merge(merged, data)


def _locate(file: Path, entry: str, root: Path, stack: list[Path]) -> Path:
    if len(stack) > MAX_DEPTH:
        raise _problem(file, entry, f"nested more than {MAX_DEPTH} levels deep", "flatten the templates")
    if not entry.endswith(TEMPLATE_SUFFIXES) or "\x00" in entry or Path(entry).is_absolute():
        raise _problem(
            file,
            entry,
            "must be a relative .yml path inside the langpacks folder",
            "write e.g. include: _shared/fineweb-2.yml",
        )
    try:
        target = (root / entry).resolve()
    except (OSError, ValueError, RuntimeError):  # symlink loops, odd bytes
        target = None
    if target is None or root not in target.parents:
        raise _problem(
            file,
            entry,
            f"escapes the langpacks folder {root}",
            "keep templates inside the folder that holds the langpacks (e.g. _shared/)",
        )
    if target in stack:
        chain = " -> ".join(p.name for p in [*stack, target])
        raise _problem(file, entry, f"cycle: {chain}", "remove the include that closes the loop")
    if not target.is_file():
        raise _problem(file, entry, "included file not found", f"create {target} or fix the path")
    return target


def _problem(file: Path, entry: str, message: str, fix: str) -> ValidationError:
    return ValidationError([Problem(str(file), INCLUDE_KEY, message, entry or None, fix)])


def merge(base: Mapping, override: Mapping) -> dict:
    """``override`` on top of ``base``: mappings merge key by key; any other value replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _record(node: Any, file: str, origins: dict[str, str], prefix: str) -> None:
    """Every key path under ``node`` was set by ``file`` (later files overwrite earlier ones)."""
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        origins[path] = file
        _record(value, file, origins, path)
