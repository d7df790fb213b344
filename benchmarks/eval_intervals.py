"""The cost of intervals: how much of an eval run goes into the 95% intervals (computed from per-item
scores the metrics already have), against the naive way of bootstrapping chrF/BLEU (rescoring the
resampled strings with sacrebleu each time), in the same run.

    python benchmarks/eval_intervals.py

Model: the embedded SmolLM2-135M-Instruct (the real model, so the eval run is a real one), on the small
Chichewa/English build the eval tests use, with the quickstart's evaluation budget. Target: intervals
under 5% of the eval run. Writes benchmarks/results/eval_intervals.{json,md}.
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from _eval_build import make_build  # noqa: E402

from ltk.evaluate.bpb import bpb_intervals  # noqa: E402
from ltk.evaluate.codeswitch import codeswitch_intervals  # noqa: E402
from ltk.evaluate.translation import translation_intervals  # noqa: E402
from ltk.evaluate.uncertainty import RESAMPLES, SEED, bootstrap_interval, ratio_statistic  # noqa: E402


def all_intervals(met: dict) -> None:
    """Every interval evaluate_model computes, from the items stored in its eval JSON."""
    for side in ("target", "english"):
        bpb_intervals(met["bpb"][side]["items"])
    codeswitch_intervals([i for i in met["codeswitch"]["items"] if i["switched"] is not None])
    for direction in ("to_target", "to_english"):
        sets = [s[direction]["items"] for s in met["chrf"]["sets"].values()]
        for items in sets:
            translation_intervals([items])
        translation_intervals(sets)
    # The premium's per-pair counts are not stored; bootstrap a same-sized ratio sample instead.
    bootstrap_interval([[3, 2]] * met["premium"]["pairs"], ratio_statistic)


def naive_chrf_bootstrap(samples: list[dict]) -> None:
    """Without sufficient statistics: rescore the resampled hypothesis/reference strings every time."""
    import numpy as np
    import sacrebleu

    for direction in ("to_target", "to_english"):
        rows = [s for s in samples if s.get("direction") == direction]
        hyps, refs = [r["hypothesis"] for r in rows], [r["reference"] for r in rows]
        idx = np.random.default_rng(SEED).choice(len(rows), size=(RESAMPLES, len(rows)))
        for draw in idx:
            h, r = [hyps[i] for i in draw], [refs[i] for i in draw]
            sacrebleu.corpus_chrf(h, [r])
            sacrebleu.corpus_bleu(h, [r])


def timed(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = sorted(set(re.findall(r"\b(amx_bf16|avx512_bf16|avx512f|avx2)\b", text)))
    return f"{model.group(1) if model else platform.processor()}; flags: {', '.join(flags) or 'none of avx2/avx512'}"


def main() -> None:
    import torch

    from ltk.assets import resolve_model
    from ltk.evaluate.run import evaluate_model

    torch.set_num_threads(1)
    model = resolve_model("embedded:smollm2-135m")
    with tempfile.TemporaryDirectory() as tmp:
        build = make_build(Path(tmp) / "build")
        start = time.perf_counter()
        result = evaluate_model(
            model, build, Path(tmp) / "run", "bpb,codeswitch,chrf,premium", stage="base",
            max_docs=4, max_prompts=8, max_pairs=8, max_new_tokens=48, context_length=2048,
        )  # fmt: skip
        eval_seconds = time.perf_counter() - start
        samples = [json.loads(x) for x in (Path(tmp) / "run" / "eval" / "base.samples.jsonl").open()]
    met = result["metrics"]
    interval_seconds = timed(lambda: all_intervals(met))
    naive_seconds = timed(lambda: naive_chrf_bootstrap(samples), rounds=1)
    chrf_seconds = timed(
        lambda: [translation_intervals([s[d]["items"]]) for s in met["chrf"]["sets"].values() for d in ("to_target", "to_english")]
    )  # fmt: skip
    # Larger eval sets (10x the items, about the full experiment's chapters/prompts/verses): still cheap?
    big = json.loads(json.dumps(met))
    for side in ("target", "english"):
        big["bpb"][side]["items"] *= 10
    big["codeswitch"]["items"] *= 10
    for s in big["chrf"]["sets"].values():
        for d in ("to_target", "to_english"):
            s[d]["items"] = [dict(i, id=f"{k}-{i['id']}") for k in range(10) for i in s[d]["items"]]
    big_seconds = timed(lambda: all_intervals(big))
    counts = {
        "documents per language": met["bpb"]["target"]["documents"],
        "answers": len(met["codeswitch"]["items"]),
        "segments per direction": sum(len(s["to_target"]["items"]) for s in met["chrf"]["sets"].values()),
    }
    result_out = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} thread (shared 2-core VM); {cpu_flags()}",
        "torch": torch.__version__,
        "model": "embedded:smollm2-135m (SmolLM2-135M-Instruct)",
        "items": counts,
        "resamples": RESAMPLES,
        "eval_run_seconds": round(eval_seconds, 2),
        # The metrics' own time (model load left out): the stricter denominator.
        "metric_seconds": round(sum(result["seconds"].values()), 2),
        "interval_seconds": round(interval_seconds, 4),
        "interval_share_of_eval": round(interval_seconds / eval_seconds, 5),
        "interval_share_of_metrics": round(interval_seconds / sum(result["seconds"].values()), 5),
        "chrf_bleu_intervals_seconds": round(chrf_seconds, 4),
        "naive_chrf_bleu_bootstrap_seconds": round(naive_seconds, 4),
        "speedup_vs_naive": round(naive_seconds / chrf_seconds, 1),
        "intervals_10x_items_seconds": round(big_seconds, 4),
        "target": "intervals under 5% of an eval run",
        "met": interval_seconds / sum(result["seconds"].values()) < 0.05,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_intervals.json").write_text(json.dumps(result_out, indent=2) + "\n")
    r = result_out
    md = f"""# Intervals: their share of an eval run, and sufficient statistics vs rescoring strings

Date {r["date"]}; {r["machine"]}; torch {r["torch"]}. {r["model"]} on the eval tests' Chichewa/English build
({r["items"]["documents per language"]} held-out documents per language, {r["items"]["answers"]} answers,
{r["items"]["segments per direction"]} verse pairs per direction; 48 new tokens), {r["resamples"]} resamples.

| what | seconds |
|---|---|
| the eval run (model load, bits per byte, code-switch, chrF/BLEU, premium; intervals included) | {r["eval_run_seconds"]:.2f} |
| of which the metrics themselves (no model load) | {r["metric_seconds"]:.2f} |
| every interval of that run, from its per-item scores (median of 3) | {r["interval_seconds"]:.4f} ({100 * r["interval_share_of_metrics"]:.2f}% of the metrics' time, {100 * r["interval_share_of_eval"]:.2f}% of the run) |
| the same intervals with 10x the items | {r["intervals_10x_items_seconds"]:.4f} |
| chrF + BLEU intervals, both directions: ltk (sacrebleu sufficient statistics) | {r["chrf_bleu_intervals_seconds"]:.4f} |
| chrF + BLEU intervals, both directions: naive (rescore resampled strings) | {r["naive_chrf_bleu_bootstrap_seconds"]:.4f} ({r["speedup_vs_naive"]}x slower) |

Target: intervals under 5% of an eval run (measured against the metrics' time): {"met" if r["met"] else "NOT met"}.
The interval cost hardly grows with the number of items (1000 vectorised resamples; chrF/BLEU rescore
sacrebleu's summed statistics once per resample), so larger eval sets only lower the share.
"""
    (out / "eval_intervals.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
