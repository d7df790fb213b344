"""``ltk eval``, ``ltk report`` and ``ltk tokenizer analyze``: thin click shells over ltk.evaluate."""

from __future__ import annotations

from pathlib import Path

import click

from ltk.commands.options import build_option, device_option, handle_errors

METRICS_HELP = (
    "Comma-separated metrics: bpb (bits per byte, target + English), codeswitch (answers not in the "
    "target language), chrf (chrF/BLEU of translations, both directions), premium (tokenizer premium), "
    "judge (LLM judge, five axes), harness (lm-evaluation-harness tasks), or all. "
    "Default: bpb,codeswitch,chrf,premium."
)


@click.command("eval")
@click.argument("model")
@build_option
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="Run folder, e.g. runs/ny."
)
@click.option(
    "--stage",
    help="Stage name for the output file eval/<stage>.json (default: cpt/sft from the model "
    "path, else base).",
)
@click.option("--metrics", default=None, help=METRICS_HELP)
@click.option(
    "--max-docs",
    type=int,
    help="Held-out documents per language for bits per byte (default: langpack's "
    "eval.max_documents, else 200).",
)
@click.option(
    "--max-prompts",
    type=int,
    help="Held-out prompts for code-switch/judge (default: langpack's eval.prompts).",
)
@click.option("--max-pairs", type=int, help="Parallel pairs per set for chrF (default 200).")
@click.option(
    "--context-length", type=int, help="Bits-per-byte window in tokens (default 1024, capped by the model)."
)
@click.option("--stride", type=int, help="Bits-per-byte window stride (default: half the context).")
@click.option("--max-new-tokens", type=int, default=128, show_default=True, help="Generation length.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Generation batch size.")
@device_option("the model")
@click.option(
    "--judge-url",
    help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1. Without it, "
    "--judge-model is a local transformers model.",
)
@click.option("--judge-model", help="Judge model name at the endpoint, or a local model path/hub id.")
@click.option(
    "--judge-api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the endpoint's API key (never pass keys on the command line).",
)
@click.option(
    "--judge-retries", type=int, default=4, show_default=True, help="Retries per request (backoff doubles)."
)
@click.option(
    "--judge-price",
    default="0,0",
    show_default=True,
    help="USD per million input,output tokens, for the cost display.",
)
@click.option("--harness-tasks", help="Comma-separated lm-eval task names (default: belebele_<flores code>).")
@handle_errors
def eval_cmd(
    model: str,
    build_dir: str,
    out: str,
    stage: str | None,
    metrics: str | None,
    max_docs: int | None,
    max_prompts: int | None,
    max_pairs: int | None,
    context_length: int | None,
    stride: int | None,
    max_new_tokens: int,
    batch_size: int,
    device: str | None,
    judge_url: str | None,
    judge_model: str | None,
    judge_api_key_env: str,
    judge_retries: int,
    judge_price: str,
    harness_tasks: str | None,
) -> None:
    """Evaluate MODEL (folder, hub id or embedded:smollm2-135m) on a build's held-out sets.

    \b
    Writes RUN_DIR/eval/<stage>.json (numbers + method) and <stage>.samples.jsonl (generations).
    Every number gets a 95% interval from per-item scores stored beside it (bits per byte: bootstrap
    over documents; chrF/BLEU: over segments; code-switch answers: Wilson; judge: over prompts), so
    two stages can later be compared item by item (ltk report).
    Examples:
      ltk eval embedded:smollm2-135m --build build/ny --out runs/ny --stage base
      ltk eval runs/ny/sft/final --build build/ny --out runs/ny --metrics bpb,codeswitch
      ltk eval runs/ny/sft/final --build build/ny --out runs/ny --metrics judge \\
          --judge-url http://127.0.0.1:8000/v1 --judge-model my-judge
    Then: ltk report runs/ny --out reports/ny
    """
    from ltk.errors import UsageError
    from ltk.evaluate.metrics import EvalOptions
    from ltk.evaluate.run import evaluate_model, parse_metrics, summary_rows

    chosen = parse_metrics(metrics)
    backend = None
    if "judge" in chosen:
        from ltk.evaluate.judge import make_backend

        backend = make_backend(
            judge_url, judge_model, api_key_env=judge_api_key_env, max_retries=judge_retries
        )
    try:
        price_in, price_out = (float(x) for x in judge_price.split(","))
    except ValueError:
        raise UsageError(
            f"--judge-price {judge_price!r}: give two numbers, input,output USD per 1M tokens"
        ) from None
    options = EvalOptions(
        max_docs=max_docs,
        max_prompts=max_prompts,
        max_pairs=max_pairs,
        context_length=context_length,
        stride=stride,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
        judge=backend,
        judge_price=(price_in, price_out),
        harness_tasks=[t for t in (harness_tasks or "").split(",") if t] or None,
    )
    result = evaluate_model(model, Path(build_dir), Path(out), chosen, options, stage=stage)
    stage_name = result["meta"]["stage"]
    click.echo(f"\n{result['meta']['model']} on {build_dir} ({stage_name})")
    for name, value in summary_rows(result):
        click.echo(f"  {name:<22} {value}")
    click.echo(
        f"\nwrote {Path(out) / 'eval' / (stage_name + '.json')}. Next: ltk report {out} --out reports/"
    )


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the report files.")
@handle_errors
def report_cmd(runs: tuple[str, ...], out: str) -> None:
    """Compare RUNS side by side: report.md, report.html (self-contained, plots embedded), model card(s).

    \b
    A run is a folder with eval/<stage>.json files (written by ltk eval or training), or one eval JSON.
    Values are shown with their 95% intervals, plots with error bars, and a table of paired differences
    (each stage against the one before, each other run against the first) says which changes are clear.
    Examples:
      ltk report runs/ny --out reports/ny
      ltk report runs/ny-keep runs/ny-extend --out reports/vocab-ablation
    """
    from ltk.evaluate.report import write_report

    written = write_report(list(runs), Path(out))
    for key, path in written.items():
        click.echo(f"{key:<28} {path}")


@click.group("tokenizer")
def tokenizer_group() -> None:
    """Tokenizer checks that need no training."""


@tokenizer_group.command("analyze")
@click.argument("code")
@click.option("--model", required=True, help="Model (or tokenizer) folder, hub id, or embedded:smollm2-135m.")
@click.option(
    "--build",
    "build_dir",
    type=click.Path(file_okay=False),
    help="The language's build folder [default: build/CODE]; its parallel sets are used when built.",
)
@click.option("--max-pairs", type=int, default=1000, show_default=True, help="Parallel pairs to measure.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@handle_errors
def tokenizer_analyze(code: str, model: str, build_dir: str | None, max_pairs: int, as_json: bool) -> None:
    """Tokenizer premium of MODEL for langpack CODE: tokens per byte and per word, target vs English, on
    parallel text, and whether to keep or extend the vocabulary.

    \b
    Example:
      ltk tokenizer analyze ny --model embedded:smollm2-135m
    Reads BUILD/parallel when built, else the langpack's parallel sources directly.
    """
    from ltk.evaluate.premium import analyze, render

    result = analyze(code, model, build_dir=Path(build_dir) if build_dir else None, max_pairs=max_pairs)
    if as_json:
        import json

        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(render(result))
