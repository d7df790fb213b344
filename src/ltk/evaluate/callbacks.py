"""A transformers ``TrainerCallback`` that runs ltk's metrics after a stage (and every N steps when asked),
writing ``<run>/eval/<stage>.json`` and ``<run>/eval/<stage>-step<N>.json``. The training code attaches it:

    trainer.add_callback(LtkEvalCallback(build_dir, run_dir, stage="cpt", metrics="bpb", every_n_steps=500))

The evaluation is ``ltk.evaluate.run.evaluate_model`` with the same ``EvalOptions`` as ``ltk eval``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ltk.evaluate.metrics import EvalOptions

# During training only cheap, offline metrics by default: bits per byte in both languages.
CALLBACK_METRICS = ("bpb",)


class LtkEvalCallback(TrainerCallback):
    def __init__(
        self,
        build_dir: str | Path,
        run_dir: str | Path,
        *,
        stage: str,
        metrics: str | tuple[str, ...] = CALLBACK_METRICS,
        every_n_steps: int | None = None,
        at_end: bool = True,
        options: EvalOptions | None = None,
    ):
        self.build_dir = Path(build_dir)
        self.run_dir = Path(run_dir)
        self.stage = stage
        self.metrics = metrics
        self.every_n_steps = every_n_steps
        self.at_end = at_end
        self.options = options or EvalOptions()
        self.written: list[Path] = []

    def _run(self, stage: str, args: Any, state: Any, kwargs: dict[str, Any]) -> None:
        if not state.is_world_process_zero:
            return  # one process writes; the others would race on the same file
        from ltk.evaluate.run import evaluate_model

        model = kwargs.get("model")
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        if model is None or tokenizer is None:
            return
        model = getattr(model, "module", model)  # unwrap DDP
        evaluate_model(
            model,
            self.build_dir,
            self.run_dir,
            self.metrics,
            self.options,
            tokenizer=tokenizer,
            stage=stage,
            extra_meta={"global_step": state.global_step, "epoch": state.epoch},
        )
        self.written.append(self.run_dir / "eval" / f"{stage}.json")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every_n_steps and state.global_step and state.global_step % self.every_n_steps == 0:
            self._run(f"{self.stage}-step{state.global_step}", args, state, kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.at_end:
            self._run(self.stage, args, state, kwargs)
