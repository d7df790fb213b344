"""`ltk experiment` end to end at its tiny scale on a tiny random LLaMA: every arm trains and is scored,
the table, JSON and plot are written, and a second run with the same seed reproduces the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")]

METRICS = ("target_bpb", "english_bpb", "chrf_to_target", "chrf_to_english", "codeswitch_answers")


def test_experiment_runs_every_arm_and_reproduces_with_the_same_seed(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ltk.experiment import SCALES, arms_for, run_experiment

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    results = []
    for n in (1, 2):
        results.append(
            run_experiment(
                tmp_path / f"out{n}",
                scale="tiny",
                seed=0,
                seeds=[0, 1] if n == 2 else None,  # the second run also repeats the training with seed 1
                work=tmp_path / f"work{n}",
                build_root=tmp_path / "build",
                recipes_dir=tmp_path / "recipes",
                base_model=str(tiny_llama_dir),
            )
        )
    first, second = results
    assert not first["failed"], first["failed"]
    assert first["not_measured"] == []  # every default arm ran (sft+pref is asked for with --with-pref)
    # --report reads the finished arms back without running anything; the arm never run is listed.
    report = run_experiment(
        tmp_path / "report", scale="tiny", seed=0, work=tmp_path / "work1", build_root=tmp_path / "no-build",
        recipes_dir=tmp_path / "no-recipes", base_model=str(tiny_llama_dir), with_pref=True, report_only=True,
    )  # fmt: skip
    assert report["rows"] == first["rows"] and report["not_measured"] == ["sft+pref"]
    assert not (tmp_path / "no-build").exists() and not (tmp_path / "no-recipes").exists()
    assert "--only sft+pref` |" in (tmp_path / "report" / "results-tiny.md").read_text(encoding="utf-8")
    assert [r["arm"] for r in first["rows"]] == [a.name for a in arms_for(SCALES["tiny"])]
    for path in ("results-tiny.md", "results-tiny.json", "findings-tiny.png"):
        assert (tmp_path / "out1" / path).stat().st_size > 0
    recorded = json.loads((tmp_path / "out1" / "results-tiny.json").read_text(encoding="utf-8"))
    assert recorded["rows"] == first["rows"]
    # Trained arms moved away from the base model (the comparison could fail).
    by_arm = {r["arm"]: r for r in first["rows"]}
    assert by_arm["cpt-en0"]["target_bpb"] != by_arm["base"]["target_bpb"]
    # Verdicts at 95% from paired differences, with reasons; rows carry their intervals.
    assert {f["verdict"] for f in first["findings"]} <= {"holds", "contradicted", "inconclusive"}
    assert all(f["reason"] for f in first["findings"])
    assert by_arm["base"]["target_bpb_ci"] is None  # one held-out chapter at tiny scale: no interval
    # Seeds: seed 1's arms trained too, the spread across both seeds is reported, each verdict per seed.
    assert set(second["per_seed"]) == {"1"} and second["seeds"] == [0, 1]
    assert second["spread"]["cpt-en0"]["target_bpb"]["seeds"] == 2
    assert second["spread"]["base"]["target_bpb"]["sd"] == 0.0  # the base is not trained: no spread
    seed1 = {r["arm"]: r for r in second["per_seed"]["1"]["rows"]}
    assert seed1["cpt-en0"]["target_bpb"] != by_arm["cpt-en0"]["target_bpb"]  # another seed, another model
    assert all(set(f["seeds"]) == {"0", "1"} for f in second["findings"])
    md = (tmp_path / "out2" / "results-tiny-seeds.md").read_text(encoding="utf-8")
    assert "## Across training seeds [0, 1]" in md and "--seeds 0,1" in md
    # Same command, same seed: the same numbers (CPU training and greedy decoding are deterministic).
    for a, b in zip(first["rows"], second["rows"], strict=True):
        for key in METRICS:
            if a[key] is None:  # e.g. no code-switch rate when the tiny model answers nothing
                assert b[key] is None, (a["arm"], key)
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["arm"], key)
