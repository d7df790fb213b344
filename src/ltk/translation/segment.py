"""Sentence segmentation for translation, with protection of what must not be translated.

NLLB degrades on long inputs, so texts are cut into sentences (``sentencex``) and put back together
afterwards, keeping paragraphs, list markers and indentation exactly. Code blocks, inline code, URLs,
e-mail addresses, numbers with units, placeholders ({name}, %s, {{x}}) and markup tags are never sent to
the model: inside a sentence they are replaced by masks like ``[[0]]`` (numbered per sentence, so
"Visit [[0]]." is one cache entry whatever the URL) and restored after translation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

FENCE_RE = re.compile(r"^([ \t]*)(```|~~~)[^\n]*\n.*?^\1?\2[ \t]*$\n?", re.M | re.S)
# Order matters: earlier alternatives win (inline code before URLs, URLs before numbers).
PROTECT_RE = re.compile(
    r"""
    `[^`\n]+`                                   # inline code
  | <[/!]?[A-Za-z][^<>\n]{0,200}>               # markup tags
  | (?:https?|ftp)://[^\s<>()\[\]"'`]+[^\s<>()\[\]"'`.,;:!?]  # URLs
  | www\.[^\s<>()\[\]"'`]+[^\s<>()\[\]"'`.,;:!?]
  | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                # e-mail addresses
  | \{\{[^{}\n]{1,80}\}\}                       # {{ jinja }}
  | \{[A-Za-z0-9_.:\[\]]{0,80}\}                # {name} / {0} / {}
  | %(?:\([A-Za-z_]\w*\))?[-+ #0]*\d*(?:\.\d+)?[sdifgeoxXr%]  # printf: %s %d %(name)s %.2f
  | \$\{?[A-Za-z_]\w*\}?                        # $VAR ${VAR}
  | [$€£¥]\s?\d[\d,]*(?:\.\d+)?                 # money
  | \d[\d,]*(?:\.\d+)?\s?(?:%|°[CF]?|(?:km|cm|mm|nm|kg|mg|g|m|s|ms|h|min|ml|l|L|GB|MB|KB|TB|GHz|MHz|Hz|kW|W|V|mAh|px|pt|em|rem|lb|lbs|oz|ft|in|mi|mph|km/h)\b)
    """,
    re.X,
)
# Leading structure of a line that stays as is: indentation, list markers, headings, quotes, table pipes.
LINE_PREFIX_RE = re.compile(r"^(\s*(?:(?:[-*+•]|\d{1,3}[.)]|[a-zA-Z][.)]|#{1,6}|>+|\|)\s+)*)")
MASK_RE = re.compile(r"\[\s*\[\s*(\d+)\s*\]\s*\]")
LETTER_RE = re.compile(r"[^\W\d_]")


def mask(index: int) -> str:
    return f"[[{index}]]"


@dataclass(frozen=True)
class Piece:
    """Either text kept exactly as it is, or one sentence to translate (with its masked spans)."""

    text: str
    translate: bool = False
    spans: tuple[str, ...] = ()


@dataclass
class SegmentedText:
    pieces: list[Piece] = field(default_factory=list)

    def segments(self) -> list[str]:
        """The masked sentences to translate, in order (may repeat)."""
        return [p.text for p in self.pieces if p.translate]

    def reassemble(self, translations: Mapping[str, str]) -> tuple[str, int]:
        """The text with every sentence replaced by its translation; returns (text, lost_spans).

        A protected span whose mask the model dropped cannot be put back: it is counted so that quality
        estimation can drop the record rather than ship a translation with a missing URL or placeholder.
        """
        out: list[str] = []
        lost = 0
        for piece in self.pieces:
            if not piece.translate:
                out.append(piece.text)
                continue
            text, n_lost = restore(translations[piece.text], piece.spans)
            lost += n_lost
            out.append(text)
        return "".join(out), lost


def restore(translated: str, spans: tuple[str, ...]) -> tuple[str, int]:
    """Put protected spans back in place of their masks; returns (text, number of spans lost)."""
    seen: set[int] = set()

    def put_back(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i >= len(spans):
            return m.group(0)
        seen.add(i)
        return spans[i]

    text = MASK_RE.sub(put_back, translated)
    return text, len(spans) - len(seen)


def _split_sentences(text: str, lang: str) -> list[str]:
    import sentencex

    return [s for s in sentencex.segment(lang, text) if s]


def _segment_line(line: str, lang: str, pieces: list[Piece]) -> None:
    prefix = LINE_PREFIX_RE.match(line).group(1)  # type: ignore[union-attr]
    if prefix:
        pieces.append(Piece(prefix))
    body = line[len(prefix) :]
    if not body.strip():
        if body:
            pieces.append(Piece(body))
        return
    # Mask protected spans over the whole line first so the splitter never cuts inside a URL or "3.5 kg".
    spans: list[str] = []

    def hide(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    hidden = PROTECT_RE.sub(hide, body)
    for sentence in _split_sentences(hidden, lang):
        stripped = sentence.strip()
        lead = sentence[: len(sentence) - len(sentence.lstrip())]
        trail = sentence[len(sentence.rstrip()) :]
        if lead:
            pieces.append(Piece(lead))
        local: list[str] = []
        masked = re.sub(r"\x00(\d+)\x00", lambda m, acc=local: _renumber(m, spans, acc), stripped)
        plain = re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], stripped)
        if LETTER_RE.search(MASK_RE.sub("", masked)):
            pieces.append(Piece(masked, translate=True, spans=tuple(local)))
        else:  # only code, numbers, punctuation: nothing to translate
            pieces.append(Piece(plain))
        if trail:
            pieces.append(Piece(trail))


def _renumber(m: re.Match[str], spans: list[str], local: list[str]) -> str:
    local.append(spans[int(m.group(1))])
    return mask(len(local) - 1)


def segment_text(text: str, lang: str = "en") -> SegmentedText:
    """Cut ``text`` into kept pieces and sentences to translate. ``lang`` is an ISO 639-1/3 code."""
    result = SegmentedText()
    pos = 0
    for block in FENCE_RE.finditer(text):
        _segment_prose(text[pos : block.start()], lang, result.pieces)
        result.pieces.append(Piece(block.group(0)))
        pos = block.end()
    _segment_prose(text[pos:], lang, result.pieces)
    return result


def _segment_prose(text: str, lang: str, pieces: list[Piece]) -> None:
    for line in text.splitlines(keepends=True):
        newline = line[len(line.rstrip("\r\n")) :]
        body = line[: len(line) - len(newline)]
        if body:
            _segment_line(body, lang, pieces)
        if newline:
            pieces.append(Piece(newline))


def sentencex_language(code: str) -> str:
    """The code sentencex wants (ISO 639-1 where one exists) for a FLORES or ISO code."""
    base = code.split("_", 1)[0].lower()
    try:
        import langcodes

        # macro=True folds individual languages into their macrolanguage: swh -> sw, arb -> ar.
        return langcodes.standardize_tag(base, macro=True).split("-")[0]
    except Exception:  # unknown codes: sentencex falls back to generic rules
        return base
