"""``ltk chat`` and ``ltk export``: use the adapted model, and ship it (safetensors, GGUF, Ollama, hub)."""

from __future__ import annotations

import click

from ltk.commands.options import handle_errors

MODEL_HELP = "a run folder (runs/ny: its last finished stage), a stage's final/ folder, a model folder, or embedded:smollm2-135m"


@click.command("export")
@click.argument("model")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder to write (must not exist)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["hf", "gguf", "ollama"]),
    default="hf",
    show_default=True,
    help="hf: merged safetensors + tokenizer + card; gguf: one llama.cpp file; ollama: GGUF + Modelfile.",
)
@click.option(
    "--quant",
    type=click.Choice(["f32", "f16", "bf16", "q8_0"]),
    default="f16",
    show_default=True,
    help="GGUF tensor type (gguf, ollama). q8_0: about half of f16's size, checked at a looser tolerance.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    help="Weights' dtype for --format hf [default: the base model's dtype].",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--no-check", is_flag=True, help="Skip the GGUF round-trip check (not recommended).")
@click.option(
    "--push-to-hub", metavar="OWNER/NAME", help="Upload the exported folder to this hub repository."
)
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repository private.")
@handle_errors
def export(
    model: str,
    out: str,
    fmt: str,
    quant: str,
    dtype: str | None,
    force: bool,
    no_check: bool,
    push_to_hub: str | None,
    private: bool,
) -> None:
    """Export MODEL (a run folder, stage folder, model folder or embedded name) for use elsewhere.

    \b
    Examples:
      ltk export runs/ny --out exports/ny-hf                         merged safetensors + README.md card
      ltk export runs/ny --out exports/ny-gguf --format gguf --quant q8_0
      ltk export runs/ny --out exports/ny-ollama --format ollama     then: ollama create ny -f Modelfile
      ltk export runs/ny --out exports/ny-hf --push-to-hub me/smollm2-ny --private

    \b
    What each format writes into --out (renamed into place only when complete):
      hf      model.safetensors (the base's dtype unless --dtype), tokenizer with the chat template,
              generation_config.json (eos = the end-of-turn ids), README.md (model card with hub
              metadata: language, licence from the data and weights, base_model, datasets, tags)
      gguf    NAME-QUANT.gguf written by llama.cpp's own converter (tokenizer and chat template in its
              metadata), then loaded back with transformers: token ids must match and log-probs stay
              within the quantisation's tolerance (f32 1e-3, f16 0.05, bf16 0.5, q8_0 1.0), or nothing
              is written
      ollama  the GGUF plus a Modelfile whose TEMPLATE renders exactly like the chat template and whose
              stop parameters are the end-of-turn tokens
    Every export has ltk_export.json (source, sha256 of each file, round-trip numbers, versions).

    Refused before any work (exit 2): --out exists without --force, a run with no finished stage, an
    architecture llama.cpp cannot convert, a chat template Ollama cannot express, and --push-to-hub while
    offline (HF_HUB_OFFLINE=1) or without a token (`hf auth login`).
    """
    from ltk.ship.export import export_model

    result = export_model(
        model,
        out,
        fmt=fmt,
        quant=quant,
        dtype=dtype,
        force=force,
        check=not no_check,
        push_to_hub=push_to_hub,
        private=private,
    )
    for line in result.summary():
        click.echo(line)


@click.command("chat")
@click.argument("model")
@click.option("-p", "--prompt", help="Answer this one message and exit (no session).")
@click.option("--system", help="System prompt (the template's default system turn otherwise, if it has one).")
@click.option(
    "--compare", metavar="OTHER", help="A second model answering the same messages, shown side by side."
)
@click.option(
    "--build",
    type=click.Path(file_okay=False),
    help="Build folder of the target language (build/ny) "
    "for marking code-switched words; a run folder's recipe names it already.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Longest answer, in tokens.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="0 = greedy (deterministic); above 0 samples.",
)
@click.option(
    "--top-p",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="Nucleus sampling (with --temperature above 0).",
)
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="0 = off.")
@click.option(
    "--repetition-penalty",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Above 1 discourages repeating tokens (small models loop).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@handle_errors
def chat(
    model: str,
    prompt: str | None,
    system: str | None,
    compare: str | None,
    build: str | None,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    repetition_penalty: float,
    seed: int,
    device: str | None,
) -> None:
    """Talk to MODEL in the terminal, in its own chat template; answers stream as they are generated.

    \b
    MODEL is a run folder (its last finished stage), a stage's final/ folder, a model folder or
    embedded:smollm2-135m. Generation stops at the model's end-of-turn token.
    \b
    Examples:
      ltk chat runs/ny                                  a session (type /exit or Ctrl-D to leave)
      ltk chat runs/ny -p "Moni! Muli bwanji?"          one answer, then exit
      ltk chat runs/ny --compare embedded:smollm2-135m -p "Madzi ndi chiyani?"
                                                        the base's answer beside the adapted one's
      ltk chat runs/ny --temperature 0.7 --top-p 0.9    sample instead of greedy
    \b
    In a session: /reset forgets the conversation, /system TEXT sets the system prompt, /exit leaves.
    Words ltk's code-switch detector finds outside the target language are marked «like this»
    (underlined on a terminal), with a count after each answer, when the language is known (a run's
    recipe, or --build).
    """
    from ltk.ship.chat import ChatModel, Sampling, Session

    sampling = Sampling(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)
    models = [ChatModel.load(model, device=device, build=build)]
    if compare:
        other = ChatModel.load(compare, device=device)
        other.detector, other.language = models[0].detector, models[0].language
        models.append(other)
    session = Session(models, sampling, system=system, color=click.get_text_stream("stdout").isatty())
    if prompt is not None:
        session.turn(prompt)
        return
    stdin = click.get_text_stream("stdin")
    click.echo(f"chatting with {' and '.join(m.name for m in models)}; {HELP_LINE}", err=True)

    def read() -> str | None:
        line = stdin.readline()
        return line if line else None

    session.repl(read)


HELP_LINE = "/reset, /system TEXT, /exit (or Ctrl-D)"
