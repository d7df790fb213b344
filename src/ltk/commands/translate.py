"""`ltk translate`: translate a JSONL file of instructions with NLLB, outside a langpack build."""

from __future__ import annotations

import click

from ltk.commands.options import device_option, handle_errors, translation_engine_options


@click.command("translate")
@click.argument("input_file", type=click.Path(dir_okay=False))
@click.argument("output_file", type=click.Path(dir_okay=False))
@click.option(
    "--model",
    default="facebook/nllb-200-distilled-600M",
    show_default=True,
    help="NLLB model id or local folder (a seq2seq model with FLORES-200 language tokens).",
)
@click.option("--src", default="eng_Latn", show_default=True, help="Source language, FLORES-200 code.")
@click.option("--tgt", required=True, help="Target language, FLORES-200 code, e.g. swh_Latn or nya_Latn.")
@translation_engine_options(backend_flag="--backend", dtype_flag="--dtype")
@click.option("--limit", type=int, default=None, help="Translate only the first N records (to try a slice).")
@click.option(
    "--batch-tokens",
    type=int,
    default=None,
    help="Token budget per batch (rows x longest row); default 2048 for float32 transformers on CPU, else 4096. "
    "Lower it if memory runs out.",
)
@click.option(
    "--max-new-tokens",
    type=int,
    default=256,
    show_default=True,
    help="Longest translation of one sentence, in tokens.",
)
@click.option("--beams", type=int, default=1, show_default=True, help="Beam size (1 = greedy, fastest).")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where translations are cached (default $LTK_CACHE, else ~/.cache/ltk).",
)
@device_option("translation")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def translate(
    input_file: str,
    output_file: str,
    model: str,
    src: str,
    tgt: str,
    backend: str,
    dtype: str,
    limit: int | None,
    batch_tokens: int | None,
    max_new_tokens: int,
    beams: int,
    cache_dir: str | None,
    device: str | None,
    quiet: bool,
) -> None:
    """Translate INPUT_FILE (JSONL: alpaca, sharegpt or messages records) into OUTPUT_FILE (messages JSONL).

    \b
    Examples:
      ltk translate alpaca.jsonl alpaca.sw.jsonl --tgt swh_Latn --limit 100
      ltk translate chats.jsonl chats.ny.jsonl --tgt nya_Latn --backend ctranslate2
      ltk translate data.jsonl out.jsonl --model ./nllb-600M --tgt yor_Latn --batch-tokens 8192

    Long texts are cut into sentences; code, URLs, numbers with units and placeholders are kept as they
    are. Each distinct sentence is translated once and cached, so an interrupted run resumes where it
    stopped (rerun the same command). Multi-GPU: `torchrun --nproc-per-node 4 "$(which ltk)" translate ...`.
    NLLB weights are CC-BY-NC-4.0: translations inherit that licence.
    """
    from pathlib import Path

    from ltk.instructions.translate_file import translate_jsonl
    from ltk.translation import GenerationSettings

    settings = GenerationSettings(num_beams=beams, max_new_tokens=max_new_tokens)
    summary = translate_jsonl(
        Path(input_file),
        Path(output_file),
        model=model,
        src=src,
        tgt=tgt,
        backend=backend,
        limit=limit,
        batch_tokens=batch_tokens,
        cache_dir=Path(cache_dir) if cache_dir else None,
        device=device,
        dtype=dtype,
        settings=settings,
        progress=not quiet,
    )
    if summary["rank"] != 0:
        return
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(summary["skipped"].items())) or "none"
    rate = summary["segments_per_s"]
    click.echo(
        f"translated {summary['records']:,} records -> {output_file}\n"
        f"  segments   {summary['segments']:,} ({summary['distinct']:,} distinct, {summary['cached']:,} cached, "
        f"{summary['translated']:,} translated{f', {rate} seg/s' if rate else ''})\n"
        f"  skipped    {skipped}\n"
        f"  spans lost {summary['lost_spans']:,} (URLs/code/placeholders the model dropped)\n"
        f"  engine     {summary['engine']}\n"
        f"  time       {summary['seconds']:.1f}s",
        err=True,
    )
