"""Paired comparisons of two evaluations (two stages, two arms) on the same items, and the verdict they
support.

Two models scored on the same documents, segments or prompts are compared item by item: the paired
bootstrap resamples the same items for both and reports B - A with a 95% interval, so the difficulty of
the items cancels out (a much narrower interval than two separate ones would suggest). The share of
answers that code-switch (0/1 per prompt) also gets McNemar's exact test. Items are matched by id; eval
JSONs written before per-item scores were stored have no items, and compare to ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ltk.evaluate import uncertainty as u

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Comparable:
    """One number two evaluations can be compared on."""

    label: str
    unit: str
    strata: Callable[[dict[str, Any]], list[list[dict[str, Any]]] | None]  # metrics -> item lists
    row: Callable[[dict[str, Any]], list[float] | None]  # item -> its statistics (None: left out)
    statistic: u.Statistic
    proportion: bool = False  # 0/1 per item: McNemar's test too


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _items(*path: str) -> Callable[[dict[str, Any]], list[list[dict[str, Any]]] | None]:
    def find(metrics: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
        items = _get(metrics, *path, "items")
        return [items] if isinstance(items, list) else None

    return find


def _translation_sets(direction: str) -> Callable[[dict[str, Any]], list[list[dict[str, Any]]] | None]:
    # The headline chrF is the mean over parallel sets: each set is one stratum.
    def find(metrics: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
        sets = _get(metrics, "chrf", "sets") or {}
        found = [_get(s, direction, "items") for _, s in sorted(sets.items())]
        return found if found and all(isinstance(f, list) for f in found) else None

    return find


def _switched(item: dict[str, Any]) -> list[float] | None:
    return None if item.get("switched") is None else [float(item["switched"]), 1.0]


def _translation(direction: str, metric: str) -> Comparable:
    from sacrebleu.metrics import BLEU, CHRF

    scorer = CHRF() if metric == "chrf" else BLEU()
    name = "chrF" if metric == "chrf" else "BLEU"
    arrow = "en→target" if direction == "to_target" else "target→en"
    return Comparable(
        f"{name} {arrow}", "segments", _translation_sets(direction), lambda i: i.get(metric),
        u.sacrebleu_statistic(scorer),
    )  # fmt: skip


def comparables() -> dict[str, Comparable]:
    """Every number that can be compared, by key (``bpb.target``, ``chrf.to_target.chrf``, ...)."""
    from ltk.evaluate.judge import judge_overall

    out = {
        f"bpb.{side}": Comparable(
            f"bits/byte {'English' if side == 'english' else side}",
            "documents",
            _items("bpb", side),
            lambda i: [i["nll"], i["bytes"]],
            u.bpb_statistic,
        )  # fmt: skip
        for side in ("target", "english")
    }
    out.update(
        {f"chrf.{d}.{m}": _translation(d, m) for d in ("to_target", "to_english") for m in ("chrf", "bleu")}
    )
    out["codeswitch.answer_rate"] = Comparable(
        "code-switch answers", "answers", _items("codeswitch"), _switched, u.mean_statistic, proportion=True
    )
    out["codeswitch.word_rate"] = Comparable(
        "code-switch words", "answers", _items("codeswitch"),
        lambda i: [i["non_target_words"], i["words"]], u.ratio_statistic,
    )  # fmt: skip
    out["judge.mean"] = Comparable("judge mean", "prompts", _items("judge"), _judge_row, judge_overall)
    return out


def _judge_row(item: dict[str, Any]) -> list[float] | None:
    # Axis order fixed by the rubric: the row is only meaningful beside rows of the same axes.
    from ltk.evaluate.judge import Rubric, judge_stats

    return judge_stats([item], Rubric.load().axes)[0]


def _pair_up(
    items_a: list[dict[str, Any]], items_b: list[dict[str, Any]], row: Callable[[dict[str, Any]], Any]
) -> tuple[list[list[float]], list[list[float]]]:
    """Rows of the items both sides scored (matched by id, in A's order)."""
    by_id = {str(i.get("id")): i for i in items_b}
    a_rows, b_rows = [], []
    for item in items_a:
        other = by_id.get(str(item.get("id")))
        if other is None:
            continue
        ra, rb = row(item), row(other)
        if ra is not None and rb is not None:
            a_rows.append(ra)
            b_rows.append(rb)
    return a_rows, b_rows


def compare(metrics_a: dict[str, Any], metrics_b: dict[str, Any], key: str) -> dict[str, Any] | None:
    """B - A on ``key`` over the items both scored, with a 95% paired-bootstrap interval; ``None`` when
    either side has no per-item scores (an older eval JSON) or they share no item."""
    import numpy as np

    spec = comparables().get(key)
    if spec is None:
        raise ValueError(f"unknown comparison {key!r}; choose from {', '.join(comparables())}")
    strata_a, strata_b = spec.strata(metrics_a), spec.strata(metrics_b)
    if not strata_a or not strata_b or len(strata_a) != len(strata_b):
        return None
    pairs = [_pair_up(a, b, spec.row) for a, b in zip(strata_a, strata_b, strict=True)]
    if not all(a for a, _ in pairs):
        return None
    values_a = [float(spec.statistic(np.asarray(a, dtype=float).sum(0)[None])[0]) for a, _ in pairs]
    values_b = [float(spec.statistic(np.asarray(b, dtype=float).sum(0)[None])[0]) for _, b in pairs]
    n = sum(len(a) for a, _ in pairs)
    out: dict[str, Any] = {
        "metric": key,
        "label": spec.label,
        "a": sum(values_a) / len(pairs),
        "b": sum(values_b) / len(pairs),
        "n": n,
        "unit": spec.unit,
        "level": u.LEVEL,
        "method": "paired bootstrap percentile",
        "resamples": u.RESAMPLES,
        "seed": u.SEED,
    }
    out["difference"] = out["b"] - out["a"]
    if all(len(a) >= 2 for a, _ in pairs):
        deltas = sum(
            u.bootstrap_distribution(b, spec.statistic) - u.bootstrap_distribution(a, spec.statistic)
            for a, b in pairs
        ) / len(pairs)
        ci = u.percentile_interval(deltas)
        out["ci"] = None if ci is None else list(ci)
    else:
        out["ci"] = None
    if spec.proportion:
        only_a = sum(ra[0] > rb[0] for a, b in pairs for ra, rb in zip(a, b, strict=True))
        only_b = sum(rb[0] > ra[0] for a, b in pairs for ra, rb in zip(a, b, strict=True))
        out["mcnemar"] = {
            "only_a": int(only_a),
            "only_b": int(only_b),
            "p_value": u.mcnemar_exact(only_a, only_b),
        }
    return out


def verdict(diff: dict[str, Any] | None, expect: str) -> tuple[str, str]:
    """Whether a paired difference supports an expected direction (``"increase"`` or ``"decrease"``) at
    95%: holds when its interval excludes 0 on that side, contradicted when it excludes 0 on the other
    side, inconclusive when it contains 0 (or there is no interval). Returns (verdict, reason)."""
    if expect not in ("increase", "decrease"):
        raise ValueError(f"expect must be 'increase' or 'decrease', not {expect!r}")
    if diff is None or diff.get("ci") is None:
        return INCONCLUSIVE, "no paired per-item scores to compare"
    lo, hi = diff["ci"]
    text = f"{diff['difference']:+.4g} [{lo:+.4g}, {hi:+.4g}] over {diff['n']} {diff['unit']}"
    up = lo > 0
    down = hi < 0
    if not up and not down:
        return INCONCLUSIVE, f"{text}: the 95% interval contains 0"
    mcnemar = diff.get("mcnemar")
    if mcnemar and mcnemar["p_value"] >= 1 - diff.get("level", u.LEVEL):
        # With few discordant answers the bootstrap interval is too narrow; the exact test decides.
        return (
            INCONCLUSIVE,
            f"{text}, but McNemar's exact test p={mcnemar['p_value']:.3g} (too few answers differ)",
        )
    went = "increase" if up else "decrease"
    if went == expect:
        return HOLDS, f"{text}: a clear {went} (95% interval excludes 0)"
    return CONTRADICTED, f"{text}: a clear {went}, the opposite of the claim"


def combine(verdicts: list[str]) -> str:
    """A claim made of several parts: contradicted if any part is, holds if all do, else inconclusive."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return INCONCLUSIVE


def proportion_verdict(
    rate: float | None, ci: list[float] | None, low: float, high: float
) -> tuple[str, str]:
    """A claimed range for a proportion (the study's 2-5% code-switch rate): holds when the interval lies
    inside [low, high], contradicted when it lies wholly outside, inconclusive when it overlaps."""
    if rate is None or ci is None:
        return INCONCLUSIVE, "no interval"
    text = f"{100 * rate:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    if low <= ci[0] and ci[1] <= high:
        return HOLDS, f"{text} lies inside {100 * low:g}-{100 * high:g}%"
    if ci[0] > high or ci[1] < low:
        return CONTRADICTED, f"{text} lies outside {100 * low:g}-{100 * high:g}%"
    return INCONCLUSIVE, f"{text} overlaps {100 * low:g}-{100 * high:g}% but does not lie inside it"
