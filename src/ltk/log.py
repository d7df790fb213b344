"""One way to report progress: ltk's loggers for events (one line each, on stderr) and tqdm bars for long
loops. Library code logs through ``logging.getLogger(__name__)`` and draws bars with ``progress``; only
the CLI edge decides how much is shown (``setup``: ``-q`` warnings only, default info, ``-v`` debug plus
library warnings). Used as a library, ltk stays quiet unless the caller configures logging.

Libraries ltk builds on print things that mean nothing to an ltk user (deprecation notices for arguments
ltk does not pass, a source line after a UserWarning). ``setup`` filters those at the CLI edge, unless
``-v`` asks to see everything.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")
ROOT = "ltk"
_state = {"bars": True}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners and click swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # logging.StreamHandler sets it in __init__
        pass


def setup(verbosity: int = 0) -> None:
    """Configure ltk's output for a command: ``verbosity`` -1 quiet, 0 normal, 1+ verbose."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)
    _state["bars"] = verbosity >= 0
    if verbosity > 0:
        warnings.simplefilter("default")
        return
    quiet_libraries()


def quiet_libraries() -> None:
    """Hide library notices that are not the user's to act on (shown again with ``-v``)."""
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"^(?!ltk)")
    for name in ("transformers", "datasets", "peft", "trl", "accelerate", "torch", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # "Loading weights", "Writing model shards": not ltk's steps
    except ImportError:
        pass


def bars_enabled() -> bool:
    return _state["bars"]


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    leave: bool = False,
    **kwargs: Any,
) -> Any:
    """A tqdm bar on stderr (off with ``-q`` or ``enabled=False``); iterate it or call ``update``."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not (enabled and _state["bars"]),
        leave=leave,
        dynamic_ncols=True,
        file=sys.stderr,
        **kwargs,
    )
