"""Documents from strangers: an alias bomb ("billion laughs") in a langpack or a recipe fails at once, with
exit 2, a message naming the file and line, and memory proportional to the file."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltk.cli import main
from ltk.errors import ValidationError
from ltk.validation import read_yaml


def bomb(depth: int, width: int, flow: bool) -> str:
    """``depth`` levels, each a list of ``width`` aliases of the level below: width**depth leaves."""
    lines = ["version: 1", "l0: &l0 [lol, lol]" if flow else "l0: &l0\n  - lol\n  - lol"]
    for level in range(1, depth + 1):
        if flow:
            lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
        else:
            lines.append(f"l{level}: &l{level}\n" + "\n".join([f"  - *l{level - 1}"] * width))
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 12), width=st.integers(2, 12), flow=st.booleans())
def test_alias_bombs_fail_fast_with_bounded_memory(
    tmp_path: Path, depth: int, width: int, flow: bool
) -> None:
    path = tmp_path / "langpack.yml"
    path.write_text(bomb(depth, width, flow), encoding="utf-8")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValidationError) as err:
            read_yaml(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 2_000_000, f"peak {peak} bytes for a {path.stat().st_size}-byte file"
    (problem,) = err.value.problems
    assert problem.file == str(path)
    assert problem.key == "line 2, column 5"  # the first anchor, before anything is expanded
    assert "anchor &l0 is not allowed" in problem.message


def test_a_lone_alias_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yml"
    path.write_text("base_model: x\nsequence_len: *n\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"line 2, column 15: .*alias \*n is not allowed"):
        read_yaml(path)


def test_plain_documents_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yml"
    path.write_text("a: [1, 2]\nb: {c: '&not an anchor', d: '*nor an alias'}\n", encoding="utf-8")
    assert read_yaml(path) == {"a": [1, 2], "b": {"c": "&not an anchor", "d": "*nor an alias"}}


@pytest.mark.parametrize(
    ("argv", "file"),
    [
        (["langpacks", "validate", "{dir}/xx"], "xx/langpack.yml"),
        (["train", "{dir}/recipe.yml", "--dry-run"], "recipe.yml"),
    ],
)
def test_cli_refuses_bombs_fast_with_exit_2(tmp_path: Path, argv: list[str], file: str) -> None:
    # 9 levels of 9 aliases: 387 million leaves if expanded (the shape that kept validate busy for minutes).
    path = tmp_path / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bomb(9, 9, flow=True), encoding="utf-8")
    start = time.perf_counter()
    result = CliRunner().invoke(main, [a.format(dir=tmp_path) for a in argv])
    assert time.perf_counter() - start < 2.0
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and "line 2, column 5" in result.output
    assert "anchor &l0 is not allowed" in result.output
    assert "Traceback" not in result.output
