"""`ltk langpacks validate`: the schema, then the rules CI applies to a contribution, with every problem
reported at once (file, line or key, value, fix).

The contribution rules (``contribution_problems``) are the ones the shipped langpacks are held to in CI:
no TODO or ``__PLACEHOLDER__`` left from the template (in the pack, the templates it includes, its
datasheet, or the scaffold's placeholder data), every licence a known SPDX id or expression, every
licence and hub dataset named in the datasheet, the datasheet's sections and a changelog line for the
current version; a pack that translates instructions also says in its datasheet which engine does it and
why (a ``## Translation engine`` section naming the engine in use).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ltk.errors import Problem, ValidationError
from ltk.langpack.load import LANGPACK_FILE, Langpack, load_langpack
from ltk.langpack.schema import HubSource, LocalSource
from ltk.registry import load_registry

DATASHEET = "README.md"
DATASHEET_SECTIONS = ("## Sources and licences", "## How to build", "## Known limits", "## Changelog")
ENGINE_SECTION = "## Translation engine"  # required when the pack translates instructions
_LEFTOVER = re.compile(r"TODO|__[A-Z0-9_]+__")


def validate_paths(paths: Iterable[Path], extra_paths: Iterable[str | Path] = ()) -> tuple[bool, str]:
    """Validate the given langpacks (or all known ones). Returns (all valid, report text)."""
    paths = list(paths)
    problems: list[Problem] = []
    checked: list[str] = []
    packs: list[Langpack] = []
    if paths:
        for path in paths:
            folder = path.parent if path.name == LANGPACK_FILE or path.is_file() else path
            if not (folder / LANGPACK_FILE).is_file():
                problems.append(
                    Problem(str(path), "", f"no {LANGPACK_FILE} here", fix="point at a langpack folder")
                )
                continue
            try:
                packs.append(load_langpack(folder))
            except ValidationError as err:
                problems.extend(err.problems)
    else:
        registry = load_registry(extra_paths)
        packs = list(registry)
        for err in registry.broken.values():
            problems.extend(err.problems)
    for pack in packs:
        found = contribution_problems(pack)
        problems.extend(found)
        if not found:
            checked.append(f"ok  {pack.code} (version {pack.spec.version})")
    if problems:
        return False, str(ValidationError(problems))
    return True, "\n".join([*checked, f"{len(checked)} langpack(s) valid."])


def contribution_problems(pack: Langpack) -> list[Problem]:
    """What CI rejects in a langpack that passes the schema. Empty when the pack is ready to merge."""
    problems = leftover_problems(pack)
    problems += licence_problems(pack)
    problems += datasheet_problems(pack)
    return problems


def _sources(pack: Langpack) -> list[tuple[str, object]]:
    spec = pack.spec
    out: list[tuple[str, object]] = []
    for section, sources in (
        ("corpus.sources", spec.corpus.sources),
        ("english.sources", spec.english.sources),
        ("instructions.translate", spec.instructions.translate),
        ("instructions.ready_made", spec.instructions.ready_made),
    ):
        out += [(f"{section}[{i}]", s) for i, s in enumerate(sources)]
    for i, pset in enumerate(spec.parallel):
        for side in ("target", "english"):
            source = getattr(pset, side)
            if hasattr(source, "licence"):
                out.append((f"parallel[{i}].{side}", source))
    return out


def _files_of(pack: Langpack) -> list[Path]:
    """The pack's own YAML and every template it includes."""
    return [pack.file, *(pack.root.parent / rel for rel in pack.includes)]


def leftover_problems(pack: Langpack) -> list[Problem]:
    """Each line that still holds a TODO or a ``__PLACEHOLDER__`` from the template, with its number."""
    files = [*_files_of(pack), pack.root / DATASHEET]
    for _, source in _sources(pack):
        if isinstance(source, LocalSource) and "*" not in source.path:
            files.append(pack.root / source.path)  # the scaffold's placeholder text, if still there
    problems = []
    for file in files:
        if not file.is_file():
            continue
        is_data = file.suffix not in (".yml", ".yaml", ".md")
        with file.open(encoding="utf-8", errors="replace") as fh:
            text = fh.read(1_000_000 if is_data else -1)  # a data file's head holds the placeholder
        for number, line in enumerate(text.splitlines(), 1):
            if is_data and not line.startswith("TODO"):
                continue  # real text may mention "TODO"; only the scaffold's placeholder starts with it
            if _LEFTOVER.search(line):
                problems.append(
                    Problem(
                        str(file),
                        f"line {number}",
                        "left from the template",
                        line.strip()[:100],
                        "replace it with the real value (and delete the TODO comment)",
                    )
                )
    return problems


def _line_of(files: list[Path], needle: str) -> tuple[str, str]:
    """(file, 'line N') of the first line containing ``needle`` in the pack or its templates."""
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                return str(file), f"line {number}"
    return str(files[0]), ""


def licence_problems(pack: Langpack) -> list[Problem]:
    """Every licence must be a known SPDX id or expression (``LicenseRef-...`` for anything else)."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    files = _files_of(pack)
    problems = []
    for key, source in _sources(pack):
        licence = source.licence  # type: ignore[attr-defined]
        try:
            canonicalize_license_expression(licence)
        except InvalidLicenseExpression:
            file, line = _line_of(files, f"licence: {licence}")
            problems.append(
                Problem(
                    file,
                    f"{line}: {key}.licence" if line else f"{key}.licence",
                    "unknown licence: not an SPDX id or expression",
                    licence,
                    "use an SPDX id or expression (e.g. CC-BY-4.0, CC-BY-SA-3.0 AND CC-BY-SA-4.0); for "
                    "custom terms write LicenseRef-<name> and explain them in README.md",
                )
            )
    return problems


def engine_section_problems(pack: Langpack, readme: Path, text: str) -> list[Problem]:
    """A pack that translates instructions says which engine does it and why: a ``## Translation engine``
    section that states ``instructions.engine: <the engine in use>``, so switching engines means
    revisiting it."""
    instructions = pack.spec.instructions
    if not instructions.translate:
        return []
    stated = f"instructions.engine: {instructions.engine}"
    fix = (
        f"add a {ENGINE_SECTION!r} section stating `{stated}` and why it was chosen (the numbers of "
        f"`ltk translate --compare nllb --compare m2m100 --compare madlad --langpack {pack.code}`, or that "
        "engines were not compared yet); see langpacks/_template/README.md"
    )
    match = re.search(rf"^{re.escape(ENGINE_SECTION)}[ \t]*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        return [Problem(str(readme), ENGINE_SECTION, "datasheet section missing", fix=fix)]
    if stated not in match.group(1):
        return [
            Problem(
                str(readme),
                ENGINE_SECTION,
                "the translation engine section does not state the engine in use",
                stated,
                f"state `{stated}` there and why it was chosen",
            )
        ]
    return []


def datasheet_problems(pack: Langpack) -> list[Problem]:
    """The datasheet exists, has its sections and a changelog line for the version, and names every
    licence and hub dataset the pack uses."""
    readme = pack.root / DATASHEET
    if not readme.is_file():
        return [Problem(str(readme), "", "no datasheet", fix="start from langpacks/_template/README.md")]
    text = readme.read_text(encoding="utf-8")
    problems = [
        Problem(str(readme), heading, "datasheet section missing", fix=f"add a {heading!r} section")
        for heading in DATASHEET_SECTIONS
        if heading not in text
    ]
    problems += engine_section_problems(pack, readme, text)
    version = pack.spec.version
    if not re.search(rf"^- v{version}:", text, re.M):
        problems.append(
            Problem(
                str(readme),
                "## Changelog",
                f"no changelog line for version {version}",
                fix=f"add '- v{version}: what changed' (the first line is '- v1: initial')",
            )
        )
    reported: set[str] = set()
    for key, source in _sources(pack):
        licence = source.licence  # type: ignore[attr-defined]
        for part in re.split(r"\s+(?:AND|OR|WITH)\s+", licence.strip("() ")):
            part = part.strip("() ")
            if part not in text and part not in reported:
                reported.add(part)
                problems.append(
                    Problem(
                        str(readme),
                        f"{key}.licence",
                        "licence not named in the datasheet",
                        part,
                        "name it in the 'Sources and licences' table",
                    )
                )
        if isinstance(source, HubSource) and source.dataset not in text:
            problems.append(
                Problem(
                    str(readme),
                    f"{key}.dataset",
                    "dataset not named in the datasheet",
                    source.dataset,
                    "name it in the 'Sources and licences' table",
                )
            )
    return problems
