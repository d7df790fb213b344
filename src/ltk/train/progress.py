"""How training reports progress: a tqdm bar over optimizer steps and one line per logged step
(``cpt step 5/30: loss 3.5580, lr 1.00e-03, grad norm 1.234``) through ltk's logger, instead of the
Trainer's raw ``{'loss': '3.558', ...}`` dicts; every logged step also goes to ``log.jsonl``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from ltk.log import progress

log = logging.getLogger("ltk.train")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def step_line(stage: str, step: int, max_steps: int, logs: dict[str, Any]) -> str | None:
    """One readable line for a Trainer log record, or None for records that are not worth a line."""
    loss = _number(logs.get("loss"))
    if loss is not None:
        parts = [f"loss {loss:.4f}"]
        lr, grad = _number(logs.get("learning_rate")), _number(logs.get("grad_norm"))
        if lr is not None:
            parts.append(f"lr {lr:.2e}")
        if grad is not None:
            parts.append(f"grad norm {grad:.3f}")
        return f"{stage} step {step}/{max_steps}: " + ", ".join(parts)
    runtime = _number(logs.get("train_runtime"))
    if runtime is not None:
        mean = _number(logs.get("train_loss"))
        loss_text = f", mean loss {mean:.4f}" if mean is not None else ""
        return f"{stage}: {step} steps in {runtime:.1f}s{loss_text}"
    return None


class StepProgress(TrainerCallback):
    """A bar over optimizer steps and one line per logged step, on the main process only."""

    def __init__(self, stage: str):
        self.stage = stage
        self.bar: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.bar = progress(
                total=state.max_steps, desc=self.stage, unit="step", initial=state.global_step
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        line = step_line(self.stage, state.global_step, state.max_steps, logs)
        if line is None:
            return
        if self.bar is not None and not self.bar.disable and log.isEnabledFor(logging.INFO):
            self.bar.write(line)  # above the bar, which stays at the bottom
        else:
            log.info(line)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LossLog(TrainerCallback):
    """Every logged step (loss, learning rate, grad norm) as a line of ``log.jsonl`` (main process only)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero and logs:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **logs}, sort_keys=True) + "\n")


def use_ltk_progress(trainer: Any) -> Any:
    """Remove the Trainer's own printers (ltk's ``StepProgress`` reports instead)."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    return trainer
