"""``ltk build-langpack CODE``: corpus -> parallel sets -> instruction tiers -> recipe (``ltk.pipeline``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ltk.commands.options import (
    base_model_option,
    device_option,
    handle_errors,
    langpack_path_option,
    recipes_dir_option,
    translation_engine_options,
)
from ltk.translation.families import FAMILIES

STAGES = ("corpus", "instructions", "recipe", "all")


@click.command("build-langpack")
@click.argument("code")
@click.option(
    "--stage",
    type=click.Choice(STAGES),
    default="all",
    show_default=True,
    help="corpus = corpus + parallel sets; instructions; recipe; all = every stage in order.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="build",
    show_default=True,
    help="Build root; results go to OUT/CODE/ (corpus/, parallel/, instructions/), the cache to OUT/cache.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for shuffling, mixing, sampling.")
@click.option("--limit", type=int, help="Read at most N records per source (quick tries, tests).")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes for the corpus steps.")
@click.option("--dry-run", is_flag=True, help="Check sources and show what would be read; do no work.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True),
    help="Folder with local copies: `kind: local` paths resolve here, and DIR/<source name> replaces a hub source.",
)
@click.option(
    "--tokenizer",
    help="Tokenizer (folder or hub id) that counts the token budget [default: the base model's].",
)
@recipes_dir_option
@base_model_option
@click.option(
    "--translation-engine",
    type=click.Choice(FAMILIES),
    help="MT engine family for the instruction stage [default: the langpack's instructions.engine, nllb].",
)
@click.option(
    "--translation-model",
    help="Model id or path for the instruction stage [default: the langpack's, else the engine's].",
)
@click.option("--translation-endpoint", help="engine llm: OpenAI-compatible base URL.")
@device_option("translation")
@translation_engine_options(backend_flag="--translation-backend", dtype_flag="--translation-dtype")
@click.option(
    "--max-tier",
    metavar="N|all",
    help="Largest instruction tier to translate for [default: the tier the recipe trains, the first]. "
    "English records are translated in a seeded order, only as far as this tier needs; a later build "
    "with a larger tier translates only the new records (the cache has the rest).",
)
@click.option(
    "--force", is_flag=True, help="Rebuild the corpus even if a finished one with the same settings exists."
)
@click.option(
    "--overwrite-recipe",
    is_flag=True,
    help="Re-render RECIPES_DIR/CODE.yml even if you edited it (by default an edited recipe is kept and the "
    "fresh render is written next to it as CODE.rendered.yml).",
)
@langpack_path_option
@handle_errors
def build_langpack(
    code: str,
    stage: str,
    out: str,
    seed: int,
    limit: int | None,
    workers: int,
    dry_run: bool,
    data_dir: str | None,
    tokenizer: str | None,
    recipes_dir: str,
    base_model: str | None,
    translation_engine: str | None,
    translation_model: str | None,
    translation_endpoint: str | None,
    device: str | None,
    translation_backend: str,
    translation_dtype: str,
    max_tier: str | None,
    force: bool,
    overwrite_recipe: bool,
    langpack_path: tuple[str, ...],
) -> None:
    """Build everything a langpack needs for training, into OUT/CODE/.

    \b
    Stages, in order:
      corpus        sources -> normalise -> language ID -> quality filters -> exact + near dedup
                    -> token budget -> English mixed in by tokens -> OUT/CODE/corpus/ (parquet + manifest),
                    then aligned pairs -> OUT/CODE/parallel/<set>.parquet
      instructions  translated / ready-made / from-parallel tiers -> OUT/CODE/instructions/
      recipe        RECIPES_DIR/CODE.yml for `ltk train`

    \b
    Examples:
      ltk build-langpack ny                          the offline default (Chichewa Bible + KJV)
      ltk build-langpack ny --stage corpus --limit 200 --workers 2
      ltk build-langpack sw --dry-run                what would be read, source by source
      ltk build-langpack sw --data-dir /data/copies  hub sources read from /data/copies/<source name>
      ltk build-langpack sw --stage instructions --max-tier 65000   grow: translates only the new records

    A source that cannot be reached fails before any work (sources with `required: false` are skipped
    with a warning). Outputs are written to temporary folders and renamed when complete; rerun the same
    command after a crash to resume.
    """
    from ltk.pipeline import STAGES as PIPELINE_STAGES
    from ltk.pipeline import BuildOptions, build_langpack
    from ltk.pipeline import dry_run as plan
    from ltk.registry import get_langpack

    pack = get_langpack(code, langpack_path)
    options = BuildOptions(
        seed=seed,
        limit=limit,
        workers=workers,
        data_dir=Path(data_dir) if data_dir else None,
        tokenizer=tokenizer,
        base_model=base_model,
        translation_model=translation_model,
        translation_engine=translation_engine,
        translation_endpoint=translation_endpoint,
        translation_backend=translation_backend,
        translation_dtype=translation_dtype,
        max_tier=max_tier,
        device=device,
        force=force,
        overwrite_recipe=overwrite_recipe,
    )
    if dry_run:
        if stage not in ("corpus", "all"):
            click.echo(f"--dry-run applies to the corpus stage; nothing to show for --stage {stage}")
            return
        from ltk.corpus.stage import render_summary

        manifest = plan(pack, Path(out), options)
        click.echo(render_summary(manifest))
        if manifest["errors"]:
            sys.exit(1)
        return
    stages = PIPELINE_STAGES if stage == "all" else (stage,)
    result = build_langpack(pack, Path(out), Path(recipes_dir), options, stages=stages)
    for summary in result.summaries:
        click.echo(summary)
    if result.corpus is not None:
        click.echo(f"corpus written to {result.layout.corpus} (manifest.json)")
    if result.instructions is not None and "tiers" in result.instructions:  # rank 0 writes them
        click.echo(f"instructions written to {result.layout.instructions} (manifest.json)")
    if result.recipe is not None:
        done = "kept (you edited it)" if result.recipe_status == "kept" else result.recipe_status
        click.echo(f"recipe {done}: {result.recipe}. Next: ltk train {result.recipe}")
