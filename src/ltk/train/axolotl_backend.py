"""``ltk train --backend axolotl``: the same recipe through ``axolotl train``, stage by stage.

For each stage ltk writes ``<output_dir>/<stage>/axolotl.yml``: the recipe's Axolotl keys with the stage's
settings applied (stage 2 reads the tier's messages with Axolotl's chat_template strategy and starts from
stage 1's merged model), the base model resolved to a folder (Axolotl does not know ``embedded:`` names),
and CPU-safe keys when no GPU is present. The ``ltk:`` block stays in, validated by the ltk plugin.
Axolotl runs in its own virtual environment (tools/setup_axolotl.sh), found in PATH or ``.venv-axolotl``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ltk.errors import LtkError, UsageError
from ltk.io import atomic_write_text
from ltk.recipe.load import StageSettings
from ltk.recipe.schema import Recipe

log = logging.getLogger(__name__)
VENV_NAMES = (".venv-axolotl",)


def find_axolotl() -> Path:
    """The ``axolotl`` executable: PATH first, then ``.venv-axolotl/bin`` here or in the ltk checkout."""
    found = shutil.which("axolotl")
    if found:
        return Path(found)
    roots = [Path.cwd(), Path(__file__).resolve().parents[3]]
    for root in roots:
        for name in VENV_NAMES:
            candidate = root / name / "bin" / "axolotl"
            if candidate.is_file():
                return candidate
    raise UsageError(
        "Axolotl is not installed (no `axolotl` in PATH or .venv-axolotl/bin)\n"
        "    fix: bash tools/setup_axolotl.sh   (creates .venv-axolotl with Axolotl 0.19 and the ltk plugin)"
    )


def _cpu_only() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:
        return True


def stage_config(recipe: Recipe, s: StageSettings, *, base_model: str, resume: bool) -> dict[str, Any]:
    """The Axolotl config for one stage (a plain dict, written as YAML)."""
    cfg = recipe.model_dump(mode="json")
    cfg = {k: v for k, v in cfg.items() if v is not None or k == "adapter"}
    out = Path(s.output_dir)
    cfg.update(
        {
            "base_model": base_model,
            "output_dir": str(out),
            "dataset_prepared_path": str(out / "prepared"),
            "sequence_len": s.sequence_len,
            "adapter": "lora" if s.adapter == "lora" else None,
            "lora_r": s.lora_r,
            "lora_alpha": s.lora_alpha,
            "lora_dropout": s.lora_dropout,
            "lora_modules_to_save": s.lora_modules_to_save or None,
            "learning_rate": s.learning_rate,
            "lr_scheduler": s.lr_scheduler,
            "warmup_ratio": s.warmup_ratio,
            "micro_batch_size": s.micro_batch_size,
            "gradient_accumulation_steps": s.gradient_accumulation_steps,
            "num_epochs": s.num_epochs,
            "max_steps": s.max_steps,
        }
    )
    if s.stage == "sft":
        cfg["datasets"] = [
            {
                "path": s.data,
                "ds_type": "json",
                "type": "chat_template",
                "field_messages": "messages",
                "roles_to_train": ["assistant"],
                "train_on_eos": "turn",
            }
        ]
        cfg["chat_template"] = "tokenizer_default"
        cfg["eot_tokens"] = ["<|im_end|>"]
        cfg["sample_packing"] = False
        cfg["pad_to_sequence_len"] = False
    if resume:
        cfg["auto_resume_from_checkpoints"] = True
    if _cpu_only():  # Axolotl's GPU defaults fail on CPU (see NOTES: these keys are what CPU runs need)
        cfg.update(
            {
                "bf16": False,
                "fp16": False,
                "tf32": False,
                "attn_implementation": "sdpa",
                "optimizer": "adamw_torch",
                "lora_mlp_kernel": False,
                "lora_qkv_kernel": False,
                "lora_o_kernel": False,
            }
        )
    return {k: v for k, v in cfg.items() if v is not None or k == "adapter"}


def _run(cmd: list[str], env: dict[str, str]) -> None:
    log.info("running: " + " ".join(cmd))
    proc = subprocess.run(cmd, env=env, check=False)
    if proc.returncode != 0:
        raise LtkError(f"{' '.join(cmd[:2])} failed with exit status {proc.returncode} (its output is above)")


def run_axolotl(
    recipe: Recipe,
    recipe_file: str,
    settings: list[StageSettings],
    *,
    base_model: str,
    resume: bool,
) -> dict[str, Any]:
    axolotl = find_axolotl()
    env = dict(os.environ)
    # `axolotl train` calls `accelerate` from PATH: put the venv's bin first.
    env["PATH"] = f"{axolotl.parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    results: dict[str, Any] = {}
    model_for_next = base_model
    for s in settings:
        start = model_for_next
        if s.stage == "sft" and recipe.ltk.stages.sft.start_from == "cpt":
            merged = Path(recipe.output_dir) / "cpt" / "merged"
            start = str(merged) if merged.is_dir() else model_for_next
        elif s.stage == "sft":
            start = base_model
        cfg = stage_config(recipe, s, base_model=start, resume=resume)
        out = Path(s.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg_file = out / "axolotl.yml"
        atomic_write_text(
            cfg_file,
            f"# Written by `ltk train {recipe_file} --backend axolotl` for stage {s.stage}.\n"
            + yaml.safe_dump(cfg, sort_keys=False, width=110),
        )
        _run([str(axolotl), "train", str(cfg_file)], env)
        result = out
        if cfg.get("adapter") == "lora" and s.merge:
            _run([str(axolotl), "merge-lora", str(cfg_file), f"--lora-model-dir={out}"], env)
            result = out / "merged"
            if s.stage == "cpt":
                # `merge-lora` writes <output_dir>/merged; keep it where stage 2 looks for it.
                target = Path(recipe.output_dir) / "cpt" / "merged"
                if result != target and result.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.move(str(result), target)
                    result = target
            model_for_next = str(result)
        results[s.stage] = str(result)
        log.info(f"{s.stage} (axolotl): saved to {result}")
    return results
