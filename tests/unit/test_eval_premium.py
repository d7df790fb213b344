"""Tokenizer premium: counts on a hand-made pair, the advice thresholds, and the CLI on a build folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _eval_build_path import make_build
from click.testing import CliRunner

from ltk.cli import main
from ltk.evaluate.premium import advice, tokenizer_premium

PAIRS = [
    ("Mulungu ndi wabwino kwambiri.", "God is very good."),
    ("Moni, muli bwanji?", "Hello, how are you?"),
]


def test_premium_counts(tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    result = tokenizer_premium(tok, PAIRS)
    n_target = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t, _ in PAIRS)
    n_english = sum(len(tok(e, add_special_tokens=False)["input_ids"]) for _, e in PAIRS)
    assert result["target"]["words"] == 4 + 3 and result["english"]["words"] == 4 + 4  # counted by hand
    assert result["target"]["bytes"] == 29 + 18 and result["english"]["bytes"] == 17 + 19
    assert result["target"]["tokens"] == n_target and result["english"]["tokens"] == n_english
    assert result["premium"] == pytest.approx(n_target / n_english)
    assert result["premium"] > 1.2  # an English-centric tokenizer splits Chichewa into more pieces
    assert result["target"]["tokens_per_word"] == pytest.approx(n_target / 7)


@pytest.mark.parametrize(
    ("premium", "policy"), [(1.0, "keep"), (2.49, "keep"), (3.0, "keep-or-extend"), (7.3, "extend")]
)
def test_advice_follows_the_study(premium: float, policy: str) -> None:
    assert advice(premium)["policy"] == policy


def test_cli_tokenizer_analyze_on_a_build(tokenizer_dir: Path, tmp_path: Path) -> None:
    build = make_build(tmp_path)
    res = CliRunner().invoke(
        main,
        ["tokenizer", "analyze", "ny", "--model", str(tokenizer_dir), "--build", str(build), "--json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["pairs"] == 6 and data["language"] == "Chichewa" and data["advice"]["policy"] == "keep"
    res = CliRunner().invoke(
        main, ["tokenizer", "analyze", "ny", "--model", str(tmp_path / "nope"), "--build", str(build)]
    )
    assert res.exit_code == 2 and "cannot load the tokenizer" in res.output
