"""The metrics ``ltk eval`` can run, in one registry: each names the eval sets it needs (read and checked
before any model loads), how it runs on a loaded model, and how it reads in the end-of-run summary.

    bpb         bits per byte on held-out target and English text
    premium     tokenizer premium on parallel text
    codeswitch  answers to held-out prompts not in the target language
    chrf        chrF/BLEU of the model's own translations, both directions
    harness     lm-evaluation-harness tasks (when lm-eval is installed)
    judge       an LLM judge on the study's five axes (needs a judge backend)

``EvalOptions`` holds the limits and settings shared by ``ltk eval``, the quickstart, the experiment and
the training callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError


@dataclass(frozen=True)
class EvalOptions:
    """How much to evaluate and how; ``None`` limits fall back to the langpack's eval section."""

    max_docs: int | None = None  # held-out documents per language (bits per byte)
    max_prompts: int | None = None  # held-out prompts (code-switch, judge)
    max_pairs: int | None = None  # parallel pairs per set (chrF)
    premium_pairs: int = 1000
    context_length: int | None = None  # bits-per-byte window in tokens
    stride: int | None = None
    max_new_tokens: int = 128
    batch_size: int = 8
    device: str | None = None
    judge: Any = None  # a backend from ltk.evaluate.judge.make_backend
    judge_price: tuple[float, float] = (0.0, 0.0)  # USD per million input, output tokens
    harness_tasks: list[str] | None = None

    def limits(self, info: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_docs": self.max_docs or info.get("max_documents") or 200,
            "max_prompts": self.max_prompts or info.get("prompts") or 50,
            "max_pairs": self.max_pairs or 200,
        }


@dataclass
class EvalContext:
    """What a metric runs with: the loaded model, the checked eval sets, and what metrics share."""

    model: Any
    tokenizer: Any
    inputs: dict[str, Any]
    info: dict[str, Any]  # the build's language (name, codes, eval settings)
    options: EvalOptions
    limits: dict[str, Any]
    eval_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] | None = None  # answers to the held-out prompts, once generated
    pending_error: LtkError | None = None  # reported after every other metric has been written

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        self.seconds[name] = round(time.perf_counter() - start, 2)
        return value


@dataclass(frozen=True)
class Metric:
    name: str
    needs: tuple[str, ...]  # keys of INPUTS, read before the model loads
    run: Callable[[EvalContext], dict[str, Any]]
    summary: Callable[[dict[str, Any]], list[tuple[str, str]]]


# ------------------------------------------------------------------------------------------- the sets
def _heldout(split: str) -> Callable[[Path, dict[str, Any]], Any]:
    def read(build_dir: Path, limits: dict[str, Any]) -> Any:
        from ltk.evaluate.data import read_texts

        return read_texts(build_dir, split, limits["max_docs"])

    return read


def _prompts(build_dir: Path, limits: dict[str, Any]) -> Any:
    from ltk.evaluate.data import read_prompts

    return read_prompts(build_dir, limits["max_prompts"])


def _detector(build_dir: Path, limits: dict[str, Any]) -> Any:
    from ltk.evaluate.codeswitch import detector_for_build
    from ltk.evaluate.data import language_info

    return detector_for_build(build_dir, language_info(build_dir))


def _parallel(build_dir: Path, limits: dict[str, Any]) -> Any:
    from ltk.errors import UsageError
    from ltk.evaluate.data import eval_parallel_names, read_parallel

    names = eval_parallel_names(build_dir)
    if not names:
        raise UsageError("no parallel sets (parallel/*.parquet) to score chrF on")
    return {n: read_parallel(build_dir, n, limits["max_pairs"]) for n in names}


def _premium_pairs(build_dir: Path, limits: dict[str, Any]) -> Any:
    from ltk.errors import UsageError
    from ltk.evaluate.premium import pairs_from_build

    pairs = pairs_from_build(build_dir, limits.get("premium_pairs", 1000))
    if not pairs:
        raise UsageError("no parallel pairs for the tokenizer premium")
    return pairs


# Every eval set a metric can need: key -> reader(build_dir, limits); a UsageError becomes a problem.
INPUTS: dict[str, Callable[[Path, dict[str, Any]], Any]] = {
    "heldout_target": _heldout("heldout_target"),
    "heldout_english": _heldout("heldout_english"),
    "prompts": _prompts,
    "detector": _detector,
    "parallel": _parallel,
    "premium_pairs": _premium_pairs,
}


# ------------------------------------------------------------------------------------------ the metrics
def _run_bpb(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.bpb import bits_per_byte

    return {
        side: ctx.timed(
            f"bpb_{side}",
            lambda side=side: bits_per_byte(
                ctx.model,
                ctx.tokenizer,
                ctx.inputs[f"heldout_{side}"],
                context_length=ctx.options.context_length,
                stride=ctx.options.stride,
                desc=f"bits per byte ({side})",
            ),
        )
        for side in ("target", "english")
    }


def _ci(m: dict[str, Any], key: str, spec: str = "{:.4f}", scale: float = 1.0) -> str:
    """The text " [low, high] (n unit)" for the interval stored beside ``m[key]``; "" if none is."""
    from ltk.evaluate.uncertainty import interval_text

    found = (m.get("intervals") or {}).get(key) or {}
    text = interval_text(found.get("ci"), spec, scale)
    return f" {text} ({found['n']} {found['unit']})" if text else ""


def _sum_bpb(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"bits/byte {side}",
            f"{m[side]['bits_per_byte']:.4f}{_ci(m[side], 'bits_per_byte')}"
            f"  (token ppl {m[side]['token_perplexity']:.2f})",
        )
        for side in ("target", "english")
    ]


def _run_premium(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.premium import tokenizer_premium

    return tokenizer_premium(ctx.tokenizer, ctx.inputs["premium_pairs"])


def _sum_premium(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("tokenizer premium", f"{m['premium']:.2f}x{_ci(m, 'premium', '{:.2f}')} ({m['advice']['policy']})")
    ]


def _run_codeswitch(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.codeswitch import codeswitch_eval

    result, ctx.answers = ctx.timed(
        "codeswitch",
        lambda: codeswitch_eval(
            ctx.model,
            ctx.tokenizer,
            ctx.inputs["prompts"],
            ctx.inputs["detector"],
            max_new_tokens=ctx.options.max_new_tokens,
            batch_size=ctx.options.batch_size,
        ),
    )
    ctx.samples += [{"kind": "answer", **a} for a in ctx.answers]
    return result


def _sum_codeswitch(m: dict[str, Any]) -> list[tuple[str, str]]:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    return [
        (
            "code-switch",
            f"words {pct(m['word_rate'])}, lines {pct(m['line_rate'])}, answers {pct(m['answer_rate'])}"
            + _ci(m, "answer_rate", "{:.1f}%", 100),
        )
    ]


def _run_chrf(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.translation import translation_eval

    result, samples = ctx.timed(
        "chrf",
        lambda: translation_eval(
            ctx.model,
            ctx.tokenizer,
            ctx.inputs["parallel"],
            ctx.info["name"],
            max_new_tokens=ctx.options.max_new_tokens,
            batch_size=ctx.options.batch_size,
        ),
    )
    ctx.samples += [{"kind": "translation", **s} for s in samples]
    return result


def _sum_chrf(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"chrF/BLEU {d}", f"{m[d]['chrf']:.2f}{_ci(m[d], 'chrf', '{:.2f}')} / {m[d]['bleu']:.2f}")
        for d in ("to_target", "to_english")
    ]


def _run_harness(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.harness import default_tasks, harness_eval

    tasks = ctx.options.harness_tasks or default_tasks(ctx.info)
    return ctx.timed(
        "harness",
        lambda: harness_eval(
            ctx.model, ctx.tokenizer, tasks, limit=ctx.options.max_docs, batch_size=ctx.options.batch_size
        ),
    )


def _sum_harness(m: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("harness", f"skipped: {m['skipped']}")] if "skipped" in m else []
    for task, values in m.get("tasks", {}).items():
        rows.append((task, ", ".join(f"{k} {v:.4f}" for k, v in values.items())))
    return rows


def _answers(ctx: EvalContext) -> list[dict[str, Any]]:
    """Answers to the held-out prompts: the code-switch metric's, or generated here."""
    if ctx.answers is None:
        from ltk.evaluate.generation import generate

        prompts = ctx.inputs["prompts"]
        texts = ctx.timed(
            "answers",
            lambda: generate(
                ctx.model,
                ctx.tokenizer,
                [p.messages for p in prompts],
                max_new_tokens=ctx.options.max_new_tokens,
                batch_size=ctx.options.batch_size,
            ),
        )
        ctx.answers = [
            {"id": p.id, "prompt": p.messages[-1]["content"], "answer": a, "reference": p.reference}
            for p, a in zip(prompts, texts, strict=True)
        ]
        ctx.samples += [{"kind": "answer", **a} for a in ctx.answers]
    return ctx.answers


def _run_judge(ctx: EvalContext) -> dict[str, Any]:
    from ltk.evaluate.judge import JudgeCache, judge_samples

    answers = _answers(ctx)
    cache = JudgeCache.open(ctx.eval_dir / "judge-cache.jsonl")
    price_in, price_out = ctx.options.judge_price
    try:
        return ctx.timed(
            "judge",
            lambda: judge_samples(
                answers,
                ctx.options.judge,
                cache,
                language=ctx.info["name"],
                price_in_per_mtok=price_in,
                price_out_per_mtok=price_out,
            ),
        )
    except LtkError as exc:
        # Keep every other metric: the file is written with the judge's error, then it is reported.
        ctx.pending_error = exc
        return {"error": str(exc)}


def _sum_judge(m: dict[str, Any]) -> list[tuple[str, str]]:
    if "error" in m:
        return [("judge", "failed: see the message below")]
    scores = ", ".join(f"{k} {v:.2f}" for k, v in m["scores"].items() if v is not None)
    if m.get("mean") is not None:
        scores += f"; mean {m['mean']:.2f}{_ci(m, 'mean', '{:.2f}')}"
    return [("judge (0-3)", scores or f"no parseable verdict ({m['unparsed']} replies)")]


# In the order they run: the judge reuses the code-switch metric's answers when both are chosen.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("bpb", ("heldout_target", "heldout_english"), _run_bpb, _sum_bpb),
        Metric("premium", ("premium_pairs",), _run_premium, _sum_premium),
        Metric("codeswitch", ("prompts", "detector"), _run_codeswitch, _sum_codeswitch),
        Metric("chrf", ("parallel",), _run_chrf, _sum_chrf),
        Metric("harness", (), _run_harness, _sum_harness),
        Metric("judge", ("prompts",), _run_judge, _sum_judge),
    )
}
