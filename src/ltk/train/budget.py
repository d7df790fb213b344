"""Optimizer steps follow from the built data, the world size and the recipe at train time.

A recipe no longer fixes ``max_steps`` when it is rendered: under ``torchrun --nproc_per_node 8`` a fixed
step count trained 8x the budget, and a corpus smaller than the budget was silently repeated. The corpus
``ltk build-langpack`` writes *is* the budget (target tokens plus the exact English share), so stage 1
trains ``num_epochs: 1`` over it; the Trainer divides the rows among the processes. This module computes
the same numbers for the dry-run plan and the stage record, so a user sees tokens, epochs and steps
before spending anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ltk.recipe.load import StageSettings


@dataclass(frozen=True)
class StepBudget:
    rows: int  # packed rows (stage 1) or examples (stage 2)
    tokens_per_row: int  # sequence_len: an upper bound for SFT examples
    world_size: int
    rows_per_step: int  # micro_batch x accumulation x world size
    epochs: float
    steps: int
    steps_from: str  # "max_steps" | "epochs"

    @property
    def tokens(self) -> int:
        return self.rows * self.tokens_per_row

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens_per_epoch": self.tokens}


def plan_steps(recipe: Any, s: StageSettings, *, packed_rows: int, world_size: int) -> StepBudget:
    """Optimizer steps as transformers' Trainer counts them (per-process batches, then accumulation)."""
    world = max(1, world_size)
    batches_per_process = math.ceil(packed_rows / (s.micro_batch_size * world))
    steps_per_epoch = max(1, math.ceil(batches_per_process / s.gradient_accumulation_steps))
    if s.max_steps:
        steps, epochs, source = s.max_steps, s.max_steps / steps_per_epoch, "max_steps"
    else:
        steps, epochs, source = math.ceil(steps_per_epoch * s.num_epochs), s.num_epochs, "epochs"
    return StepBudget(
        rows=packed_rows,
        tokens_per_row=s.sequence_len,
        world_size=world,
        rows_per_step=s.micro_batch_size * s.gradient_accumulation_steps * world,
        epochs=round(epochs, 4),
        steps=steps,
        steps_from=source,
    )
