"""`ltk translate`: translate a JSONL file of instructions with any MT engine, outside a langpack build."""

from __future__ import annotations

import click

from ltk.commands.options import device_option, handle_errors, translation_engine_options
from ltk.translation.families import FAMILIES


@click.command("translate")
@click.argument("input_file", type=click.Path(dir_okay=False), required=False)
@click.argument("output_file", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--compare",
    "compare_specs",
    multiple=True,
    metavar="ENGINE_OR_MODEL",
    help="Compare engines on --langpack's parallel evaluation set instead of translating a file (repeat it): "
    "an engine (nllb, m2m100, madlad, marian, llm), ENGINE=MODEL, or a model folder (family detected).",
)
@click.option(
    "--langpack", "langpack_code", help="With --compare: the langpack whose evaluation set is used."
)
@click.option(
    "--build-root",
    type=click.Path(file_okay=False),
    default="build",
    show_default=True,
    help="With --compare: where the langpack's parallel sets are (built there if missing).",
)
@click.option(
    "--out",
    "compare_out",
    type=click.Path(file_okay=False),
    help="With --compare: folder for compare.{json,md,png} [default: BUILD_ROOT/CODE/compare].",
)
@click.option(
    "--segments-per-record",
    type=float,
    default=6.0,
    show_default=True,
    help="With --compare: sentences per English instruction record, for the time-per-tier estimate.",
)
@click.option(
    "--engine",
    type=click.Choice(FAMILIES),
    default="nllb",
    show_default=True,
    help="MT engine family: nllb (NLLB-200), m2m100 (M2M-100), madlad (MADLAD-400, T5), marian (OPUS-MT, "
    "one model per direction), llm (a chat model behind an OpenAI-compatible --endpoint).",
)
@click.option(
    "--model",
    default=None,
    help="Model id or local folder [default: the engine's smallest: facebook/nllb-200-distilled-600M, "
    "facebook/m2m100_418M, google/madlad400-3b-mt, Helsinki-NLP/opus-mt-{src}-{tgt}]. marian: a template "
    "with {src}/{tgt} (ISO codes); llm: the served model's name.",
)
@click.option(
    "--endpoint",
    help="engine llm: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (key from $OPENAI_API_KEY).",
)
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    help="engine llm: requests in flight at once.",
)
@click.option(
    "--retries",
    type=int,
    default=4,
    show_default=True,
    help="engine llm: retries of a failed request (backoff 1, 2, 4 ... s); finished batches stay cached.",
)
@click.option("--src", default="eng_Latn", show_default=True, help="Source language, FLORES-200 code.")
@click.option("--tgt", help="Target language, FLORES-200 code, e.g. swh_Latn or nya_Latn.")
@translation_engine_options(backend_flag="--backend", dtype_flag="--dtype")
@click.option(
    "--limit",
    type=int,
    default=None,
    help="Translate only the first N records (to try a slice); with --compare, N pairs [default: 200].",
)
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
    input_file: str | None,
    output_file: str | None,
    compare_specs: tuple[str, ...],
    langpack_code: str | None,
    build_root: str,
    compare_out: str | None,
    segments_per_record: float,
    engine: str,
    model: str | None,
    endpoint: str | None,
    concurrency: int,
    retries: int,
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
      ltk translate data.jsonl out.jsonl --engine madlad --model ./madlad400-3b-mt --tgt swh_Latn
      ltk translate data.jsonl out.jsonl --engine marian --model './opus-mt-{src}-{tgt}' --tgt swh_Latn
      ltk translate data.jsonl out.jsonl --engine llm --endpoint http://127.0.0.1:8000/v1 --model qwen3 \\
          --tgt swh_Latn --concurrency 8
      ltk translate --compare nllb --compare m2m100 --compare madlad --langpack sw
          chrF/BLEU both ways, speed and time per tier of each engine on the pack's FLORES devtest

    Long texts are cut into sentences; code, URLs, numbers with units and placeholders are kept as they
    are. Each distinct sentence is translated once and cached, so an interrupted run resumes where it
    stopped (rerun the same command). Multi-GPU: `torchrun --nproc-per-node 4 "$(which ltk)" translate ...`.
    Licences of the weights carry over to the translations: NLLB CC-BY-NC-4.0, M2M-100 MIT, MADLAD-400
    Apache-2.0, OPUS-MT CC-BY-4.0; an LLM endpoint's own terms.
    """
    from pathlib import Path

    from ltk.errors import UsageError
    from ltk.instructions.translate_file import translate_jsonl
    from ltk.translation import GenerationSettings

    if compare_specs:
        if not langpack_code:
            raise UsageError("--compare needs --langpack CODE (its parallel evaluation set is translated)")
        from ltk.registry import get_langpack
        from ltk.translation.compare import compare_engines, parse_spec

        pack = get_langpack(langpack_code)
        result = compare_engines(
            pack,
            [parse_spec(s) for s in compare_specs],
            Path(compare_out) if compare_out else Path(build_root) / pack.code / "compare",
            build_root=Path(build_root),
            limit=limit or 200,
            device=device,
            dtype=dtype,
            backend=backend,
            endpoint=endpoint,
            segments_per_record=segments_per_record,
            progress=not quiet,
        )
        click.echo(result["table"])
        out = Path(compare_out) if compare_out else Path(build_root) / pack.code / "compare"
        click.echo(f"written: {out / 'compare.md'}, compare.json, compare.png", err=True)
        return
    if not input_file or not output_file or not tgt:
        raise UsageError(
            "give INPUT_FILE OUTPUT_FILE --tgt CODE to translate a file, or --compare ENGINE --langpack CODE "
            "to compare engines (see ltk translate --help)"
        )

    settings = GenerationSettings(num_beams=beams, max_new_tokens=max_new_tokens)
    summary = translate_jsonl(
        Path(input_file),
        Path(output_file),
        model=model,
        engine=engine,
        endpoint=endpoint,
        concurrency=concurrency,
        retries=retries,
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
