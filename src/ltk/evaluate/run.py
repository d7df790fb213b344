"""``evaluate_model``: every chosen metric (``ltk.evaluate.metrics``) on one model, written atomically to
``<run>/eval/<stage>.json`` (plus the generated samples beside it). Every eval set the chosen metrics need
is read and checked before the model loads, so bad input fails in seconds, and a failure never leaves a
half-written file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ltk.errors import Problem, UsageError, ValidationError
from ltk.evaluate import ALL_METRICS, DEFAULT_METRICS
from ltk.evaluate.metrics import INPUTS, METRICS, EvalContext, EvalOptions
from ltk.io import atomic_write_json, atomic_write_jsonl, library_versions
from ltk.layout import RunLayout

# Bumped when the eval JSON gains something a reader relies on (2: intervals and per-item scores), so a
# cached evaluation of an older format is redone rather than reused.
EVAL_FORMAT = 2
VERSIONED = ("ltk", "torch", "transformers", "sacrebleu", "pycld2", "lm-eval")


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
    """runs/<name>/cpt/... -> cpt, runs/<name>/sft/... -> sft, .../pref/... -> pref, anything else -> base."""
    if isinstance(model, (str, Path)):
        for part in reversed(Path(str(model)).parts):
            if part in ("cpt", "sft", "pref"):
                return part
    return "base"


def read_inputs(build_dir: Path, chosen: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    """Every eval set the chosen metrics need, gathering all problems before any model loads."""
    if not build_dir.is_dir():
        raise UsageError(
            f"build folder {build_dir} does not exist; build it with `ltk build-langpack CODE --out "
            f"{build_dir.parent}` or pass --build build/<code>"
        )
    inputs: dict[str, Any] = {}
    problems: list[Problem] = []
    needed = dict.fromkeys(key for name in chosen for key in METRICS[name].needs)
    for key in needed:
        try:
            inputs[key] = INPUTS[key](build_dir, limits)
        except UsageError as exc:
            problems.append(Problem(str(build_dir), key, str(exc)))
    if problems:
        raise ValidationError(problems)
    return inputs


def evaluate_model(
    model: Any,
    build_dir: str | Path,
    out: str | Path,
    metrics: str | Iterable[str] | None = None,
    options: EvalOptions | None = None,
    *,
    tokenizer: Any = None,
    stage: str | None = None,
    extra_meta: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Evaluate ``model`` (a path, hub id, ``embedded:...`` name, or a loaded model + ``tokenizer``) on the
    build folder's eval sets; write ``<out>/eval/<stage>.json`` and return its content.

    ``options`` (or the same fields as keyword ``settings``) sets limits, generation and the judge."""
    from ltk.evaluate.data import language_info
    from ltk.evaluate.loading import as_loaded

    options = replace(options or EvalOptions(), **settings)
    build_dir, run = Path(build_dir), RunLayout(Path(out))
    chosen = parse_metrics(metrics)
    stage = stage or guess_stage(model)
    info = language_info(build_dir)
    limits = options.limits(info)
    if "judge" in chosen and options.judge is None:
        raise UsageError(
            "the judge metric needs a judge: --judge-url URL --judge-model NAME, or --judge-model PATH"
        )
    inputs = read_inputs(build_dir, chosen, {**limits, "premium_pairs": options.premium_pairs})
    loaded = as_loaded(model, tokenizer, device=options.device)
    ctx = EvalContext(loaded.model, loaded.tokenizer, inputs, info, options, limits, run.eval)
    result: dict[str, Any] = {
        "meta": {
            "format": EVAL_FORMAT,
            "model": loaded.name,
            "model_requested": str(model) if isinstance(model, (str, Path)) else loaded.name,
            "stage": stage,
            "build_dir": str(build_dir),
            "language": info,
            "metrics": chosen,
            "limits": limits,
            "versions": library_versions(*VERSIONED),
            **(extra_meta or {}),
        },
        "metrics": {},
        "seconds": ctx.seconds,
    }
    for name, metric in METRICS.items():
        if name in chosen:
            result["metrics"][name] = metric.run(ctx)
    atomic_write_jsonl(run.samples_file(stage), ctx.samples, sort_keys=True)
    atomic_write_json(run.eval_file(stage), result, ensure_ascii=False)
    if ctx.pending_error is not None:
        raise ctx.pending_error
    return result


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) lines for the end-of-run summary table."""
    rows: list[tuple[str, str]] = []
    for name, metric in METRICS.items():
        if name in result["metrics"]:
            rows += metric.summary(result["metrics"][name])
    return rows
