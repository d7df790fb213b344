"""MT engine families: how each names languages, marks the target, and what its weights' licence is.

ltk speaks FLORES-200 codes everywhere (``swh_Latn``); each family maps them to its own at the edge:

    nllb     NLLB-200       FLORES token prefixed to the source, target token forced first   CC-BY-NC-4.0
    m2m100   M2M-100        ``__sw__`` prefixed to the source, ``__ny__`` forced first         MIT
    madlad   MADLAD-400     T5; the target as a ``<2sw>`` token in front of the source         Apache-2.0
    marian   OPUS-MT        one model per direction (``opus-mt-{src}-{tgt}``); ``>>swh<<`` in  CC-BY-4.0
                            front of the source when the model has several targets
    llm      any chat model over an OpenAI-compatible endpoint, prompted with the languages' names

An unsupported language is an error that lists what the model supports, before any weights load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ltk.errors import UsageError

FAMILIES = ("nllb", "m2m100", "madlad", "marian", "llm")
LICENCES = {
    "nllb": "CC-BY-NC-4.0",
    "m2m100": "MIT",
    "madlad": "Apache-2.0",
    "marian": "CC-BY-4.0",
    "llm": "the endpoint model's own terms",
}
NAMES = {
    "nllb": "NLLB-200",
    "m2m100": "M2M-100",
    "madlad": "MADLAD-400",
    "marian": "OPUS-MT (Marian)",
    "llm": "LLM endpoint",
}
# 639-1 codes that langcodes normalises away but MT vocabularies still use (Tagalog: tl, now fil), and a
# macrolanguage it does not fold an individual language into (Southern Pashto pbt: Pashto ps, M2M-100's code).
ISO1_ALIASES = {"fil": "tl", "tgl": "tl", "pbt": "ps"}
# The language tokens of each family's vocabulary, to list what a model supports.
TOKEN_PATTERNS = {
    "nllb": re.compile(r"^([a-z]{3}_[A-Z][a-z]{3})$"),
    "m2m100": re.compile(r"^__([a-z]{2,3})__$"),
    "madlad": re.compile(r"^<2([A-Za-z]{2,3}(?:[_-][A-Za-z0-9]+)*)>$"),
    "marian": re.compile(r"^>>([a-z]{2,3}(?:_[A-Z][a-z]{3})?)<<$"),
}


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise UsageError(f"unknown translation engine {family!r}; use one of: {', '.join(FAMILIES)}")


def language_token(family: str, code: str) -> str:
    """The vocabulary token that names ``code`` (a family code, see ``family_code``)."""
    return {
        "nllb": "{}",
        "m2m100": "__{}__",
        "madlad": "<2{}>",
        "marian": ">>{}<<",
    }[family].format(code)


def iso_codes(flores: str) -> list[str]:
    """ISO codes for a FLORES code, most specific first: [639-1 (macro), 639-3, 639-3_Script]."""
    base, _, script = flores.partition("_")
    out: list[str] = []
    try:
        import langcodes

        # macro=True folds individual languages into their macrolanguage: swh -> sw, nya -> ny.
        short = langcodes.standardize_tag(base, macro=True).split("-")[0]
        if short != base:
            out.append(short)
        out.append(langcodes.Language.get(short).to_alpha3())
    except Exception:  # an unknown code: try it as written
        pass
    out.append(base)
    out += [ISO1_ALIASES[c] for c in list(out) if c in ISO1_ALIASES]
    if script:
        out.append(f"{base}_{script}")
    return list(dict.fromkeys(c for c in out if c))


def family_code(family: str, flores: str, supported: Sequence[str], what: str = "") -> str:
    """The code ``family`` uses for ``flores``, chosen among ``supported``; a clear error when none fits."""
    candidates = [flores] if family in ("nllb", "llm") else iso_codes(flores)
    for code in candidates:
        if code in supported:
            return code
    shown = " ".join(sorted(supported))
    raise UsageError(
        f"{NAMES[family]} model {what!r} does not support {flores} (tried {', '.join(candidates)}). "
        f"It supports {len(supported)} codes: {shown}"
        "\n    fix: choose another engine for this language (`ltk translate --compare` measures them), "
        "or a model that covers it"
    )


def language_name(flores: str) -> str:
    """The English name of a language, for prompts ("Swahili", "Nyanja")."""
    base = flores.split("_", 1)[0]
    try:
        import langcodes

        # the macrolanguage's name: "Swahili", not "Swahili (individual language)"
        return langcodes.Language.get(langcodes.standardize_tag(base, macro=True)).display_name("en")
    except Exception:
        return flores


@dataclass(frozen=True)
class MarianPair:
    """Where the OPUS-MT model for one direction is looked for: a template with {src} and {tgt}."""

    template: str

    def candidates(self, src: str, tgt: str) -> list[str]:
        if "{src}" not in self.template and "{tgt}" not in self.template:
            return [self.template]  # one fixed model: it serves whichever direction it was trained for
        out = []
        for s in iso_codes(src):
            for t in iso_codes(tgt):
                if "_" in s or "_" in t:
                    continue  # OPUS-MT names use plain ISO codes
                out.append(self.template.format(src=s, tgt=t))
        return list(dict.fromkeys(out))
