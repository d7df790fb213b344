"""Axolotl plugin for ltk recipes. List it in a recipe (rendered recipes do)::

    plugins:
      - ltk_axolotl.LtkPlugin

It is not declared as an entry point on purpose: Axolotl 0.21+ loads every entry-point plugin into every
run. Importing this package needs no Axolotl; ``LtkPlugin`` is loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LtkArgs", "LtkPlugin"]


def __getattr__(name: str) -> Any:
    if name == "LtkPlugin":
        from ltk_axolotl.plugin import LtkPlugin

        return LtkPlugin
    if name == "LtkArgs":
        from ltk_axolotl.args import LtkArgs

        return LtkArgs
    raise AttributeError(name)
