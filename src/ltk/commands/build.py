"""``ltk build-langpack CODE``: corpus -> parallel sets -> instruction tiers -> recipe."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from ltk.build.translate import BACKENDS, DTYPES
from ltk.cli import LANGPACK_PATH_HELP, handle_errors

STAGES = ("corpus", "instructions", "recipe", "all")


def _lazy(module: str, attr: str, what: str):
    """Import a later stage only when it runs; say clearly when it is not available yet."""
    from ltk.errors import LtkError

    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise LtkError(
            f"the {what} stage ({module}.{attr}) is not available in this ltk install: {exc}.\n"
            f"    fix: update ltk, or run only the corpus stage with --stage corpus"
        ) from None


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
    help="Build folder; results go to OUT/CODE/ (corpus/, parallel/, instructions/).",
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
    "--tokenizer", help="Tokenizer (folder or hub id) that counts the token budget [default: SmolLM2's]."
)
@click.option("--recipes-dir", type=click.Path(file_okay=False), default="recipes", show_default=True)
@click.option(
    "--base-model", help="Base model written into the recipe [default: the langpack's/recipe default]."
)
@click.option("--translation-model", help="NLLB model id or path for the instruction stage.")
@click.option("--device", help="Device for translation (cpu, cuda).")
@click.option(
    "--translation-backend",
    type=click.Choice(BACKENDS),
    default="transformers",
    show_default=True,
    help="ctranslate2: converts the model once, int8 on CPU, several times faster (pip install 'ltk[fast]').",
)
@click.option(
    "--translation-dtype",
    type=click.Choice(DTYPES),
    default="auto",
    show_default=True,
    help="transformers backend weights; auto: bfloat16 on GPUs and on CPUs with native bf16, else float32.",
)
@click.option(
    "--force", is_flag=True, help="Rebuild the corpus even if a finished one with the same settings exists."
)
@click.option("--langpack-path", multiple=True, type=click.Path(), help=LANGPACK_PATH_HELP)
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
    translation_model: str | None,
    device: str | None,
    translation_backend: str,
    translation_dtype: str,
    force: bool,
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

    A source that cannot be reached fails before any work (sources with `required: false` are skipped
    with a warning). Outputs are written to temporary folders and renamed when complete; rerun the same
    command after a crash to resume.
    """
    from ltk.registry import get_langpack

    pack = get_langpack(code, langpack_path)
    build_root = Path(out)
    build_dir = build_root / pack.code
    data = Path(data_dir) if data_dir else None
    if stage in ("corpus", "all"):
        from ltk.build.corpus import build_corpus, render_summary

        manifest = build_corpus(
            pack,
            build_root,
            seed=seed,
            limit=limit,
            workers=workers,
            dry_run=dry_run,
            tokenizer=tokenizer,
            data_dir=data,
            force=force,
        )
        if manifest.get("reused"):
            click.echo(f"corpus: up to date in {build_dir / 'corpus'} (same settings); --force rebuilds it")
        click.echo(render_summary(manifest))
        if dry_run:
            if manifest["errors"]:
                raise SystemExit(1)
            return
        from ltk.build.parallel import build_parallel_sets

        par = build_parallel_sets(pack, build_root, seed=seed, limit=limit, data_dir=data)
        for name, info in par["sets"].items():
            if "skipped" in info:
                click.echo(f"parallel {name}: skipped ({info['skipped']})", err=True)
            else:
                drops = ", ".join(f"{k} {v}" for k, v in info["drops"].items()) or "none"
                click.echo(f"parallel {name}: {info['pairs']:,} pairs ({info['split']}); dropped: {drops}")
        click.echo(f"corpus written to {build_dir / 'corpus'} (manifest.json)")
    elif dry_run:
        click.echo(f"--dry-run applies to the corpus stage; nothing to show for --stage {stage}")
        return
    if stage in ("instructions", "all"):
        build_instructions = _lazy("ltk.build.instructions", "build_instructions", "instructions")
        kwargs = {
            "seed": seed,
            "limit": limit,
            "translation_model": translation_model,
            "device": device,
            "backend": translation_backend,
            "dtype": translation_dtype,
        }
        if data is not None:
            kwargs["data_dir"] = data
        build_instructions(pack, build_root, **kwargs)
        click.echo(f"instructions written to {build_dir / 'instructions'}")
    if stage in ("recipe", "all"):
        write_recipe = _lazy("ltk.recipe.render", "write_recipe", "recipe")
        path = write_recipe(pack, build_root, Path(recipes_dir), base_model=base_model)
        click.echo(f"recipe written to {path}. Next: ltk train {path}")
