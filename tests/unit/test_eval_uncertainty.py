"""Intervals and paired comparisons checked against known cases: scipy's and sacrebleu's own bootstrap
on the same resamples, published Wilson intervals, self-comparison, clearly different systems, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from sacrebleu.metrics import CHRF

from ltk.evaluate import uncertainty as u
from ltk.evaluate.codeswitch import codeswitch_intervals
from ltk.evaluate.compare import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    combine,
    compare,
    proportion_verdict,
    verdict,
)
from ltk.evaluate.translation import score_with_items, translation_intervals

REFS = [
    "Pachiyambi Mulungu adalenga zakumwamba ndi dziko lapansi.",
    "Ndipo dziko lapansi linali lopanda kanthu, ndi lopanda maonekedwe.",
    "Ndipo Mulungu anati, Pakhale kuwala; ndipo kudakhala kuwala.",
    "Ndipo Mulungu anaona kuwala, kuti kuli kwabwino.",
    "Ndipo Mulungu anati kuwala Usana, ndi mdima anati Usiku.",
    "Ndipo panali madzulo ndi m'mawa, tsiku loyamba.",
    "Ndipo Mulungu anati, Pakhale thambo pakati pa madzi.",
    "Ndipo Mulungu anapanga thambo, nagawa madzi.",
]


def test_bootstrap_of_a_fixed_sample_equals_scipy_on_the_same_resamples() -> None:
    # A fixed sample of per-document (NLL, bytes); bits per byte is a ratio of sums.
    rng = np.random.default_rng(7)
    nll = rng.uniform(200, 900, size=40)
    n_bytes = rng.integers(300, 1200, size=40).astype(float)
    ours = u.bootstrap_interval(np.c_[nll, n_bytes], u.bpb_statistic, resamples=2000, seed=3)
    # scipy draws resample indices with the same generator call, so the percentiles must agree.
    ref = scipy.stats.bootstrap(
        (nll, n_bytes),
        lambda a, b, axis=-1: a.sum(axis) / (math.log(2) * b.sum(axis)),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(3),
    ).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), rel=1e-9)
    point = nll.sum() / (math.log(2) * n_bytes.sum())
    assert ours[0] < point < ours[1]


def test_chrf_bootstrap_resamples_exactly_what_sacrebleu_resamples() -> None:
    hyps = [r.replace("Mulungu", "Mulugu").replace("ndi", "ndi ndi") for r in REFS]
    chrf = CHRF()
    scores, items = score_with_items(hyps, REFS, [str(i) for i in range(len(REFS))])
    assert scores["chrf"] == pytest.approx(chrf.corpus_score(hyps, [REFS]).score)
    # sacrebleu's own single-system bootstrap (seed 12345, 1000 resamples): the same resampled scores.
    from sacrebleu.significance import _bootstrap_resample

    stats = chrf._extract_corpus_statistics(hyps, [REFS])
    _, reference = _bootstrap_resample(stats, chrf, 1000)
    ours = u.bootstrap_distribution([i["chrf"] for i in items], u.sacrebleu_statistic(chrf))
    # (sacrebleu sums float32 statistics, ltk float64: equal to float32 precision)
    assert ours == pytest.approx([s.score for s in reference], abs=1e-4)
    ci = translation_intervals([items])["chrf"]
    assert ci["ci"] == pytest.approx(list(u.percentile_interval(ours)))
    assert ci["unit"] == "segments" and ci["n"] == len(REFS) and ci["seed"] == u.SEED
    assert ci["ci"][0] < scores["chrf"] < ci["ci"][1]


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no correction).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = u.wilson_interval(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_of_nothing_and_mcnemar_exact() -> None:
    assert u.wilson_interval(0, 0) is None
    assert u.mcnemar_exact(0, 0) == 1.0
    # 1 discordant pair against 8: two-sided binomial p = 2 * 10/512.
    assert u.mcnemar_exact(1, 8) == pytest.approx(2 * 10 / 512)


def test_intervals_are_reproducible() -> None:
    stats = np.random.default_rng(1).uniform(0, 1, size=(25, 2))
    assert u.bootstrap_interval(stats, u.ratio_statistic) == u.bootstrap_interval(stats, u.ratio_statistic)
    assert u.bootstrap_interval(stats[:1], u.ratio_statistic) is None  # one item: no interval


def _bpb_metrics(nll: np.ndarray, n_bytes: np.ndarray) -> dict:
    items = [
        {"id": f"d{i}", "nll": float(a), "tokens": 100, "bytes": float(b)}
        for i, (a, b) in enumerate(zip(nll, n_bytes, strict=True))
    ]
    return {"bpb": {"target": {"items": items}}}


def test_paired_self_comparison_contains_zero() -> None:
    rng = np.random.default_rng(2)
    m = _bpb_metrics(rng.uniform(100, 900, 30), rng.uniform(200, 800, 30))
    diff = compare(m, m, "bpb.target")
    assert diff["difference"] == 0 and diff["ci"][0] <= 0 <= diff["ci"][1]
    assert verdict(diff, "decrease")[0] == INCONCLUSIVE


def test_paired_comparison_of_clearly_different_systems_excludes_zero() -> None:
    rng = np.random.default_rng(3)
    n_bytes = rng.uniform(200, 800, 30)
    hard = rng.uniform(1.0, 3.0, 30)  # documents differ a lot in difficulty ...
    a = _bpb_metrics(hard * n_bytes, n_bytes)
    b = _bpb_metrics(hard * n_bytes * 0.9 + rng.normal(0, 5, 30), n_bytes)  # ... B is 10% better on each
    diff = compare(a, b, "bpb.target")
    assert diff["ci"][1] < 0 and diff["n"] == 30 and diff["unit"] == "documents"
    assert verdict(diff, "decrease")[0] == HOLDS
    assert verdict(diff, "increase")[0] == CONTRADICTED
    # Unpaired intervals of the two systems overlap: pairing is what makes the difference visible.
    ia = u.bootstrap_interval([[i["nll"], i["bytes"]] for i in a["bpb"]["target"]["items"]], u.bpb_statistic)
    ib = u.bootstrap_interval([[i["nll"], i["bytes"]] for i in b["bpb"]["target"]["items"]], u.bpb_statistic)
    assert ib[1] > ia[0]


def test_paired_translation_and_codeswitch_comparisons() -> None:
    ids = [str(i) for i in range(len(REFS))]
    _, good = score_with_items(REFS, REFS, ids)
    _, bad = score_with_items([r[: len(r) // 3] for r in REFS], REFS, ids)
    ma = {"chrf": {"sets": {"s": {"to_target": {"items": bad}}}}}
    mb = {"chrf": {"sets": {"s": {"to_target": {"items": good}}}}}
    diff = compare(ma, mb, "chrf.to_target.chrf")
    assert diff["ci"][0] > 0 and diff["b"] == pytest.approx(100.0)
    assert compare(ma, ma, "chrf.to_target.chrf")["ci"] == [0.0, 0.0]

    def answers(switched: list[bool]) -> dict:
        items = [
            {"id": str(i), "switched": s, "words": 10, "non_target_words": 8 * s}
            for i, s in enumerate(switched)
        ]
        return {"codeswitch": {"items": items}}

    before = answers([True] * 18 + [False] * 2)
    after = answers([False] * 18 + [True] * 2)
    diff = compare(before, after, "codeswitch.answer_rate")
    assert diff["difference"] == pytest.approx(-0.8) and diff["ci"][1] < 0
    assert diff["mcnemar"]["only_a"] == 18 and diff["mcnemar"]["only_b"] == 2
    assert diff["mcnemar"]["p_value"] < 0.001
    assert verdict(diff, "decrease")[0] == HOLDS
    # 3 of 4 answers stop switching: the bootstrap interval excludes 0, but 3 discordant answers cannot
    # decide (McNemar p = 0.25), so the reading is inconclusive.
    few = compare(answers([True] * 3 + [False]), answers([False] * 4), "codeswitch.answer_rate")
    assert few["ci"][1] < 0 and few["mcnemar"]["p_value"] == pytest.approx(0.25)
    label, reason = verdict(few, "decrease")
    assert label == INCONCLUSIVE and "McNemar" in reason


def test_old_results_without_items_compare_to_none() -> None:
    old = {"bpb": {"target": {"bits_per_byte": 2.0}}}
    assert compare(old, old, "bpb.target") is None
    assert verdict(None, "decrease") == (INCONCLUSIVE, "no paired per-item scores to compare")


def test_verdict_function_cases() -> None:
    def d(lo: float, hi: float) -> dict:
        return {"difference": (lo + hi) / 2, "ci": [lo, hi], "n": 50, "unit": "documents"}

    assert verdict(d(-0.3, -0.1), "decrease")[0] == HOLDS
    assert verdict(d(-0.3, 0.1), "decrease")[0] == INCONCLUSIVE  # straddles no effect
    assert verdict(d(0.1, 0.3), "decrease")[0] == CONTRADICTED
    assert verdict(d(0.1, 0.3), "increase")[0] == HOLDS
    label, reason = verdict(d(-0.3, 0.1), "decrease")
    assert "contains 0" in reason and "50 documents" in reason
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([HOLDS, CONTRADICTED]) == CONTRADICTED
    assert proportion_verdict(0.03, [0.021, 0.045], 0.02, 0.05)[0] == HOLDS
    assert proportion_verdict(0.25, [0.1, 0.45], 0.02, 0.05)[0] == CONTRADICTED
    assert proportion_verdict(0.06, [0.01, 0.2], 0.02, 0.05)[0] == INCONCLUSIVE
    with pytest.raises(ValueError):
        verdict(d(0, 1), "up")


def test_codeswitch_intervals_units() -> None:
    scored = [{"switched": i < 3, "mixed": i < 5, "words": 10, "non_target_words": 6 * (i < 3), "lines": 1,
               "non_target_lines": int(i < 3)} for i in range(20)]  # fmt: skip
    ci = codeswitch_intervals(scored)
    assert ci["answer_rate"]["method"] == "wilson" and ci["answer_rate"]["n"] == 20
    assert ci["answer_rate"]["ci"] == pytest.approx(list(u.wilson_interval(3, 20)))
    assert (
        ci["word_rate"]["unit"] == "answers"
        and ci["word_rate"]["ci"][0] < 18 / 200 < ci["word_rate"]["ci"][1]
    )


def test_eval_summary_shows_intervals_and_old_results_without() -> None:
    from ltk.evaluate.run import summary_rows

    rng = np.random.default_rng(4)
    items = [
        {"id": str(i), "nll": float(x), "tokens": 50, "bytes": 300}
        for i, x in enumerate(rng.uniform(400, 500, 20))
    ]
    from ltk.evaluate.bpb import bpb_intervals

    side = {"bits_per_byte": 2.0, "token_perplexity": 30.0, "intervals": bpb_intervals(items)}
    rows = dict(summary_rows({"metrics": {"bpb": {"target": side, "english": side}}}))
    lo, hi = side["intervals"]["bits_per_byte"]["ci"]
    assert rows["bits/byte target"] == f"2.0000 [{lo:.4f}, {hi:.4f}] (20 documents)  (token ppl 30.00)"
    old = {"bits_per_byte": 2.0, "token_perplexity": 30.0}
    assert dict(summary_rows({"metrics": {"bpb": {"target": old, "english": old}}}))["bits/byte target"] == (
        "2.0000  (token ppl 30.00)"
    )


def test_report_changes_table_pairs_whole_stages_and_runs() -> None:
    from pathlib import Path

    from ltk.evaluate.report import Run, changes_table

    rng = np.random.default_rng(5)
    n_bytes = rng.uniform(200, 800, 12)

    def ev(scale: float) -> dict:
        return {"metrics": _bpb_metrics(n_bytes * scale, n_bytes)}

    a = Run("a", Path("a"), {"base": ev(2.0), "cpt-step10": ev(1.9), "cpt": ev(1.5)})
    b = Run("b", Path("b"), {"base": ev(2.0)})
    header, rows = changes_table([a, b])
    assert header[2] == "difference [95% interval]"
    assert [r[0] for r in rows] == ["a: base → cpt", "a → b (base)"]  # no step checkpoint in the table
    assert (
        rows[0][1] == "bits/byte target" and rows[0][4].startswith("lower") and rows[0][3] == "12 documents"
    )
    assert rows[1][4].startswith("no clear change")
