"""Small pieces of the eval runner and report: metric parsing, stage names and order, atomic JSON,
the harness skip message, the report table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ltk.errors import UsageError
from ltk.evaluate.harness import PACKAGE_HINT, default_tasks, harness_eval
from ltk.evaluate.report import Run, results_table, stage_sort_key
from ltk.evaluate.run import guess_stage, parse_metrics


def test_parse_metrics() -> None:
    assert parse_metrics(None) == ["bpb", "codeswitch", "chrf", "premium"]
    assert parse_metrics("bpb, judge,bpb") == ["bpb", "judge"]
    assert len(parse_metrics("all")) == 6
    with pytest.raises(UsageError, match=r"unknown metric\(s\) \['ppl'\]"):
        parse_metrics("bpb,ppl")


def test_stage_guess_and_order() -> None:
    assert guess_stage("runs/ny/cpt/final") == "cpt"
    assert guess_stage(Path("runs/ny/sft")) == "sft"
    assert guess_stage("HuggingFaceTB/SmolLM2-135M") == "base"
    stages = ["sft", "cpt", "base", "cpt-step200", "cpt-step50", "extra"]
    assert sorted(stages, key=stage_sort_key) == ["base", "cpt-step50", "cpt-step200", "cpt", "sft", "extra"]


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is not None, reason="lm-eval is installed here")
def test_harness_skips_naming_the_package() -> None:
    assert harness_eval(None, None, ["belebele_nya_Latn"]) == {"skipped": PACKAGE_HINT}
    assert "pip install lm-eval" in PACKAGE_HINT
    assert default_tasks({"flores": "swh_Latn"}) == ["belebele_swh_Latn"]


def test_results_table_keeps_only_filled_columns() -> None:
    ev = {"meta": {}, "metrics": {"premium": {"premium": 1.756}, "codeswitch": {"word_rate": 0.034}}}
    harness = {"meta": {}, "metrics": {"harness": {"tasks": {"belebele_nya_Latn": {"acc": 0.31}}}}}
    header, rows = results_table([Run("a", Path("a"), {"base": ev, "sft": harness})])
    assert header == ["run", "stage", "code-switch words", "premium", "belebele_nya_Latn acc"]
    assert rows == [["a", "base", "3.4%", "1.76x", "–"], ["a", "sft", "–", "–", "0.3100"]]


def test_model_card_names_the_embedded_base_and_its_licence(tmp_path: Path) -> None:
    import yaml

    from ltk.evaluate.report import model_card

    meta = {
        "model": "/cache/smollm2",
        "model_requested": "embedded:smollm2-135m",
        "build_dir": str(tmp_path),
        "language": {"name": "Swahili", "iso639_1": "sw"},
        "stage": "base",
    }
    card = model_card(Run("sw", tmp_path, {"base": {"meta": meta, "metrics": {"premium": {"premium": 1.9}}}}))
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and front["language"] == ["sw"]
    assert front["license"] == "other"  # no NC data recorded
    assert "- base model HuggingFaceTB/SmolLM2-135M-Instruct: Apache-2.0" in card
    assert "no manifest found" in card and "| sw | base | 1.90x |" in card
