"""Language codes, normalised once at the edge: ``sw`` = ``swa`` = ``swh`` = ``swh_Latn``."""

from __future__ import annotations

import functools
import re
from importlib import resources

FLORES_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
ISO639_1_RE = re.compile(r"^[a-z]{2}$")
ISO639_3_RE = re.compile(r"^[a-z]{3}$")
SCRIPT_RE = re.compile(r"^[A-Z][a-z]{3}$")
# Scripts written without spaces between words (ISO 15924): word shingles would see one "word" per
# phrase, so near-duplicate detection shingles characters for them (datatrove picks a word tokenizer per
# language for the same reason).
SCRIPTS_WITHOUT_SPACES = frozenset(
    {"Khmr", "Mymr", "Thai", "Laoo", "Tibt", "Hans", "Hant", "Hani", "Jpan", "Hira", "Kana", "Bali", "Java"}
)


@functools.cache
def flores200_codes() -> frozenset[str]:
    """The 202 FLORES-200 codes NLLB-200 was trained on (``swh_Latn``, ``nya_Latn``, ...)."""
    text = resources.files("ltk.data").joinpath("flores200_codes.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def lookup_key(code: str) -> str:
    """The form every code is compared in: lower-case, ``-`` and ``_`` unified, script dropped."""
    key = code.strip().replace("-", "_")
    return key.split("_", 1)[0].lower()


def canonical_language(code: str) -> str | None:
    """The ISO 639 code langcodes standardises ``code`` to (``swa`` -> ``sw``), or None if unknown."""
    try:
        import langcodes

        lang = langcodes.Language.get(code.strip().replace("_", "-"))
    except Exception:  # langcodes raises several types for garbage input
        return None
    return lang.language or None


def display_name(code: str) -> str:
    try:
        import langcodes

        return langcodes.Language.get(code.replace("_", "-")).display_name()
    except Exception:
        return code
