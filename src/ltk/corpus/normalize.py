"""Unicode normalisation: NFC, control characters removed, whitespace tidied. Pure and fast (C-level regex
scans only); identical input gives identical output on every machine."""

from __future__ import annotations

import re
import unicodedata

# C0/C1 controls except tab and newline, plus zero-width and bidi marks that only add noise to pretraining.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\ufeff]")
_ASCII_CONTROL = bytes(c for c in range(128) if _CONTROL.match(chr(c)))
# Exotic spaces become plain ones; line/paragraph separators become newlines.
_ODD_SPACE = re.compile("[\u00a0\u2009\u202f\u3000]")
_ODD_BREAK = re.compile("\r\n?|[\u2028\u2029]")
_SPACES = re.compile(r"[ \t]{2,}|\t")
_LINE_EDGES = re.compile(r" +\n|\n +")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def normalize_text(text: str) -> str:
    """NFC, drop control/zero-width characters, collapse runs of spaces, at most one blank line."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
        text = _ODD_SPACE.sub(" ", text)
        text = _ODD_BREAK.sub("\n", text)
        text = _CONTROL.sub("", text)
    else:
        if "\r" in text:
            text = _ODD_BREAK.sub("\n", text)
        raw = text.encode("ascii")
        # bytes.translate deletes in one C table pass; the regex runs only when there is something to remove.
        if len(raw.translate(None, _ASCII_CONTROL)) != len(raw):
            text = _CONTROL.sub("", text)
    # Substring tests are C-speed scans; the regexes (which try a match at every space) run only if needed.
    if "  " in text or "\t" in text:
        text = _SPACES.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _LINE_EDGES.sub("\n", text)
    if "\n\n" in text:
        text = _BLANKS.sub("\n\n", text)
    return text.strip()
