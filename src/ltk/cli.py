"""ltk's command line: a thin click shell. Each command (``ltk.commands``) parses, imports the library
lazily, and calls one library function; ltk's own errors become a clean message and an exit status (2 for
usage/validation). Imports go one way: commands import the library, never the reverse."""

from __future__ import annotations

import click

from ltk import __version__
from ltk.commands.build import build_langpack
from ltk.commands.evaluate import eval_cmd, report_cmd, tokenizer_group
from ltk.commands.langpacks import langpacks
from ltk.commands.quickstart import experiment, quickstart
from ltk.commands.ship import chat, export
from ltk.commands.train import build_prefs, train
from ltk.commands.translate import translate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ltk")
@click.option("-v", "--verbose", count=True, help="More detail: debug messages and library warnings.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and results only: no progress lines or bars.")
def main(verbose: int, quiet: bool) -> None:
    """ltk, the language transfer kit: adapt an English-centric LLM to a low-resource language.

    \b
    The usual path, for Swahili:
      ltk langpacks show sw          what the Swahili langpack contains
      ltk build-langpack sw          corpus + translated instruction tiers + recipes/sw.yml
      ltk train recipes/sw.yml       continual pretraining, then instruction tuning
      ltk eval runs/sw/sft/final --build build/sw --out runs/sw
                                     bits per byte, code-switching, chrF, premium, judge
      ltk report runs/sw --out reports/sw
                                     HTML/markdown report with plots, and a model card

    Offline, on the embedded default (SmolLM2-135M -> Chichewa): ltk quickstart

    Defaults follow Zhao et al. 2024 ("LLaMA Beyond English"): keep the vocabulary, mix English back in,
    and instruction-tune on translated data.
    """
    from ltk.log import setup

    setup(-1 if quiet else verbose)


for command in (
    langpacks,
    build_langpack,
    translate,
    train,
    build_prefs,
    eval_cmd,
    report_cmd,
    tokenizer_group,
    quickstart,
    experiment,
    export,
    chat,
):
    main.add_command(command)
