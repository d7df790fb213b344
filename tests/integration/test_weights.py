"""Weights as Axolotl's keys mean them: the dtypes of frozen and trained parameters per path, QLoRA for
real (bitsandbytes' CPU backend, 4-bit base, loss falls, merged into a full-precision model), and a clear
refusal where bitsandbytes cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from _train_data import make_recipe, write_build

from ltk.recipe.load import load_recipe, stage_settings
from ltk.train.weights import dtypes_by_role, load_for_stage, plan_weights

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


def _recipe_and_stage(tmp_path: Path, model_dir: Path, **overrides):
    write_build(tmp_path)
    recipe = load_recipe(make_recipe(tmp_path, model_dir, **overrides))
    return recipe, stage_settings(recipe, "cpt")


def test_plans_per_path(tmp_path: Path, tiny_llama_dir: Path) -> None:
    recipe, s = _recipe_and_stage(tmp_path, tiny_llama_dir)
    # LoRA: bf16 frozen weights on a GPU with bf16, fp32 elsewhere; adapters always fp32
    assert plan_weights(recipe, s, cuda=True, bf16=True).load_dtype == "bfloat16"
    assert plan_weights(recipe, s, cuda=False, bf16=True).load_dtype == "float32"  # CPU: autocast only
    assert plan_weights(recipe, s, cuda=True, bf16=True).trainable_dtype == "float32"
    qlora = plan_weights(recipe, replace(s, adapter="qlora", quantize="4bit"), cuda=True, bf16=True)
    assert (qlora.quantize, qlora.compute_dtype, qlora.load_dtype) == ("4bit", "bfloat16", "bfloat16")
    on_cpu = plan_weights(recipe, replace(s, adapter="qlora", quantize="4bit"), cuda=False, bf16=False)
    assert (on_cpu.load_dtype, on_cpu.compute_dtype) == ("float32", "float32")
    full = replace(s, adapter="full")
    assert plan_weights(recipe, full, cuda=True, bf16=True).trainable_dtype == "float32"  # fp32 master
    pure = recipe.model_copy(update={"bf16": "full"})
    assert plan_weights(pure, full, cuda=True, bf16=True).trainable_dtype == "bfloat16"


def test_loaded_dtypes_per_path(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    recipe, s = _recipe_and_stage(tmp_path, tiny_llama_dir)
    lora = load_for_stage(str(tiny_llama_dir), recipe, plan_weights(recipe, s, cuda=False, bf16=False))
    lora = get_peft_model(lora, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    assert dtypes_by_role(lora) == {"frozen": ["float32"], "trainable": ["float32"]}

    pure = recipe.model_copy(update={"bf16": "full"})
    full = replace(s, adapter="full")
    model = load_for_stage(str(tiny_llama_dir), pure, plan_weights(pure, full, cuda=False, bf16=True))
    assert dtypes_by_role(model) == {"frozen": [], "trainable": ["bfloat16"]}

    q4 = replace(s, adapter="qlora", quantize="4bit")
    model = load_for_stage(str(tiny_llama_dir), recipe, plan_weights(recipe, q4, cuda=False, bf16=False))
    proj = model.model.layers[0].self_attn.q_proj
    assert type(proj).__name__ == "Linear4bit" and str(proj.weight.dtype) == "torch.uint8"
    q8 = replace(s, quantize="8bit")
    model = load_for_stage(str(tiny_llama_dir), recipe, plan_weights(recipe, q8, cuda=False, bf16=False))
    assert type(model.model.layers[0].mlp.down_proj).__name__ == "Linear8bitLt"


@pytest.mark.slow
def test_qlora_trains_on_a_4bit_base_and_merges_into_full_precision(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    from safetensors import safe_open

    from ltk.train.run import train_recipe

    write_build(tmp_path)
    recipe = make_recipe(
        tmp_path,
        tiny_llama_dir,
        adapter="qlora",
        load_in_4bit=True,
        max_steps=8,
        save_steps=1000,
        learning_rate=3e-3,
        lora_modules_to_save=[],
    )
    final = Path(train_recipe(recipe, stage="cpt")["cpt"])
    record = json.loads((final / "ltk_stage.json").read_text())
    assert record["settings"]["quantize"] == "4bit" and record["saved_as"] == "merged"
    assert "uint8" in record["weights_in_training"]["frozen"]  # the 4-bit packed base
    assert record["weights_in_training"]["trainable"] == ["float32"]
    losses = [
        e["loss"]
        for e in map(json.loads, (final.parent / "log.jsonl").read_text().splitlines())
        if "loss" in e
    ]
    assert len(losses) == 8 and losses[-1] < losses[0]
    config = json.loads((final / "config.json").read_text())
    assert "quantization_config" not in config and record["saved_dtype"] == "float32"
    with safe_open(str(final / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        assert not any("lora" in k or "absmax" in k or "quant" in k for k in keys)
        weight = f.get_tensor("model.layers.0.self_attn.q_proj.weight")
    assert str(weight.dtype) == "torch.float32" and weight.shape == (64, 64)


def test_qlora_where_bitsandbytes_cannot_run_is_refused(tmp_path: Path, tiny_llama_dir: Path) -> None:
    # A bitsandbytes whose import fails, as it does on a machine without a supported backend.
    fake = tmp_path / "fake-site" / "bitsandbytes"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('no CUDA, CPU or XPU backend found')\n")
    write_build(tmp_path)
    recipe = make_recipe(tmp_path, tiny_llama_dir, adapter="qlora", load_in_4bit=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", "from ltk.cli import main; main()", "train", str(recipe)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "adapter" in proc.stderr and "bitsandbytes cannot run on this machine" in proc.stderr
    assert "no CUDA, CPU or XPU backend found" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
