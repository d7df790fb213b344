"""Quality filters with per-language thresholds from ``pack.spec.filters`` (FineWeb-2 style).

``quality_reason`` returns None to keep a document or the reason it is dropped; the caller counts
reasons. Plain Python on purpose: one pass over the lines, and str methods that run in C.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from ltk.langpack.schema import Filters

# Symbols, for every script: the ASCII characters a normal sentence does not use (#, *, <, |, ...) and,
# beyond ASCII, what is not a letter, a combining mark (Mn/Mc/Me: the vowel signs of Indic, Khmer,
# Myanmar and Sinhala text), a number, a space, punctuation (danda, Khmer khan, the Ethiopic word
# space, Arabic comma...) or a format character (the zero-width joiners of Sinhala and Indic text).
# `regex` and not `re`: only `regex` knows Unicode categories (\p{M}); both scan in C.
_SYMBOL = regex.compile(
    r"[\x00-\x08\x0e-\x1b\x7f#$%&*+<=>@\[\\\]^`{|}~]|[^\x00-\x7f\w\s\p{M}\p{N}\p{P}\p{Cf}]"
)
# Digits in any script (native digits count as digits; Ethiopic numerals are numbers too, \p{No}).
_DIGIT = regex.compile(r"\p{N}")
# ASCII text (most documents in Latin-script languages) is counted with bytes.translate, a C table lookup
# several times faster than a regex scan; the byte sets are derived from the regexes, so counts are equal.
_ASCII_DIGITS = bytes(c for c in range(128) if _DIGIT.match(chr(c)))
_ASCII_PLAIN = bytes(c for c in range(128) if not _SYMBOL.match(chr(c)))


@dataclass(frozen=True)
class Thresholds:
    min_chars: int
    max_chars: int
    max_duplicate_line_fraction: float
    max_short_line_fraction: float
    short_line_chars: int
    max_symbol_ratio: float
    max_digit_ratio: float

    @classmethod
    def from_spec(cls, f: Filters) -> Thresholds:
        return cls(
            f.min_chars,
            f.max_chars,
            f.max_duplicate_line_fraction,
            f.max_short_line_fraction,
            f.short_line_chars,
            f.max_symbol_ratio,
            f.max_digit_ratio,
        )


def quality_reason(text: str, t: Thresholds) -> str | None:
    n = len(text)
    if n < t.min_chars:
        return "too_short"
    if n > t.max_chars:
        return "too_long"
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 3:
        # Line-level rules only mean something for multi-line documents.
        if 1 - len(set(lines)) / len(lines) > t.max_duplicate_line_fraction:
            return "duplicate_lines"
        short = sum(1 for line in lines if len(line) < t.short_line_chars)
        if short / len(lines) > t.max_short_line_fraction:
            return "short_lines"
    digits, symbols = digit_and_symbol_counts(text)
    if digits / n > t.max_digit_ratio:
        return "digit_ratio"
    if symbols / n > t.max_symbol_ratio:
        return "symbol_ratio"
    return None


def digit_and_symbol_counts(text: str) -> tuple[int, int]:
    """Number characters (``\\p{N}``) and symbol characters (see ``_SYMBOL``)."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, _ASCII_DIGITS)), len(raw.translate(None, _ASCII_PLAIN))
    return len(_DIGIT.findall(text)), len(_SYMBOL.findall(text))
