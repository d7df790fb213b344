"""``build_langpack``: the whole data pipeline for one language, in the README's order,

    corpus (ltk.corpus) -> parallel sets (ltk.corpus.parallel) -> instructions (ltk.instructions)
    -> recipe (ltk.recipe)

called the same way by ``ltk build-langpack``, ``ltk quickstart`` and ``ltk experiment``. Each stage
resumes on its own (a finished corpus with the same settings is reused, translations are cached), so
rerunning after a crash continues where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.langpack.load import Langpack
from ltk.layout import BuildLayout

log = logging.getLogger(__name__)
STAGES = ("corpus", "instructions", "recipe")


@dataclass(frozen=True)
class BuildOptions:
    """Everything a build can be told beyond the langpack itself (the command's options)."""

    seed: int = 0
    limit: int | None = None  # records read per source (quick tries, tests)
    workers: int = 1
    data_dir: Path | None = None  # local copies of hub sources: DIR/<source name>
    tokenizer: str | None = None  # counts the token budget; default: the base model's
    base_model: str | None = None  # written into the recipe
    translation_model: str | None = None
    translation_engine: str | None = None  # default: the langpack's instructions.engine
    translation_endpoint: str | None = None  # engine llm
    translation_backend: str = "auto"
    translation_dtype: str = "auto"
    # Largest instruction tier to translate for (a tier or "all"); None: the tier the recipe trains.
    max_tier: int | str | None = None
    device: str | None = None
    force: bool = False  # rebuild the corpus even when a finished one has the same settings
    overwrite_recipe: bool = False  # re-render the recipe even over the user's edits
    progress: bool = True

    @property
    def budget_tokenizer(self) -> str:
        """The budget is counted with the tokenizer of the model that will train on it."""
        from ltk.assets import EMBEDDED_NAME

        return self.tokenizer or self.base_model or EMBEDDED_NAME


@dataclass
class BuildResult:
    layout: BuildLayout
    corpus: dict[str, Any] | None = None
    parallel: dict[str, Any] | None = None
    instructions: dict[str, Any] | None = None
    recipe: Path | None = None
    recipe_status: str | None = None  # written | unchanged | kept (the user edited it)
    summaries: list[str] = field(default_factory=list)


def build_langpack(
    pack: Langpack,
    build_root: Path,
    recipes_dir: Path,
    options: BuildOptions | None = None,
    *,
    stages: tuple[str, ...] = STAGES,
) -> BuildResult:
    """Run ``stages`` (any of corpus, instructions, recipe) in order into ``<build_root>/<code>/``.

    The corpus stage also builds the parallel sets. Returns every stage's manifest and a one-screen
    summary per stage.
    """
    from ltk.corpus.parallel import build_parallel_sets
    from ltk.corpus.stage import build_corpus, render_summary
    from ltk.instructions.stage import build_instructions, format_summary
    from ltk.recipe.render import write_recipe

    opts = options or BuildOptions()
    layout = BuildLayout(Path(build_root), pack.code)
    result = BuildResult(layout)
    if "corpus" in stages:
        log.info(f"corpus: {pack.code} -> {layout.corpus}")
        result.corpus = build_corpus(
            pack,
            layout.root,
            seed=opts.seed,
            limit=opts.limit,
            workers=opts.workers,
            tokenizer=opts.budget_tokenizer,
            data_dir=opts.data_dir,
            progress=opts.progress,
            force=opts.force,
        )
        if result.corpus.get("reused"):
            log.info(f"corpus: up to date in {layout.corpus} (same settings); --force rebuilds it")
        result.summaries.append(render_summary(result.corpus))
        result.parallel = build_parallel_sets(
            pack, layout.root, seed=opts.seed, limit=opts.limit, data_dir=opts.data_dir
        )
        result.summaries.append(render_parallel(result.parallel))
    if "instructions" in stages:
        log.info(f"instructions: {pack.code} -> {layout.instructions}")
        manifest = build_instructions(
            pack,
            layout.root,
            seed=opts.seed,
            limit=opts.limit,
            translation_model=opts.translation_model,
            translation_engine=opts.translation_engine,
            endpoint=opts.translation_endpoint,
            device=opts.device,
            backend=opts.translation_backend,
            dtype=opts.translation_dtype,
            data_dir=opts.data_dir,
            max_tier=opts.max_tier,
            progress=opts.progress,
        )
        result.instructions = manifest
        if "tiers" in manifest:  # rank 0 only; other ranks just filled the translation cache
            result.summaries.append(format_summary(manifest, manifest.get("run")))
    if "recipe" in stages:
        written = write_recipe(
            pack, layout.root, Path(recipes_dir), base_model=opts.base_model, overwrite=opts.overwrite_recipe
        )
        result.recipe = written.path
        result.recipe_status = written.status
        if written.kept:
            log.warning(
                f"recipe: {written.path} was edited, so it was kept; the fresh render is in {written.rendered} "
                f"(re-render on purpose: ltk build-langpack {pack.code} --stage recipe --overwrite-recipe)"
            )
    return result


def dry_run(pack: Langpack, build_root: Path, options: BuildOptions | None = None) -> dict[str, Any]:
    """What the corpus stage would read, source by source; reads and writes nothing."""
    from ltk.corpus.stage import build_corpus

    opts = options or BuildOptions()
    return build_corpus(pack, Path(build_root), limit=opts.limit, data_dir=opts.data_dir, dry_run=True)


def render_parallel(manifest: dict[str, Any]) -> str:
    lines = []
    for name, info in manifest["sets"].items():
        if "skipped" in info:
            lines.append(f"parallel {name}: skipped ({info['skipped']})")
        else:
            drops = ", ".join(f"{k} {v}" for k, v in info["drops"].items()) or "none"
            lines.append(f"parallel {name}: {info['pairs']:,} pairs ({info['split']}); dropped: {drops}")
    return "\n".join(lines)
