"""Quality estimation for translated instructions. Each check returns keep/drop and a reason; reasons are
counted, and the score distributions (not only the pass count) go into the manifest.

Checks, in order (the first failing one names the drop):
  empty_translation    the model produced nothing for a turn that had text
  protected_span_lost  a URL, code span or placeholder mask did not survive translation
  untranslated_copy    the output is (nearly) the English source, a known NLLB failure on odd input
  repetition_loop      a large share of repeated n-grams ("the the the ..."), NLLB's other failure
  length_ratio         output/source characters outside [min_length_ratio, max_length_ratio]
  wrong_language       language ID (pycld2) does not find the target language with enough confidence
  roundtrip_chrf       chrF of the back-translation against the English source below the threshold
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ltk.langpack.schema import Quality
from ltk.translation.segment import FENCE_RE, PROTECT_RE

DROP_REASONS = (
    "empty_translation",
    "protected_span_lost",
    "untranslated_copy",
    "repetition_loop",
    "length_ratio",
    "wrong_language",
    "roundtrip_chrf",
)
MIN_CHARS_FOR_RATIO = 20  # short strings ("OK", "5") have meaningless length ratios
WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass
class Verdict:
    keep: bool
    reason: str | None
    scores: dict[str, float] = field(default_factory=dict)


def prose(text: str) -> str:
    """Text without code blocks, URLs, placeholders and markup: what language ID and ratios should see."""
    return PROTECT_RE.sub(" ", FENCE_RE.sub(" ", text))


def repeated_ngram_fraction(text: str, n: int = 3) -> float:
    """Share of n-gram occurrences that repeat an earlier one (0 = none, ~1 = one loop).

    Words for space-delimited scripts; character 5-grams when there are too few words (Thai, Chinese).
    """
    words = WORD_RE.findall(text.lower())
    units: Sequence[str]
    if len(words) >= 8:
        units, size = words, n
    else:
        units, size = re.sub(r"\s+", " ", text.lower()), 5
    grams = [tuple(units[i : i + size]) for i in range(len(units) - size + 1)]
    if len(grams) < 4:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def chrf(hypothesis: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return CHRF().sentence_score(hypothesis, [reference]).score


def language_confidence(text: str, target_iso: str) -> float | None:
    """Share (0..1) of ``text`` pycld2 assigns to ``target_iso``; None where cld2 cannot tell.

    cld2 knows ~80 languages in its small model; for others the check is skipped rather than failing
    every record.
    """
    try:
        import pycld2
    except ImportError:
        return None
    codes = {code for _, code in pycld2.LANGUAGES}
    if target_iso not in codes or len(text.strip()) < 20:
        return None
    try:
        _, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:
        # cld2 rejects some invalid UTF-8 (lone surrogates); strip them and try once more
        _, _, details = pycld2.detect(text.encode("utf-8", "ignore").decode("utf-8"), bestEffort=True)
    return sum(pct for _, code, pct, _ in details if code == target_iso) / 100.0


def sampled(record_id: str, share: float, seed: int) -> bool:
    """Deterministic sample of records for the (costly) round-trip check."""
    if share >= 1:
        return True
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def judge(
    source: str,
    translated: str,
    *,
    thresholds: Quality,
    target_iso: str,
    lost_spans: int = 0,
    roundtrip: str | None = None,
) -> Verdict:
    """One translated record (all turns joined) against its English source."""
    scores: dict[str, float] = {}
    src_prose, out_prose = prose(source).strip(), prose(translated).strip()
    if src_prose and not out_prose:
        return Verdict(False, "empty_translation", scores)
    if lost_spans:
        return Verdict(False, "protected_span_lost", scores)
    norm = lambda s: re.sub(r"\W+", " ", s.lower()).strip()  # noqa: E731
    if len(src_prose) >= MIN_CHARS_FOR_RATIO and norm(src_prose) == norm(out_prose):
        return Verdict(False, "untranslated_copy", scores)
    scores["repetition"] = repeated_ngram_fraction(out_prose)
    if scores["repetition"] > thresholds.max_repeated_ngram_fraction:
        return Verdict(False, "repetition_loop", scores)
    if len(src_prose) >= MIN_CHARS_FOR_RATIO:
        scores["length_ratio"] = len(out_prose) / len(src_prose)
        if not thresholds.min_length_ratio <= scores["length_ratio"] <= thresholds.max_length_ratio:
            return Verdict(False, "length_ratio", scores)
    confidence = language_confidence(out_prose, target_iso)
    if confidence is not None:
        scores["langid"] = confidence
        if confidence < thresholds.langid_min_confidence:
            return Verdict(False, "wrong_language", scores)
    if roundtrip is not None:
        scores["roundtrip_chrf"] = chrf(roundtrip, source)
        if scores["roundtrip_chrf"] < thresholds.min_roundtrip_chrf:
            return Verdict(False, "roundtrip_chrf", scores)
    return Verdict(True, None, scores)


@dataclass
class QualityReport:
    """Counts of kept/dropped records by reason, and every score seen (kept or not)."""

    checked: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    scores: dict[str, list[float]] = field(default_factory=dict)

    def add(self, verdict: Verdict) -> None:
        self.checked += 1
        if verdict.keep:
            self.kept += 1
        else:
            self.dropped[verdict.reason] += 1
        for name, value in verdict.scores.items():
            self.scores.setdefault(name, []).append(value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "kept": self.kept,
            "dropped": {r: self.dropped.get(r, 0) for r in DROP_REASONS},
            "scores": {name: distribution(values) for name, values in sorted(self.scores.items())},
        }


def distribution(values: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """Quantiles and a histogram, rounded so manifests stay byte-stable."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))], 4)

    lo, hi = ordered[0], ordered[-1]
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in ordered:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 4),
        "quantiles": {
            k: q(p)
            for k, p in (
                ("min", 0),
                ("p5", 0.05),
                ("p25", 0.25),
                ("p50", 0.5),
                ("p75", 0.75),
                ("p95", 0.95),
                ("max", 1),
            )
        },
        "histogram": {"edges": [round(lo + i * width, 4) for i in range(bins + 1)], "counts": counts},
    }
