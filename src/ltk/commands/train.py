"""``ltk train RECIPE``: continual pretraining then SFT from one recipe (TRL, or Axolotl)."""

from __future__ import annotations

import click

from ltk.commands.options import handle_errors


@click.command("train")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--stage",
    type=click.Choice(["cpt", "sft", "pref", "all"]),
    default="all",
    show_default=True,
    help="cpt = continual pretraining, sft = instruction tuning (starts from cpt's result), pref = DPO against "
    "code-switching (starts from sft's result; off unless ltk.stages.pref.enabled), all = every enabled stage.",
)
@click.option(
    "--backend",
    type=click.Choice(["trl", "axolotl"]),
    default="trl",
    show_default=True,
    help="axolotl runs `axolotl train` (from PATH or .venv-axolotl, see tools/setup_axolotl.sh).",
)
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop each stage after N optimizer steps.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint; skip finished stages.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and the data; load nothing.")
@click.option("--base-model", help="Override base_model (folder, hub id or embedded:smollm2-135m).")
@click.option("--output-dir", help="Override output_dir (stages write OUTPUT_DIR/cpt and OUTPUT_DIR/sft).")
@click.option("--tier", type=click.IntRange(min=1), help="Instruction tier for stage 2 (e.g. 1000).")
@click.option(
    "--report-to",
    multiple=True,
    type=click.Choice(["tensorboard", "wandb"]),
    help="Log losses to TensorBoard or Weights & Biases too (always: OUTPUT_DIR/<stage>/log.jsonl).",
)
@handle_errors
def train(
    recipe: str,
    stage: str,
    backend: str,
    max_steps: int | None,
    resume: bool,
    dry_run: bool,
    base_model: str | None,
    output_dir: str | None,
    tier: int | None,
    report_to: tuple[str, ...],
) -> None:
    """Train a model from RECIPE: stage 1 continual pretraining, stage 2 SFT, and stage 3 preference
    tuning against code-switching when ltk.stages.pref.enabled is true.

    \b
    Examples:
      ltk train recipes/ny.yml --dry-run            resolved settings + data, nothing loaded
      ltk train recipes/ny.yml                      both stages -> runs/ny/cpt, runs/ny/sft
      ltk train recipes/ny.yml --stage cpt --max-steps 50
      ltk train recipes/ny.yml --resume             continue after a crash
      ltk train recipes/ny.yml --stage pref         DPO on pairs ltk builds (see ltk build-prefs --help)
      ltk train recipes/sw.yml --backend axolotl    same recipe through Axolotl
      torchrun --nproc_per_node 2 -m ltk.train recipes/ny.yml   data-parallel (or accelerate launch -m ltk.train)

    The recipe is validated (unknown keys, missing data, base model not found offline, sequence_len
    beyond the model, tier not built) before any model loads; problems exit with status 2.
    Each stage's result is in OUTPUT_DIR/<stage>/final (merged weights or adapter, as the recipe says).
    """
    from ltk.train.run import train_recipe

    result = train_recipe(
        recipe,
        stage=stage,
        backend=backend,
        max_steps=max_steps,
        resume=resume,
        dry_run=dry_run,
        base_model=base_model,
        output_dir=output_dir,
        tier=tier,
        report_to=list(report_to),
    )
    if dry_run:
        click.echo(result["plan_text"])


@click.command("build-prefs")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--output-dir", help="Override output_dir (the run whose sft/final samples the answers).")
@click.option("--seed", type=int, help="Override the recipe's seed (the pairs are identical for a seed).")
@click.option("--force", is_flag=True, help="Rebuild even when the pairs for these inputs exist.")
@handle_errors
def build_prefs(recipe: str, output_dir: str | None, seed: int | None, force: bool) -> None:
    """Build the preference pairs of RECIPE's stage 3 (pref) from its SFT model, without training.

    \b
    For prompts of the training tier whose reference answer is in the target language (held-out
    prompts are never used), the SFT model (OUTPUT_DIR/sft/final) samples several answers per prompt
    (ltk.stages.pref: samples_per_prompt, temperature, seed); ltk's code-switch detector scores each.
    A prompt gives a pair when one answer stays in the language (chosen) and another switches
    (rejected); the tier's reference answer is chosen when no sample stays. With judge_url and
    judge_model set, an LLM judge ranks the answers that stay.

    \b
    Examples:
      ltk build-prefs recipes/ny.yml            -> runs/ny/pref/pairs/{train.jsonl,samples.jsonl,manifest.json}
      ltk build-prefs recipes/ny.yml --seed 1   another draw of the samples
      ltk train recipes/ny.yml --stage pref     DPO on them (builds them first when missing)

    Works whether or not ltk.stages.pref.enabled is set, so the pairs can be read before training.
    Interrupted runs resume where they stopped; the same inputs and seed give byte-identical pairs.
    Exits with status 2 on bad input: no SFT model, an unreachable judge, or no pair kept (it says why).
    """
    from ltk.train.prefs import build_prefs as build
    from ltk.train.prefs import summary

    result = build(recipe, output_dir=output_dir, seed=seed, force=force)
    for line in summary(result):
        click.echo(line)
