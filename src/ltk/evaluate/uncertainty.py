"""Every number with its uncertainty: 95% intervals for one system, and paired differences between two.

All of it works on per-item scores the metrics have already computed (a document's NLL and bytes, a
segment's chrF/BLEU statistics, an answer's switched words), so no model is called again:

- ratio metrics (bits per byte, chrF, BLEU, word-level code-switch rate) by the percentile bootstrap
  over their unit (documents, segments, answers): resample units, sum their statistics, recompute;
- proportions (the share of answers that code-switch) by the Wilson score interval;
- means (judge scores) by the percentile bootstrap over prompts.

Paired comparisons (``ltk.evaluate.compare``) resample the *same* items for both systems (the same seed
draws the same indices), so item difficulty cancels; two paired proportions also get McNemar's exact
test. Seeds are fixed, so intervals are reproducible: the same inputs give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
SEED = 12345  # sacrebleu's default bootstrap seed: the same resamples as its own significance tools

Statistic = Callable[[np.ndarray], np.ndarray]  # summed statistics (resamples, k) -> values (resamples,)


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n) item indices drawn with replacement, the way sacrebleu draws them."""
    return np.random.default_rng(seed).choice(n, size=(resamples, n), replace=True)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    """The central ``level`` share of the resampled values (resamples with no value are left out)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(arr, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _resampled(stats: np.ndarray, statistic: Statistic, idx: np.ndarray) -> np.ndarray:
    # Sum each resample's item statistics, then one vectorised call of the statistic.
    return np.asarray(statistic(stats[idx].sum(axis=1)), dtype=np.float64)


def _as_stats(stats: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    arr = np.asarray(stats, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr


def bootstrap_distribution(
    stats: Sequence[Sequence[float]] | np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> np.ndarray:
    """The statistic on each of ``resamples`` bootstrap resamples of the items (rows of ``stats``)."""
    arr = _as_stats(stats)
    return _resampled(arr, statistic, resample_indices(len(arr), resamples, seed))


def bootstrap_interval(
    stats: Sequence[Sequence[float]] | np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic`` over items (rows of ``stats``); None for < 2 items."""
    arr = _as_stats(stats)
    if len(arr) < 2:
        return None
    return percentile_interval(bootstrap_distribution(arr, statistic, resamples=resamples, seed=seed), level)


def z_value(level: float = LEVEL) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - level) / 2))


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (Newcombe 1998, method 3); None when n is 0."""
    if n <= 0:
        return None
    z = z_value(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (items where only A, or only B, is 1)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(only_a, n, 0.5).pvalue)


# --------------------------------------------------------------------------------------- the statistics
LN2 = math.log(2)


def bpb_statistic(s: np.ndarray) -> np.ndarray:
    """Columns: NLL (nats), UTF-8 bytes."""
    return s[:, 0] / (LN2 * s[:, 1])


def ratio_statistic(s: np.ndarray) -> np.ndarray:
    """Columns: numerator, denominator (e.g. non-target words, words)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return s[:, 0] / s[:, 1]


def mean_statistic(s: np.ndarray) -> np.ndarray:
    """Columns: value, 1 (so that the sum's ratio is the mean)."""
    return s[:, 0] / s[:, 1]


def sacrebleu_statistic(metric: Any) -> Statistic:
    """chrF or BLEU of summed sacrebleu sufficient statistics (per segment), as sacrebleu computes it."""

    def statistic(s: np.ndarray) -> np.ndarray:
        # sacrebleu's own significance code sums float32 statistics and rescores each resample.
        return np.array([metric._compute_score_from_stats(list(row)).score for row in s])

    return statistic


def segment_stats(metric: Any, hypotheses: list[str], references: list[str]) -> list[list[float]]:
    """Per-segment sufficient statistics (the ones sacrebleu's bootstrap resamples)."""
    if not hypotheses:
        return []
    return [list(map(float, row)) for row in metric._extract_corpus_statistics(hypotheses, [references])]


def record(
    ci: tuple[float, float] | list[float] | None, *, method: str, unit: str, n: int, **extra: Any
) -> dict[str, Any]:
    """What an eval JSON stores beside a value: its interval and how it was computed."""
    out: dict[str, Any] = {"ci": None if ci is None else [float(ci[0]), float(ci[1])], "level": LEVEL}
    out.update(method=method, unit=unit, n=n, **extra)
    if method.startswith("bootstrap"):
        out.update(resamples=RESAMPLES, seed=SEED)
    return out


def interval_text(ci: Sequence[float] | None, spec: str = "{:.4f}", scale: float = 1.0) -> str:
    if ci is None:
        return ""
    return f"[{spec.format(ci[0] * scale)}, {spec.format(ci[1] * scale)}]"
