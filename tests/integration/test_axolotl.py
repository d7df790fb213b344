"""A rendered recipe through real Axolotl (0.19, its own venv: .venv-axolotl) on the tiny model, CPU-safe.

The venv is created by tools/setup_axolotl.sh when missing (about 4 minutes and 4.3 GB, once)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from _train_data import make_recipe, write_build

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-axolotl"

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]


@pytest.fixture(scope="module")
def axolotl_venv() -> Path:
    if not (VENV / "bin" / "axolotl").is_file():
        subprocess.run(["bash", str(REPO / "tools" / "setup_axolotl.sh")], check=True, timeout=1800)
    return VENV


def _english_folder(lang_dir: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = lang_dir / "english"
    folder.mkdir()
    texts = [f"In the beginning was the word number {i}, and the word was light." for i in range(40)]
    pq.write_table(pa.table({"text": texts}), folder / "part-00000.parquet")
    return folder


def test_recipe_runs_through_axolotl_with_the_ltk_plugin(
    axolotl_venv: Path, tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from ltk.train.run import train_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lang_dir = write_build(tmp_path)
    # A target-only corpus: the plugin mixes English in (load_datasets), at the recipe's ratio.
    corpus = lang_dir / "corpus" / "train" / "part-00000.parquet"
    table = pq.read_table(corpus)
    target_only = table.filter(
        pq.read_table(corpus, columns=["lang"])["lang"].to_numpy(zero_copy_only=False) == "target"
    )
    pq.write_table(target_only, corpus)
    english = _english_folder(lang_dir)
    recipe = make_recipe(
        tmp_path,
        tiny_llama_dir,
        max_steps=3,
        save_steps=3,
        **{"ltk.english.premixed": False, "ltk.english.data": str(english), "ltk.stages.cpt.merge": False},
    )
    results = train_recipe(recipe, stage="cpt", backend="axolotl")
    run = tmp_path / "runs" / "ny" / "cpt"
    assert results == {"cpt": str(run / "final")}  # the same layout as `ltk train`
    final = run / "final"
    assert (final / "adapter_model.safetensors").is_file() and (final / "adapter_config.json").is_file()
    assert json.loads((final / "ltk_stage.json").read_text())["saved_as"] == "adapter"
    assert (run / "checkpoint-3").is_dir()

    cfg = yaml.safe_load((run / "axolotl.yml").read_text())
    assert cfg["plugins"] == ["ltk_axolotl.LtkPlugin"] and cfg["ltk"]["langpack"] == "ny"
    assert cfg["bf16"] is False and cfg["lora_mlp_kernel"] is False  # CPU-safe keys

    mixed = pq.read_table(run / "ltk-mixed" / "train.parquet")["text"].to_pylist()
    n_english = sum(t.startswith("In the beginning") for t in mixed)
    chars_en = sum(len(t) for t in mixed if t.startswith("In the beginning"))
    # The same selection as at build time: with too little English the target side is trimmed, so the
    # share holds (characters stand in for tokens here).
    assert n_english > 0 and len(mixed) - n_english <= target_only.num_rows
    assert abs(chars_en / sum(len(t) for t in mixed) - 0.25) <= 0.01

    state = yaml.safe_load((run / "checkpoint-3" / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 3 and all(0 < x < 20 for x in losses)


def test_plugin_rejects_unknown_ltk_keys(axolotl_venv: Path, tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    recipe = make_recipe(tmp_path, tiny_llama_dir)
    data = yaml.safe_load(recipe.read_text())
    data["ltk"]["stages"]["cpt"]["merj"] = True
    data["output_dir"] = str(tmp_path / "out")
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(data))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1"}
    env["PATH"] = f"{axolotl_venv / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [str(axolotl_venv / "bin" / "axolotl"), "train", str(bad)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "merj" in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_plain_axolotl_train_runs_a_rendered_recipe_then_stage_two(
    axolotl_venv: Path, tmp_path: Path
) -> None:
    """`axolotl train recipes/ny.yml` as the README says: the embedded base, stage 1 into runs/ny/cpt/final,
    then the stage-2 config the plugin wrote, run with plain axolotl too."""
    from ltk.assets import EMBEDDED_NAME, resolve_model

    resolve_model(EMBEDDED_NAME)  # converted once in ltk's cache; the plugin finds it there
    write_build(tmp_path, examples=8)
    recipe = make_recipe(
        tmp_path,
        Path("unused"),
        base_model=EMBEDDED_NAME,
        output_dir="runs/ny",  # relative, as rendered: the run folder
        max_steps=2,
        save_steps=1000,
        lora_modules_to_save=[],
        micro_batch_size=1,
        **{"ltk.stages.sft.max_steps": 2, "ltk.stages.sft.micro_batch_size": 1},
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{axolotl_venv / 'bin'}{os.pathsep}{env['PATH']}"
    axolotl = str(axolotl_venv / "bin" / "axolotl")
    proc = subprocess.run(
        [axolotl, "train", str(recipe)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "runs" / "ny"
    record = json.loads((run / "cpt" / "final" / "ltk_stage.json").read_text())
    assert record["saved_as"] == "merged" and record["backend"] == "axolotl"
    assert (run / "cpt" / "final" / "model.safetensors").is_file()
    stage2 = run / "sft" / "axolotl.yml"
    assert f"axolotl train {stage2.relative_to(tmp_path)}" in proc.stdout + proc.stderr
    cfg = yaml.safe_load(stage2.read_text())
    assert Path(cfg["base_model"]) == Path("runs/ny/cpt/final")
    assert cfg["datasets"][0]["type"] == "chat_template" and cfg["eot_tokens"] == ["<|im_end|>"]
    proc = subprocess.run(
        [axolotl, "train", str(stage2)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sft = json.loads((run / "sft" / "final" / "ltk_stage.json").read_text())
    assert sft["stage"] == "sft" and sft["saved_as"] == "merged"
