"""``ltk langpacks list|show|validate|new|codes``: find, inspect, check and start langpacks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ltk.commands.options import handle_errors, langpack_path_option


@click.group()
def langpacks() -> None:
    """List, inspect, validate and scaffold langpacks (one folder of pure data per language)."""


@langpacks.command("list")
@langpack_path_option
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
@langpack_path_option
@handle_errors
def langpacks_show(code: str, langpack_path: tuple[str, ...]) -> None:
    """Print one langpack in full. CODE may be any of its codes: sw, swa, swh or swh_Latn."""
    from ltk.langpack.describe import describe
    from ltk.registry import get_langpack

    click.echo(describe(get_langpack(code, langpack_path)))


@langpacks.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@langpack_path_option
@handle_errors
def langpacks_validate(paths: tuple[str, ...], langpack_path: tuple[str, ...]) -> None:
    """Validate langpack folders (or langpack.yml files); with no PATH, every langpack ltk finds.

    Checks the schema (with `include:` templates merged), then the rules CI applies to a contribution:
    no TODO left from the template (each line listed), every licence a known SPDX id or expression and
    named in the datasheet (README.md), every hub dataset named there, the datasheet's sections and a
    changelog line for the version. Every problem is listed at once, each naming the file, the line or
    key, the bad value and the fix. Exits 2 if any problem is found.
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
