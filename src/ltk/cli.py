"""ltk's command line: a thin click shell. Each command parses, imports lazily, and calls one library
function; ltk's own errors become a clean message and an exit status (2 for usage/validation)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ltk import __version__
from ltk.errors import LtkError

LANGPACK_PATH_HELP = "Extra folder of langpacks (repeatable). Also read from $LTK_LANGPACK_PATH."


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LtkError into 'error: ...' on stderr and its exit code, with no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LtkError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="ltk")
def main() -> None:
    """ltk, the language transfer kit: adapt an English-centric LLM to a low-resource language.

    \b
    The usual path, for Swahili:
      ltk langpacks show sw          what the Swahili langpack contains
      ltk build-langpack sw          corpus + translated instruction tiers + recipes/sw.yml
      ltk train recipes/sw.yml       continual pretraining, then instruction tuning
      ltk eval runs/sw/sft/final --build build/sw --out runs/sw
                                     bits per byte, code-switching, chrF, premium, judge
      ltk report runs/sw             HTML/markdown report with plots, and a model card

    Offline, on the embedded default (SmolLM2-135M -> Chichewa): ltk quickstart

    Defaults follow Zhao et al. 2024 ("LLaMA Beyond English"): keep the vocabulary, mix English back in,
    and instruction-tune on translated data.
    """


# ---------------------------------------------------------------------------------------------- langpacks
@main.group()
def langpacks() -> None:
    """List, inspect, validate and scaffold langpacks (one folder of pure data per language)."""


@langpacks.command("list")
@click.option("--langpack-path", multiple=True, type=click.Path(), help=LANGPACK_PATH_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@handle_errors
def langpacks_list(langpack_path: tuple[str, ...], as_json: bool) -> None:
    """Show every langpack ltk can find: code, name, script, sources, tiers, English mix, version."""
    from ltk.langpack.describe import langpack_rows, render_table
    from ltk.registry import load_registry

    registry = load_registry(langpack_path)
    rows = langpack_rows(registry)
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(render_table(rows))
        click.echo(f"\n{len(rows)} langpacks. `ltk langpacks show CODE` for one in full.")
    for folder, err in registry.broken.items():
        click.echo(f"\nwarning: skipped invalid langpack {folder}:\n{err}", err=True)


@langpacks.command("show")
@click.argument("code")
@click.option("--langpack-path", multiple=True, type=click.Path(), help=LANGPACK_PATH_HELP)
@handle_errors
def langpacks_show(code: str, langpack_path: tuple[str, ...]) -> None:
    """Print one langpack in full. CODE may be any of its codes: sw, swa, swh or swh_Latn."""
    from ltk.langpack.describe import describe
    from ltk.registry import get_langpack

    click.echo(describe(get_langpack(code, langpack_path)))


@langpacks.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--langpack-path", multiple=True, type=click.Path(), help=LANGPACK_PATH_HELP)
@handle_errors
def langpacks_validate(paths: tuple[str, ...], langpack_path: tuple[str, ...]) -> None:
    """Validate langpack folders (or langpack.yml files); with no PATH, every langpack ltk finds.

    Every problem is listed at once, each naming the file, the key, the bad value and the fix.
    Exits 2 if any problem is found.
    """
    from ltk.langpack.validate import validate_paths

    ok, report = validate_paths([Path(p) for p in paths], langpack_path)
    click.echo(report, err=not ok)
    if not ok:
        sys.exit(2)


@langpacks.command("new")
@click.argument("code")
@click.option("--name", help="Language name in English (looked up from CODE if omitted).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="langpacks",
    show_default=True,
    help="Folder to create the langpack in.",
)
@handle_errors
def langpacks_new(code: str, name: str | None, out: str) -> None:
    """Scaffold langpacks/CODE from the template, with a datasheet and a contribution checklist."""
    from ltk.langpack.scaffold import scaffold

    folder = scaffold(code, Path(out), name=name)
    click.echo(f"created {folder}/ (langpack.yml, README.md). Fill in the TODOs, then run:")
    click.echo(f"  ltk langpacks validate {folder}")


@langpacks.command("codes")
@click.argument("query", required=False)
def langpacks_codes(query: str | None) -> None:
    """List the FLORES-200 / NLLB codes a langpack's language.flores may use (optionally filtered)."""
    from ltk.languages import display_name, flores200_codes

    for code in sorted(flores200_codes()):
        name = display_name(code)
        if not query or query.lower() in code.lower() or query.lower() in name.lower():
            click.echo(f"{code}\t{name}")


# Commands of the later stages register below (build, train, eval, report, experiment).

from ltk.commands.translate import translate  # noqa: E402

main.add_command(translate)

from ltk.commands.evaluate import eval_cmd, report_cmd, tokenizer_group  # noqa: E402

main.add_command(eval_cmd)
main.add_command(report_cmd)
main.add_command(tokenizer_group)

from ltk.commands.build import build_langpack  # noqa: E402

main.add_command(build_langpack)

from ltk.commands.train import train  # noqa: E402

main.add_command(train)

from ltk.commands.quickstart import experiment, quickstart  # noqa: E402

main.add_command(quickstart)
main.add_command(experiment)
