"""Data-parallel training on 2 CPU processes (gloo): each rank sees different rows, the model is saved once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _train_data import make_recipe, write_build


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path: Path, tiny_llama_dir: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    write_build(tmp_path, docs=96)
    recipe = make_recipe(tmp_path, tiny_llama_dir, max_steps=3, save_steps=3)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "LTK_TRACE_BATCHES": "1",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "ltk.train", str(recipe)]
    proc = subprocess.run(
        [*cmd, "--stage", "cpt"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    run = tmp_path / "runs" / "ny" / "cpt"
    seen = {}
    for rank in (0, 1):
        lines = [json.loads(x) for x in (run / "trace" / f"rank{rank}.jsonl").read_text().splitlines()]
        assert len(lines) >= 3  # one micro-batch per step on each rank (the loader may fetch one ahead)
        seen[rank] = {row for line in lines for row in line["rows"]}
    assert seen[0] and seen[1] and not (seen[0] & seen[1])  # different data on each rank

    record = json.loads((run / "final" / "ltk_stage.json").read_text())
    assert record["world_size"] == 2 and record["global_step"] == 3 and record["distributed"] == "MULTI_CPU"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("final")) == ["final"]  # saved once
    logged = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if "loss" in e] == [1, 2, 3]  # logged by rank 0 only


@pytest.mark.slow
def test_two_processes_run_half_the_steps_over_the_same_tokens(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """No step count in the recipe: one epoch over the built corpus, whatever the number of processes."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    write_build(tmp_path, docs=96)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    records = {}
    for procs in (1, 2):
        recipe = make_recipe(
            tmp_path,
            tiny_llama_dir,
            name=f"ny-{procs}.yml",
            max_steps=None,
            save_steps=1000,
            output_dir=str(tmp_path / "runs" / f"p{procs}"),
        )
        cmd = [
            torchrun,
            "--nproc_per_node",
            str(procs),
            "--master_port",
            str(29530 + procs),
            "-m",
            "ltk.train",
        ]
        proc = subprocess.run(
            [*cmd, str(recipe), "--stage", "cpt"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        records[procs] = json.loads(
            (tmp_path / "runs" / f"p{procs}" / "cpt" / "final" / "ltk_stage.json").read_text()
        )
    one, two = records[1], records[2]
    assert one["budget"]["rows"] == two["budget"]["rows"] == one["packed_rows"]  # the same tokens
    assert one["budget"]["epochs"] == two["budget"]["epochs"] == 1.0
    rows = one["packed_rows"]
    assert one["global_step"] == -(-rows // 2) and two["global_step"] == -(-rows // 4)  # micro-batch 2
    assert abs(two["global_step"] * 2 - one["global_step"]) <= 1  # half the optimizer steps
