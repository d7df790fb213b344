"""`ltk langpacks new CODE`: a new langpack folder from the template, with its datasheet and checklist.

The code is normalised once here (``sw``, ``swa``, ``swh``, ``swh_Latn`` or a language name all give the
same folder ``sw`` with ``flores: swh_Latn``), the folder is written under a temporary name and renamed
when complete, and an existing folder is never touched.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ltk.errors import LtkError, UsageError, ValidationError
from ltk.langpack.load import LANGPACK_FILE, load_langpack
from ltk.languages import FLORES_RE, ISO639_1_RE, canonical_language, flores200_codes

TEMPLATE_DIR_NAME = "_template"
PLACEHOLDER_CORPUS = (
    "TODO: replace this file with real text in the language, one document per line,\n"
    "or delete it and its source entry in langpack.yml once real sources are listed.\n"
)
_PLAIN_SCALAR = re.compile(r"^[A-Za-z][A-Za-z .()'-]*$")


@dataclass(frozen=True)
class LanguageCodes:
    """Every code a langpack's ``language`` block needs, derived from what the user typed."""

    folder: str
    name: str
    iso639_1: str | None
    iso639_3: str
    script: str
    flores: str
    aliases: list[str] = field(default_factory=list)
    other_flores: list[str] = field(default_factory=list)


def template_dir() -> Path:
    from ltk.registry import builtin_langpacks_dir

    folder = builtin_langpacks_dir() / TEMPLATE_DIR_NAME
    if not (folder / LANGPACK_FILE).is_file():
        raise LtkError(f"the langpack template is missing from {folder}; reinstall ltk")
    return folder


@functools.cache
def _flores_by_language() -> dict[str, list[str]]:
    """FLORES-200 codes grouped by the macrolanguage-level code langcodes gives their prefix."""
    groups: dict[str, list[str]] = {}
    for code in sorted(flores200_codes()):
        prefix = code.split("_", 1)[0]
        groups.setdefault(_macro(canonical_language(prefix) or prefix), []).append(code)
    return groups


def _macro(language: str) -> str:
    """``swh`` -> ``sw``: individual languages map to their macrolanguage, as ISO 639-1 codes do."""
    from langcodes.data_dicts import MACROLANGUAGES

    return MACROLANGUAGES.get(language, language)


def _parse(code: str):
    import langcodes

    try:
        lang = langcodes.Language.get(code.replace("_", "-"))
        if lang.language and lang.to_alpha3():
            return lang
    except (LookupError, ValueError):
        pass
    try:  # a language name such as "Yoruba"
        return langcodes.find(code)
    except LookupError:
        return None


def normalise_code(code: str, name: str | None = None) -> LanguageCodes:
    """Fill iso639_1/iso639_3/script/flores from any code or name. Raises UsageError if unknown."""
    import langcodes  # lazy: keeps `ltk --help` fast

    raw = code.strip()
    if not raw or not re.match(r"^[A-Za-z][A-Za-z _-]*$", raw):
        raise UsageError(
            f"{code!r} is not a language code; try e.g. `ltk langpacks new yo` or `new yor_Latn`"
        )
    flores_given: str | None = None
    if "_" in raw or "-" in raw:
        prefix, _, script_part = raw.replace("-", "_").partition("_")
        candidate = f"{prefix.lower()}_{script_part.title()}"
        if FLORES_RE.match(candidate):
            if candidate not in flores200_codes():
                same_language = [c for c in sorted(flores200_codes()) if c.startswith(f"{prefix.lower()}_")]
                close = (
                    same_language + difflib.get_close_matches(candidate, sorted(flores200_codes()), n=3)
                )[:3]
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise UsageError(
                    f"{raw!r} is not a FLORES-200 / NLLB code.{hint} Run `ltk langpacks codes` to list them."
                )
            flores_given = candidate
            raw = prefix.lower()
    lang = _parse(raw)
    if lang is None:
        prefixes = sorted({c.split("_")[0] for c in flores200_codes()})
        close = difflib.get_close_matches(raw.lower(), prefixes, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(
            f"Unknown language code {code!r}.{hint} Use an ISO 639 code (yo, yor), a FLORES-200 code "
            "(yor_Latn) or an English language name; `ltk langpacks codes` lists the FLORES-200 codes."
        )
    individual = lang.language
    base = _macro(individual)
    iso639_1 = base if ISO639_1_RE.match(base) else None
    if iso639_1 is None and ISO639_1_RE.match(raw.lower()):
        iso639_1 = raw.lower()  # e.g. tl, which langcodes standardises to fil
    iso639_3 = langcodes.Language.get(base).to_alpha3()
    candidates = sorted({*_flores_by_language().get(base, []), *_flores_by_language().get(individual, [])})
    if flores_given:
        flores = flores_given
    elif candidates:
        from langcodes.data_dicts import NORMALIZED_MACROLANGUAGES

        likely_script = lang.maximize().script

        def rank(c: str) -> tuple:
            # the likely script, then the standard variety of a macrolanguage (arb for ar, zsm for ms)
            prefix, script = c.split("_")
            standard = NORMALIZED_MACROLANGUAGES.get(prefix) == base
            return (script != likely_script, not standard, prefix not in (iso639_3, individual), c)

        flores = min(candidates, key=rank)
    else:
        raise UsageError(
            f"{code!r} ({lang.display_name()}) has no FLORES-200 / NLLB code, so NLLB cannot translate "
            "instructions into it. If you know the right code, pass it: `ltk langpacks new xxx_Scrp` "
            "(see `ltk langpacks codes`)."
        )
    folder = iso639_1 or iso639_3
    flores_prefix = flores.split("_")[0]
    taken = {folder, iso639_3, iso639_1, base}
    aliases = sorted(
        a for a in {flores_prefix, individual, raw.lower()} if re.match(r"^[a-z]{2,3}$", a) and a not in taken
    )
    return LanguageCodes(
        folder=folder,
        name=name.strip() if name and name.strip() else langcodes.Language.get(base).display_name(),
        iso639_1=iso639_1,
        iso639_3=iso639_3,
        script=flores.split("_")[1],
        flores=flores,
        aliases=aliases,
        other_flores=[c for c in candidates if c != flores],
    )


def _yaml_scalar(value: str) -> str:
    return value if _PLAIN_SCALAR.match(value) else json.dumps(value, ensure_ascii=False)


def _render(text: str, codes: LanguageCodes, *, for_yaml: bool) -> str:
    values = {
        "__NAME__": _yaml_scalar(codes.name) if for_yaml else codes.name,
        "__CODE__": codes.folder,
        "__ISO639_1__": codes.iso639_1 or ("null" if for_yaml else "-"),
        "__ISO639_3__": codes.iso639_3,
        "__SCRIPT__": codes.script,
        "__FLORES__": codes.flores,
        "__ALIASES__": ", ".join(codes.aliases),
        # TODO marker so a contributor checks the choice when a language has several codes
        "__OTHER_FLORES__": f"; TODO: or {', '.join(codes.other_flores)}?" if codes.other_flores else "",
    }
    # The name first appears in comments too, where quotes would look odd: substitute lines one by one.
    lines = []
    for line in text.splitlines(keepends=True):
        is_comment = line.lstrip().startswith("#")
        for key, value in values.items():
            if key == "__NAME__" and (is_comment or not for_yaml or "name:" not in line):
                value = codes.name
            line = line.replace(key, value)
        lines.append(line)
    return "".join(lines)


def scaffold(code: str, out: Path, name: str | None = None) -> Path:
    """Create ``out/<code>/`` (langpack.yml, README.md, data/corpus.txt) from the template.

    Refuses to touch an existing folder. Writes to a temporary sibling and renames it when complete,
    so an interrupted run leaves nothing half-written. Returns the new folder.
    """
    codes = normalise_code(code, name)
    out = Path(out)
    dest = out / codes.folder
    if dest.exists() or dest.is_symlink():
        raise UsageError(
            f"{dest} already exists; nothing was written. Edit it, or choose another --out folder."
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; nothing was written.")
    template = template_dir()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{codes.folder}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        for src in sorted(template.iterdir()):
            if src.is_file() and src.suffix in (".yml", ".md"):
                text = src.read_text(encoding="utf-8")
                (tmp / src.name).write_text(
                    _render(text, codes, for_yaml=src.suffix == ".yml"), encoding="utf-8"
                )
        (tmp / "data").mkdir()
        (tmp / "data" / "corpus.txt").write_text(PLACEHOLDER_CORPUS, encoding="utf-8")
        try:
            load_langpack(tmp)  # the scaffold must validate as written
        except ValidationError as err:
            raise LtkError(f"the template produced an invalid langpack (a bug in ltk):\n{err}") from None
        if dest.exists():
            raise UsageError(f"{dest} appeared while scaffolding; nothing was written.")
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
