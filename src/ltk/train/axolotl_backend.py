"""``ltk train --backend axolotl``: the same recipe through ``axolotl train``, stage by stage.

For each stage ltk writes ``<output_dir>/<stage>/axolotl.yml``: the recipe's Axolotl keys with the stage's
settings applied (stage 2 reads the tier's messages with Axolotl's chat_template strategy and starts from
stage 1's merged model; stage 3 is Axolotl's ``rl: dpo`` on the pairs ltk builds first, in its own
environment, with ``chat_template.default`` reading them, starting from stage 2's merged model), the base model resolved to a folder (Axolotl does not know ``embedded:`` names),
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


def stage_config(
    recipe: Recipe,
    s: StageSettings,
    *,
    base_model: str,
    resume: bool,
    eot_tokens: list[str] | None = None,
) -> dict[str, Any]:
    """The Axolotl config for one stage (a plain dict, written as YAML). ``eot_tokens``: the end-of-turn
    tokens ltk detected from the template (Axolotl needs them when they differ from the EOS)."""
    cfg = recipe.model_dump(mode="json")
    cfg = {k: v for k, v in cfg.items() if v is not None or k == "adapter"}
    out = Path(s.output_dir)
    cfg.update(
        {
            "base_model": base_model,
            "output_dir": str(out),
            "dataset_prepared_path": str(out / "prepared"),
            "sequence_len": s.sequence_len,
            "adapter": None if s.adapter == "full" else s.adapter,
            "load_in_4bit": s.quantize == "4bit",
            "load_in_8bit": s.quantize == "8bit",
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
        cfg["chat_template"] = recipe.chat_template or "tokenizer_default"
        cfg["eot_tokens"] = list(eot_tokens or recipe.eot_tokens or []) or None
        cfg["sample_packing"] = False
        cfg["pad_to_sequence_len"] = False
    if s.stage == "pref":
        from ltk.train.prefs import pairs_dir

        spec = recipe.ltk.stages.pref
        cfg["rl"] = "dpo"
        cfg["rl_beta"] = spec.beta
        cfg["dpo_loss_type"] = [spec.loss_type]
        cfg["datasets"] = [
            {
                "path": str(pairs_dir(recipe) / "train.jsonl"),
                "ds_type": "json",
                "split": "train",
                "type": "chat_template.default",
                "field_messages": "prompt",
                "field_chosen": "chosen",
                "field_rejected": "rejected",
            }
        ]
        cfg["chat_template"] = recipe.chat_template or "tokenizer_default"
        cfg["eot_tokens"] = list(eot_tokens or recipe.eot_tokens or []) or None
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
    """Each stage through ``axolotl train``; the ltk plugin writes ``<stage>/final`` as ``ltk train`` does."""
    axolotl = find_axolotl()
    env = dict(os.environ)
    # `axolotl train` calls `accelerate` from PATH: put the venv's bin first.
    env["PATH"] = f"{axolotl.parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    results: dict[str, Any] = {}
    for s in settings:
        start = base_model
        if s.stage == "sft" and recipe.ltk.stages.sft.start_from == "cpt":
            start = str(Path(recipe.output_dir) / "cpt" / "final")
        if s.stage == "pref":
            from ltk.train.prefs import build_pairs, sft_final

            # Sampling runs here, in ltk's environment; Axolotl reads the finished pairs file.
            build_pairs(recipe, s, recipe_file=recipe_file)
            start = str(sft_final(recipe))
        eot = detected_eot(recipe, start) if s.stage in ("sft", "pref") else None
        cfg = stage_config(recipe, s, base_model=start, resume=resume, eot_tokens=eot)
        out = Path(s.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg_file = out / "axolotl.yml"
        atomic_write_text(
            cfg_file,
            f"# Written by `ltk train {recipe_file} --backend axolotl` for stage {s.stage}.\n"
            + yaml.safe_dump(cfg, sort_keys=False, width=110),
        )
        _run([str(axolotl), "train", str(cfg_file)], env)
        final = out / "final"
        if not (final / STAGE_FILE).is_file():
            raise LtkError(
                f"{s.stage} (axolotl): finished without {final} (is the ltk plugin in the recipe?)"
            )
        results[s.stage] = str(final)
        log.info(f"{s.stage} (axolotl): saved to {final}")
    return results


# ------------------------------------------------------------------- what the plugin does under Axolotl
STAGE_FILE = "ltk_stage.json"


def stage_of(output_dir: Path) -> str:
    return output_dir.name if output_dir.name in ("cpt", "sft", "pref") else "cpt"


def finalize_stage(
    output_dir: Path, *, base_model: str, merge: bool, stage: str, recipe_file: str | None
) -> Path:
    """``<stage>/final`` from what Axolotl saved in ``output_dir``: the adapter merged into a full-precision
    copy of the base (or the adapter itself, or the full model), the tokenizer, and ``ltk_stage.json``:
    the same layout ``ltk train`` writes, so stage 2, eval and reports read either backend's output."""
    from ltk.io import json_text, library_versions, replace_dir, sha256_file, temp_sibling

    final = output_dir / "final"
    tmp = temp_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    is_adapter = (output_dir / "adapter_config.json").is_file()
    if is_adapter and merge:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ltk.train.weights import base_dtype

        dtype = base_dtype(base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(output_dir)
        if model.get_input_embeddings().weight.shape[0] != len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = PeftModel.from_pretrained(model, str(output_dir)).merge_and_unload()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        saved_as = "merged"
    else:
        tmp.mkdir(parents=True)
        for f in output_dir.iterdir():
            if f.is_file() and not f.name.endswith((".yml", ".yaml")):
                shutil.copy2(f, tmp / f.name)
        saved_as = "adapter" if is_adapter else "full"
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    record = {
        "stage": stage,
        "saved_as": saved_as,
        "backend": "axolotl",
        "base_model": base_model,
        "recipe": recipe_file,
        "versions": library_versions("ltk", "axolotl", "torch", "transformers", "trl", "peft"),
        "files": {str(p.relative_to(tmp)): sha256_file(p) for p in files},
    }
    (tmp / STAGE_FILE).write_text(json_text(record), encoding="utf-8")
    replace_dir(tmp, final)
    return final


def write_next_stage(recipe_file: str, run_dir: Path, *, cpt_final: Path) -> Path | None:
    """After stage 1 under plain ``axolotl train RECIPE``: ``<run>/sft/axolotl.yml`` (stage 2 from stage 1's
    result, the tier's messages in the base's chat template) and the command that runs it."""
    from ltk.recipe.load import load_recipe, stage_settings

    recipe = load_recipe(recipe_file)
    if not recipe.ltk.stages.sft.enabled:
        return None
    recipe = recipe.model_copy(update={"output_dir": str(run_dir)})
    s = stage_settings(recipe, "sft")
    start = str(cpt_final) if recipe.ltk.stages.sft.start_from == "cpt" else str(recipe.base_model)
    cfg = stage_config(recipe, s, base_model=start, resume=False, eot_tokens=detected_eot(recipe, start))
    out = Path(s.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(
        out / "axolotl.yml",
        f"# Stage 2 (sft) of {recipe_file}, written by the ltk plugin when stage 1 finished.\n"
        f"# Run it: axolotl train {out / 'axolotl.yml'}\n" + yaml.safe_dump(cfg, sort_keys=False, width=110),
    )


def detected_eot(recipe: Recipe, model: str) -> list[str] | None:
    """The end-of-turn tokens of the recipe's chat format for this model's tokenizer (None if unknown)."""
    if recipe.eot_tokens:
        return list(recipe.eot_tokens)
    try:
        from transformers import AutoTokenizer

        from ltk.train.chat import chat_format

        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=recipe.trust_remote_code)
        return list(chat_format(tokenizer, recipe.chat_template, recipe.chat_template_jinja, None).eot_tokens)
    except (OSError, ValueError):
        return None
