"""``evaluate_model``: every chosen metric on one model, written atomically to ``<run>/eval/<stage>.json``
(plus the generated samples beside it). Inputs are checked before the model loads, so bad input fails in
seconds, and a failure never leaves a half-written file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, Problem, UsageError, ValidationError
from ltk.evaluate import ALL_METRICS, DEFAULT_METRICS


def parse_metrics(metrics: str | Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(DEFAULT_METRICS)
    items = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    if "all" in items:
        return list(ALL_METRICS)
    unknown = [m for m in items if m not in ALL_METRICS]
    if unknown or not items:
        raise UsageError(
            f"--metrics: unknown metric(s) {unknown or items}; choose from {', '.join(ALL_METRICS)}"
        )
    return list(dict.fromkeys(items))


def guess_stage(model: Any) -> str:
    """runs/<name>/cpt/... -> cpt, runs/<name>/sft/... -> sft, anything else -> base."""
    if isinstance(model, (str, Path)):
        for part in reversed(Path(str(model)).parts):
            if part in ("cpt", "sft"):
                return part
    return "base"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("ltk", "torch", "transformers", "sacrebleu", "pycld2", "lm-eval"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _preflight(build_dir: Path, chosen: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    """Read every eval set the chosen metrics need, gathering all problems before any model loads."""
    from ltk.evaluate import data

    inputs: dict[str, Any] = {}
    problems: list[Problem] = []
    if not build_dir.is_dir():
        raise UsageError(
            f"build folder {build_dir} does not exist; build it with `ltk build-langpack CODE --out "
            f"{build_dir.parent}` or pass --build build/<code>"
        )

    def attempt(key: str, fn: Any, *args: Any) -> None:
        try:
            inputs[key] = fn(*args)
        except UsageError as exc:
            problems.append(Problem(str(build_dir), key, str(exc)))

    if "bpb" in chosen:
        attempt("heldout_target", data.read_texts, build_dir, "heldout_target", limits["max_docs"])
        attempt("heldout_english", data.read_texts, build_dir, "heldout_english", limits["max_docs"])
    if "codeswitch" in chosen or "judge" in chosen:
        attempt("prompts", data.read_prompts, build_dir, limits["max_prompts"])
    if "codeswitch" in chosen:
        from ltk.evaluate.codeswitch import detector_for_build

        attempt("detector", detector_for_build, build_dir, data.language_info(build_dir))
    if "chrf" in chosen:
        names = data.eval_parallel_names(build_dir)
        if not names:
            problems.append(
                Problem(str(build_dir), "parallel", "no parallel sets (parallel/*.parquet) to score chrF on")
            )
        else:
            attempt(
                "parallel",
                lambda: {n: data.read_parallel(build_dir, n, limits["max_pairs"]) for n in names},
            )
    if "premium" in chosen:
        from ltk.evaluate.premium import pairs_from_build

        attempt("premium_pairs", pairs_from_build, build_dir, limits.get("premium_pairs", 1000))
        if "premium_pairs" in inputs and not inputs["premium_pairs"]:
            problems.append(
                Problem(str(build_dir), "parallel", "no parallel pairs for the tokenizer premium")
            )
    if problems:
        raise ValidationError(problems)
    return inputs


def evaluate_model(
    model: Any,
    build_dir: str | Path,
    out: str | Path,
    metrics: str | Iterable[str] | None = None,
    *,
    tokenizer: Any = None,
    stage: str | None = None,
    max_docs: int | None = None,
    max_prompts: int | None = None,
    max_pairs: int | None = None,
    context_length: int | None = None,
    stride: int | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    judge: Any = None,
    judge_price: tuple[float, float] = (0.0, 0.0),
    harness_tasks: list[str] | None = None,
    device: str | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (a path, hub id, ``embedded:...`` name, or a loaded model + ``tokenizer``) on the
    build folder's eval sets; write ``<out>/eval/<stage>.json`` and return its content.

    ``judge`` is a backend from ``ltk.evaluate.judge.make_backend`` (needed for the judge metric)."""
    from ltk.evaluate.data import language_info
    from ltk.evaluate.loading import as_loaded

    build_dir = Path(build_dir)
    out = Path(out)
    chosen = parse_metrics(metrics)
    stage = stage or guess_stage(model)
    info = language_info(build_dir)
    limits = {
        "max_docs": max_docs or info.get("max_documents") or 200,
        "max_prompts": max_prompts or info.get("prompts") or 50,
        "max_pairs": max_pairs or 200,
    }
    if "judge" in chosen and judge is None:
        raise UsageError(
            "the judge metric needs a judge: --judge-url URL --judge-model NAME, or --judge-model PATH"
        )
    inputs = _preflight(build_dir, chosen, limits)
    loaded = as_loaded(model, tokenizer, device=device)
    result: dict[str, Any] = {
        "meta": {
            "model": loaded.name,
            "model_requested": str(model) if isinstance(model, (str, Path)) else loaded.name,
            "stage": stage,
            "build_dir": str(build_dir),
            "language": info,
            "metrics": chosen,
            "limits": limits,
            "versions": _versions(),
        },
        "metrics": {},
        "seconds": {},
    }
    result["meta"].update(extra_meta or {})
    samples: list[dict[str, Any]] = []
    eval_dir = out / "eval"
    answers: list[dict[str, Any]] | None = None
    pending_error: LtkError | None = None

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        value = fn()
        result["seconds"][name] = round(time.perf_counter() - start, 2)
        return value

    m, tok = loaded.model, loaded.tokenizer
    if "bpb" in chosen:
        from ltk.evaluate.bpb import bits_per_byte

        result["metrics"]["bpb"] = {
            side: timed(
                f"bpb_{side}",
                lambda side=side: bits_per_byte(
                    m,
                    tok,
                    inputs[f"heldout_{side}"],
                    context_length=context_length,
                    stride=stride,
                    desc=f"bits per byte ({side})",
                ),
            )
            for side in ("target", "english")
        }
    if "premium" in chosen:
        from ltk.evaluate.premium import tokenizer_premium

        result["metrics"]["premium"] = tokenizer_premium(tok, inputs["premium_pairs"])
    if "codeswitch" in chosen:
        from ltk.evaluate.codeswitch import codeswitch_eval

        cs, answers = timed(
            "codeswitch",
            lambda: codeswitch_eval(
                m,
                tok,
                inputs["prompts"],
                inputs["detector"],
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
            ),
        )
        result["metrics"]["codeswitch"] = cs
    elif "judge" in chosen:
        from ltk.evaluate.generation import generate

        prompts = inputs["prompts"]
        texts = timed(
            "answers",
            lambda: generate(
                m, tok, [p.messages for p in prompts], max_new_tokens=max_new_tokens, batch_size=batch_size
            ),
        )
        answers = [
            {"id": p.id, "prompt": p.messages[-1]["content"], "answer": a, "reference": p.reference}
            for p, a in zip(prompts, texts, strict=True)
        ]
    samples += [{"kind": "answer", **a} for a in answers or []]
    if "chrf" in chosen:
        from ltk.evaluate.translation import translation_eval

        tr, tr_samples = timed(
            "chrf",
            lambda: translation_eval(
                m, tok, inputs["parallel"], info["name"], max_new_tokens=max_new_tokens, batch_size=batch_size
            ),
        )
        result["metrics"]["chrf"] = tr
        samples += [{"kind": "translation", **s} for s in tr_samples]
    if "harness" in chosen:
        from ltk.evaluate.harness import default_tasks, harness_eval

        result["metrics"]["harness"] = timed(
            "harness",
            lambda: harness_eval(
                m, tok, harness_tasks or default_tasks(info), limit=max_docs, batch_size=batch_size
            ),
        )
    if "judge" in chosen:
        from ltk.evaluate.judge import JudgeCache, judge_samples

        cache = JudgeCache.open(eval_dir / "judge-cache.jsonl")
        try:
            result["metrics"]["judge"] = timed(
                "judge",
                lambda: judge_samples(
                    answers or [],
                    judge,
                    cache,
                    language=info["name"],
                    price_in_per_mtok=judge_price[0],
                    price_out_per_mtok=judge_price[1],
                ),
            )
        except LtkError as exc:
            # Keep every other metric: write the file with the judge's error, then report it.
            result["metrics"]["judge"] = {"error": str(exc)}
            pending_error = exc
    write_jsonl_atomic(eval_dir / f"{stage}.samples.jsonl", samples)
    write_json_atomic(eval_dir / f"{stage}.json", result)
    if pending_error is not None:
        raise pending_error
    return result


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) lines for the end-of-run summary table."""
    rows: list[tuple[str, str]] = []
    met = result["metrics"]
    if "bpb" in met:
        for side in ("target", "english"):
            b = met["bpb"][side]
            rows.append(
                (f"bits/byte {side}", f"{b['bits_per_byte']:.4f}  (token ppl {b['token_perplexity']:.2f})")
            )
    if "codeswitch" in met:
        cs = met["codeswitch"]
        fmt = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        rows.append(
            (
                "code-switch",
                f"words {fmt(cs['word_rate'])}, lines {fmt(cs['line_rate'])}, "
                f"answers {fmt(cs['answer_rate'])}",
            )
        )
    if "chrf" in met:
        for d in ("to_target", "to_english"):
            rows.append((f"chrF/BLEU {d}", f"{met['chrf'][d]['chrf']:.2f} / {met['chrf'][d]['bleu']:.2f}"))
    if "premium" in met:
        rows.append(
            ("tokenizer premium", f"{met['premium']['premium']:.2f}x ({met['premium']['advice']['policy']})")
        )
    if "judge" in met:
        j = met["judge"]
        if "error" in j:
            rows.append(("judge", "failed: see the message below"))
        else:
            scores = ", ".join(f"{k} {v:.2f}" for k, v in j["scores"].items() if v is not None)
            rows.append(("judge (0-3)", scores or f"no parseable verdict ({j['unparsed']} replies)"))
    if "harness" in met:
        h = met["harness"]
        if "skipped" in h:
            rows.append(("harness", f"skipped: {h['skipped']}"))
        for task, values in h.get("tasks", {}).items():
            rows.append((task, ", ".join(f"{k} {v:.4f}" for k, v in values.items())))
    return rows
