"""Lets unit tests reuse the small Bible readers of tests/integration/_eval_build.py (not a test module)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _eval_build import chichewa_chapter, kjv_chapter, make_build

__all__ = ["chichewa_chapter", "kjv_chapter", "make_build"]
