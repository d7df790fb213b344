"""lm-evaluation-harness tasks (Belebele, FLORES, Global-MMLU, ...) when ``lm_eval`` is installed.

Results land in the same eval JSON and report table as ltk's own metrics. Without the package the metric
is skipped with a message naming it (``pip install lm-eval``); ltk never requires it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

PACKAGE_HINT = "lm-evaluation-harness is not installed: pip install lm-eval (package 'lm-eval')"


def default_tasks(info: dict[str, Any]) -> list[str]:
    """Belebele reading comprehension in the target language (harness task names use FLORES codes)."""
    flores = info.get("flores")
    return [f"belebele_{flores}"] if flores else []


def harness_available() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def harness_eval(
    model: Any, tokenizer: Any, tasks: list[str], *, limit: int | None = None, batch_size: int = 8
) -> dict[str, Any]:
    """Run harness tasks on an already loaded model; returns {task: {metric: value}} or a skip note."""
    if not harness_available():
        return {"skipped": PACKAGE_HINT}
    if not tasks:
        return {"skipped": "no harness task for this language (give --harness-tasks)"}
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, log_samples=False)
    except (KeyError, ValueError) as exc:  # unknown task names and similar
        return {"skipped": f"lm-evaluation-harness could not run {tasks}: {exc}"}
    from ltk.evaluate import uncertainty as u

    results: dict[str, Any] = {}
    intervals: dict[str, Any] = {}
    z = u.z_value()
    for task, metrics in (out or {}).get("results", {}).items():
        values = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        results[task] = {k.split(",")[0]: v for k, v in values.items() if "stderr" not in k}
        # The harness reports a standard error beside each metric ("acc_stderr,none"): a normal interval.
        intervals[task] = {}
        for key, value in values.items():
            name, _, filt = key.partition(",")
            se = metrics.get(f"{name}_stderr,{filt}" if filt else f"{name}_stderr")
            if "stderr" not in key and isinstance(se, (int, float)) and not isinstance(se, bool):
                intervals[task][name] = u.record(
                    (value - z * se, value + z * se),
                    method="normal (lm-eval stderr)",
                    unit="task items",
                    n=limit or 0,
                )
    return {
        "tasks": results,
        "intervals": {"tasks": intervals},
        "method": {"package": "lm-eval", "version": getattr(lm_eval, "__version__", "?"), "limit": limit},
    }
