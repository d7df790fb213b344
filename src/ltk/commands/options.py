"""What the commands share: turning ltk's errors into a message and an exit status, and option bundles
for options several commands take (decorators, as simonw/llm does), so each is defined once."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from ltk.errors import LtkError
from ltk.translation.engines import BACKENDS, DTYPES

F = Callable[..., Any]
LANGPACK_PATH_HELP = "Extra folder of langpacks (repeatable). Also read from $LTK_LANGPACK_PATH."


def handle_errors(func: F) -> F:
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


def langpack_path_option(func: F) -> F:
    return click.option("--langpack-path", multiple=True, type=click.Path(), help=LANGPACK_PATH_HELP)(func)


def translation_engine_options(*, backend_flag: str, dtype_flag: str) -> Callable[[F], F]:
    """The translation backend and weights' dtype (``ltk translate`` and ``ltk build-langpack`` name
    them differently: --backend/--dtype there, --translation-backend/--translation-dtype here)."""

    def decorate(func: F) -> F:
        func = click.option(
            dtype_flag,
            type=click.Choice(DTYPES),
            default="auto",
            show_default=True,
            help="transformers backend weights. auto: bfloat16 on GPUs and on CPUs with native bf16 (AMX, "
            "AVX512-BF16), else float32. Part of the cache key.",
        )(func)
        return click.option(
            backend_flag,
            type=click.Choice(BACKENDS),
            default="auto",
            show_default=True,
            help="auto: ctranslate2 on CPUs without native bf16 (when installed and no dtype is pinned), "
            "transformers elsewhere. ctranslate2 converts the model once and runs int8 on CPU, several "
            "times faster (pip install 'ltk[fast]'); OPUS-MT and llm run on transformers / their endpoint.",
        )(func)

    return decorate


def device_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--device", help=f"Device for {what}: cpu, cuda, cuda:1 ... (default: cuda when available)."
    )


def build_option(func: F) -> F:
    """``--build``: one language's build folder, the same meaning in every command."""
    return click.option(
        "--build",
        "build_dir",
        required=True,
        type=click.Path(file_okay=False),
        help="The language's build folder, e.g. build/ny (what `ltk build-langpack ny` wrote).",
    )(func)


def build_root_option(func: F) -> F:
    return click.option(
        "--build-root",
        type=click.Path(file_okay=False),
        default="build",
        show_default=True,
        help="Build root for `ltk build-langpack` (each language in BUILD_ROOT/CODE/).",
    )(func)


def recipes_dir_option(func: F) -> F:
    return click.option(
        "--recipes-dir",
        type=click.Path(file_okay=False),
        default="recipes",
        show_default=True,
        help="Where rendered recipes are written (RECIPES_DIR/CODE.yml).",
    )(func)


def base_model_option(func: F) -> F:
    return click.option(
        "--base-model",
        help="Any hub id or local folder instead of the embedded SmolLM2-135M [default: embedded:smollm2-135m].",
    )(func)


def seed_option(func: F) -> F:
    return click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed for the build, training and sampling."
    )(func)
