"""The memory plan against measured peaks: a tiny random LLaMA with SmolLM2's vocabulary, LoRA (as stage 1
trains) and full fine-tuning, each measured in a fresh process (peak resident memory of two AdamW steps,
benchmarks/memory_plan.py's method). SmolLM2-135M itself is measured by the benchmark (minutes; results in
benchmarks/results/memory_plan.md)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("memory_plan", REPO / "benchmarks" / "memory_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_plan_within_20_percent_of_the_measured_peak(tiny_llama_dir: Path, adapter: str) -> None:
    from ltk.recipe.load import load_recipe, stage_settings

    recipe = load_recipe(REPO / "recipes" / "ny.yml")
    settings = replace(stage_settings(recipe, "cpt"), sequence_len=256, micro_batch_size=2, adapter=adapter)
    result = _benchmark().compare(str(tiny_llama_dir), settings, checkpointing=False)
    assert abs(result["error"]) <= 0.20, result
