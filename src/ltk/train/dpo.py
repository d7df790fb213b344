"""Stage 3 (pref): DPO on TRL against code-switching, on the pairs :mod:`ltk.train.prefs` builds.

It starts from the SFT stage's merged model and trains a new LoRA adapter on it (or every weight, with
``adapter: full``); with LoRA the reference model is the same network with the adapter switched off, so
no second copy is held in memory. The pairs are built first when they are missing or stale (sampling
resumes after a crash); training checkpoints go to ``<output_dir>/pref/checkpoint-N`` and the result to
``<output_dir>/pref/final`` with ``ltk_stage.json``, as the other stages do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ltk.recipe.load import StageSettings
from ltk.train.stages import (
    STAGE_FILE,
    RunContext,
    _callbacks,
    _peft_ready,
    _train,
    _world_size,
    load_model,
    load_tokenizer,
    lora_config,
    make_trainer,
    save_final,
    trainer_kwargs,
    weights_plan,
)

log = logging.getLogger(__name__)


def dpo_args(ctx: RunContext, s: StageSettings) -> Any:
    """DPOConfig from the stage's settings (the same keys the other stages pass, plus DPO's own)."""
    from trl import DPOConfig

    spec = ctx.recipe.ltk.stages.pref
    return DPOConfig(
        **trainer_kwargs(ctx, s), beta=spec.beta, loss_type=[spec.loss_type], dataset_num_proc=None
    )


def load_pairs(path: Path) -> Any:
    import datasets

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])


def run_pref(ctx: RunContext, s: StageSettings) -> Path:
    from trl import DPOTrainer

    from ltk.train.budget import plan_steps
    from ltk.train.prefs import build_pairs, sft_final

    recipe = ctx.recipe
    pairs = build_pairs(recipe, s, recipe_file=ctx.recipe_file)
    start = sft_final(recipe)
    sft_record = json.loads((start / STAGE_FILE).read_text(encoding="utf-8"))
    dataset = load_pairs(pairs.folder / "train.jsonl")
    tokenizer = load_tokenizer(str(start), recipe)
    model = load_model(str(start), recipe, s)
    budget = plan_steps(recipe, s, packed_rows=len(dataset), world_size=_world_size())
    peft_config = lora_config(s, model.config) if s.adapter != "full" else None
    trainer = make_trainer(
        DPOTrainer,
        model=model,
        ref_model=None,  # LoRA: the adapter switched off; full: TRL keeps a frozen copy of the start
        args=dpo_args(ctx, s),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=_callbacks(ctx, s),
    )
    _peft_ready(trainer)
    info = _train(trainer, s, ctx)
    eos = model.generation_config.eos_token_id if hasattr(model, "generation_config") else None
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    meta = {
        "started_from": str(start),
        "sft_stage_sha256": pairs.manifest.get("sft_model", {}).get("ltk_stage_sha256"),
        "pairs": pairs.pairs,
        "pairs_dir": str(pairs.folder),
        "pairs_sha256": pairs.manifest["files"]["train.jsonl"]["sha256"],
        "pairs_counts": pairs.manifest["counts"],
        "beta": recipe.ltk.stages.pref.beta,
        "loss_type": recipe.ltk.stages.pref.loss_type,
        "budget": budget.as_dict(),
        "weights": weights_plan(recipe, s).describe(),
        "chat_template": sft_record.get("chat_template"),
        "eot_tokens": sft_record.get("eot_tokens"),
        **info,
    }
    return save_final(trainer, tokenizer, s, ctx, meta, base_path=str(start), eos_ids=eos_ids or None)
