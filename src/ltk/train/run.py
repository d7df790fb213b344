"""``ltk train RECIPE``: validate everything, then run the stages in order (cpt -> sft -> pref).

Nothing is loaded before the recipe, the data, the base model's config and the output folders have been
checked; every problem is reported at once (exit 2). Each stage's ``final/`` appears only when complete,
so a crash leaves checkpoints (continue with ``--resume``) and never a half-saved model.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ltk.errors import UsageError
from ltk.io import atomic_write_text
from ltk.layout import RunLayout
from ltk.recipe.load import StageSettings, load_recipe, stage_settings
from ltk.recipe.schema import Recipe
from ltk.validation import override

log = logging.getLogger(__name__)

STAGES = ("cpt", "sft", "pref")


def select_stages(recipe: Recipe, stage: str) -> list[str]:
    if stage not in (*STAGES, "all"):
        raise UsageError(f"unknown stage {stage!r}; use cpt, sft, pref or all")
    wanted = list(STAGES) if stage == "all" else [stage]
    enabled = [s for s in wanted if getattr(recipe.ltk.stages, s).enabled]
    if not enabled:
        raise UsageError(f"stage {stage!r} is disabled in the recipe (ltk.stages.<stage>.enabled: false)")
    return enabled


def apply_overrides(
    recipe: Recipe, *, base_model: str | None, output_dir: str | None, tier: int | None
) -> Recipe:
    """Command-line overrides, validated like the recipe file itself."""
    values: dict[str, Any] = {}
    if base_model:
        values["base_model"] = base_model
    if output_dir:
        values["output_dir"] = output_dir
    if tier is not None:
        sft = recipe.ltk.stages.sft
        old = f"tier-{sft.tier}"
        values["ltk.stages.sft.tier"] = tier
        values["ltk.stages.sft.data"] = sft.data.replace(old, f"tier-{tier}") if old in sft.data else sft.data
    return override(recipe, values, source="command line") if values else recipe


def _count_rows(facts: dict) -> dict[str, Any]:
    import pyarrow.parquet as pq

    counts: dict[str, Any] = {}
    for key, files in facts.get("data", {}).items():
        if key in ("cpt", "english"):
            counts[key] = {f: pq.ParquetFile(f).metadata.num_rows for f in files}
        else:
            counts[key] = {
                f: len([x for x in Path(f).read_text(encoding="utf-8").splitlines() if x.strip()])
                for f in files
            }
    return counts


def _corpus_rows(s: StageSettings, counts: dict[str, int]) -> tuple[int, str]:
    """Packed rows of stage 1 before tokenizing: from the corpus manifest's token count when there is one
    (each document + EOS, wrapped into rows of sequence_len), else one row per document."""
    manifest = Path(s.data).parent / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        train = data.get("tokens", {}).get("train", {})
        tokens = int(train.get("target", 0)) + int(train.get("english", 0))
        docs = sum(counts.values())
        if tokens:
            return max(1, (tokens + docs) // s.sequence_len), "corpus manifest token count (budget tokenizer)"
    return max(1, sum(counts.values())), "one row per document (no corpus manifest)"


def stage_plans(recipe: Recipe, settings: list[StageSettings], facts: dict) -> dict[str, Any]:
    """Per stage: weights, step budget and the memory plan per device (what --dry-run shows)."""
    import torch

    from ltk.train.budget import plan_steps
    from ltk.train.memory import advice, estimate, model_config
    from ltk.train.stages import resolve_bf16
    from ltk.train.weights import plan_weights

    rows = _count_rows(facts)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    try:
        config = model_config(facts["base_model"], recipe.trust_remote_code)
    except Exception:  # the base is not local: the plan shows what it can without it
        config = None
    out: dict[str, Any] = {}
    for s in settings:
        if s.stage == "cpt":
            n, source = _corpus_rows(s, rows.get("cpt", {}))
        elif s.stage == "pref":
            prompts = sum(rows.get("pref", {}).values()) or 1
            n, source = (
                min(prompts, recipe.ltk.stages.pref.max_prompts),
                "at most one pair per sampled prompt",
            )
        else:
            n, source = sum(rows.get("sft", {}).values()) or 1, "examples in the tier"
        budget = plan_steps(recipe, s, packed_rows=n, world_size=world)
        weights = plan_weights(recipe, s, cuda=cuda, bf16=resolve_bf16(recipe))
        entry: dict[str, Any] = {
            "weights": weights.describe(),
            "budget": {**budget.as_dict(), "rows_from": source},
        }
        if config is not None:
            # DPO runs chosen and rejected through the model together: twice the rows per micro-batch.
            sm = replace(s, micro_batch_size=2 * s.micro_batch_size) if s.stage == "pref" else s
            mem = {
                ckpt: estimate(config, sm, weights, gradient_checkpointing=ckpt, cuda=cuda)
                for ckpt in (False, True)
            }
            chosen = mem[recipe.gradient_checkpointing]
            entry["memory_per_device_gib"] = {
                **chosen.as_dict(),
                "peak_without_checkpointing_gib": round(mem[False].peak / 1024**3, 3),
                "peak_with_checkpointing_gib": round(mem[True].peak / 1024**3, 3),
            }
            tips = advice(chosen, sm)
            if tips:
                entry["does_not_fit_try"] = tips
        out[s.stage] = entry
    return out


def describe_plan(recipe: Recipe, settings: list[StageSettings], facts: dict, backend: str) -> str:
    from ltk.train.stages import precision

    plan = {
        "backend": backend,
        "base_model": recipe.base_model,
        "base_model_resolved": facts.get("base_model"),
        "model_config": facts.get("model_config"),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "precision": precision(recipe),
        "language": recipe.ltk.language,
        "english": recipe.ltk.english.model_dump(mode="json"),
        "vocabulary": recipe.ltk.vocabulary.model_dump(mode="json"),
        "stages": {s.stage: s.as_dict() for s in settings},
        "data_rows": _count_rows(facts),
        "chat_format": facts.get("chat_format"),
        "plan": stage_plans(recipe, settings, facts),
    }
    return yaml.safe_dump(plan, sort_keys=False, width=110)


def write_run_recipe(recipe: Recipe, recipe_file: str) -> Path | None:
    """``<output_dir>/recipe.yml``: the recipe as run (overrides applied), for reports and model cards."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    from ltk.recipe.render import recipe_to_yaml

    header = f"# The recipe as run by `ltk train {recipe_file}` (command-line overrides applied).\n"
    return atomic_write_text(RunLayout(Path(recipe.output_dir)).recipe, recipe_to_yaml(recipe, header))


def train_recipe(
    recipe_path: str | Path,
    *,
    stage: str = "all",
    backend: str = "trl",
    max_steps: int | None = None,
    resume: bool = False,
    dry_run: bool = False,
    base_model: str | None = None,
    output_dir: str | None = None,
    tier: int | None = None,
    report_to: list[str] | None = None,
) -> dict[str, Any]:
    """Run a recipe. Returns ``{stage: final folder}`` (or the plan, for a dry run)."""
    from ltk.assets import resolve_model
    from ltk.train.preflight import check_inputs

    recipe_file = str(recipe_path)
    recipe = apply_overrides(
        load_recipe(recipe_path), base_model=base_model, output_dir=output_dir, tier=tier
    )
    names = select_stages(recipe, stage)
    settings = [stage_settings(recipe, n, max_steps=max_steps) for n in names]
    resolved = resolve_model(recipe.base_model)
    facts = check_inputs(recipe, recipe_file, settings, base_model=resolved, resume=resume, backend=backend)
    if dry_run:
        text = describe_plan(recipe, settings, facts, backend)
        return {"plan": yaml.safe_load(text), "plan_text": text}
    if backend == "axolotl":
        from ltk.train.axolotl_backend import run_axolotl

        return run_axolotl(recipe, recipe_file, settings, base_model=resolved, resume=resume)
    if backend != "trl":
        raise UsageError(f"unknown backend {backend!r}; use trl or axolotl")
    from ltk.train.preflight import check_sharding_device

    check_sharding_device(recipe, recipe_file)

    from ltk.train.dpo import run_pref
    from ltk.train.stages import STAGE_FILE, RunContext, run_cpt, run_sft

    reports = list(report_to or [])
    if recipe.use_tensorboard and "tensorboard" not in reports:
        reports.append("tensorboard")
    if recipe.use_wandb and "wandb" not in reports:
        reports.append("wandb")
        if recipe.wandb_project:
            os.environ.setdefault("WANDB_PROJECT", recipe.wandb_project)
    missing = [name for name in reports if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"--report-to {' '.join(missing)} needs the package(s) installed\n    fix: pip install {' '.join(missing)}"
        )
    ctx = RunContext(
        recipe=recipe,
        recipe_file=recipe_file,
        base_model=resolved,
        resume=resume,
        report_to=reports,
        trace_batches=os.environ.get("LTK_TRACE_BATCHES", "") == "1",
    )
    write_run_recipe(recipe, recipe_file)
    results: dict[str, Any] = {}
    for s in settings:
        final = Path(s.output_dir) / "final"
        if resume and (final / STAGE_FILE).is_file():
            log.info(f"{s.stage}: already finished at {final}, skipped (--resume)")
            results[s.stage] = str(final)
            continue
        Path(s.output_dir).mkdir(parents=True, exist_ok=True)
        runner = {"cpt": run_cpt, "sft": run_sft, "pref": run_pref}[s.stage]
        out = runner(ctx, s)
        record = json.loads((out / STAGE_FILE).read_text()) if (out / STAGE_FILE).is_file() else {}
        log.info(
            f"{s.stage}: {record.get('global_step')} steps ({record.get('precision')}), "
            f"train loss {record.get('train_loss', 0):.4f}, saved {record.get('saved_as')} model to {out}"
        )
        results[s.stage] = str(out)
    return results
