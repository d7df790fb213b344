"""`ltk train` on a tiny random LLaMA: both stages, loss logged and falling, only trainable weights change,
resume, vocabulary extension, and bad input stopped before any model loads."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from _train_data import make_recipe, write_build
from click.testing import CliRunner

from ltk.cli import main
from ltk.train.run import train_recipe

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


def _log(run: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run / stage / "log.jsonl").read_text().splitlines()]


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def two_stage_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("two-stage")
    write_build(root)
    # With ltk's evaluation callback (bits per byte at the end of each stage) switched on.
    recipe = make_recipe(root, tiny_llama_dir, **{"ltk.eval.enabled": True, "ltk.eval.max_documents": 4})
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        train_recipe(recipe, stage="all")
    finally:
        mp.undo()
    return root / "runs" / "ny"


@pytest.mark.slow
def test_both_stages_log_loss_and_save(two_stage_run: Path) -> None:
    for stage, steps in (("cpt", 4), ("sft", 3)):
        losses = [e["loss"] for e in _log(two_stage_run, stage) if "loss" in e]
        assert len(losses) == steps and all(0 < x < 20 for x in losses)
        record = json.loads((two_stage_run / stage / "final" / "ltk_stage.json").read_text())
        assert record["global_step"] == steps
        assert record["saved_as"] == "merged"
        assert record["files"]["model.safetensors"]  # sha256 of every output file
    sft = json.loads((two_stage_run / "sft" / "final" / "ltk_stage.json").read_text())
    assert sft["started_from"] == str(two_stage_run / "cpt" / "final")
    assert sft["chat_template"] == "tokenizer_default" and sft["eot_tokens"] == ["<|im_end|>"]
    assert not list(two_stage_run.glob("*/final.tmp-*"))
    assert (two_stage_run / "recipe.yml").is_file()  # the recipe as run, for reports
    for stage in ("cpt", "sft"):  # evaluation callback results
        result = json.loads((two_stage_run / "eval" / f"{stage}.json").read_text())
        assert "bpb" in result["metrics"]


@pytest.mark.slow
def test_only_trainable_weights_changed(two_stage_run: Path, tiny_llama_dir: Path) -> None:
    base = _weights(tiny_llama_dir)
    cpt = _weights(two_stage_run / "cpt" / "final")
    sft = _weights(two_stage_run / "sft" / "final")
    lora_targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert set(cpt) == set(base)
    for name, weight in base.items():
        changed_cpt = not cpt[name].equal(weight)
        if any(t in name for t in lora_targets) or "embed_tokens" in name:
            assert changed_cpt, f"stage 1 should have trained {name}"
        else:  # norms are not trained
            assert not changed_cpt, f"stage 1 changed {name}, which is frozen"
        changed_sft = not sft[name].equal(cpt[name])
        if any(t in name for t in lora_targets):
            assert changed_sft, f"stage 2 should have trained {name}"
        else:  # stage 2 trains LoRA only: embeddings and norms stay as stage 1 left them
            assert not changed_sft, f"stage 2 changed {name}, which is frozen"


@pytest.mark.slow
def test_loss_falls_on_a_repeated_batch_full_finetuning(tmp_path: Path, tiny_llama_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_build(tmp_path)
    corpus = tmp_path / "build" / "ny" / "corpus" / "train" / "part-00000.parquet"
    text = "mwana wa munthu ali ndi moyo ndi mtendere mu nyumba ya mulungu."
    pq.write_table(pa.table({"text": [text] * 8}), corpus)
    recipe = make_recipe(
        tmp_path,
        tiny_llama_dir,
        adapter=None,
        max_steps=6,
        learning_rate=3e-3,
        sequence_len=32,
        micro_batch_size=1,
        **{"ltk.stages.cpt.data": str(corpus.parent)},
    )
    train_recipe(recipe, stage="cpt")
    losses = [e["loss"] for e in _log(tmp_path / "runs" / "ny", "cpt") if "loss" in e]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 1.0, losses
    record = json.loads((tmp_path / "runs" / "ny" / "cpt" / "final" / "ltk_stage.json").read_text())
    assert record["saved_as"] == "full"
    # Full fine-tuning trains everything, norms included.
    base, after = _weights(tiny_llama_dir), _weights(tmp_path / "runs" / "ny" / "cpt" / "final")
    assert all(not after[k].equal(v) for k, v in base.items())


@pytest.mark.slow
def test_resume_continues_from_the_saved_step(
    tmp_path: Path, tiny_llama_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_build(tmp_path)
    recipe = make_recipe(tmp_path, tiny_llama_dir, save_steps=2)
    run = tmp_path / "runs" / "ny" / "cpt"
    train_recipe(recipe, stage="cpt", max_steps=2)
    # A crash after step 2: the checkpoint is there, the final model is not.
    import shutil

    shutil.rmtree(run / "final")
    assert (run / "checkpoint-2").is_dir()
    # Without --resume the unfinished run is refused (nothing overwritten).
    result = CliRunner().invoke(main, ["train", str(recipe), "--stage", "cpt", "--max-steps", "4"])
    assert result.exit_code == 2 and "continue it with --resume" in result.output
    train_recipe(recipe, stage="cpt", max_steps=4, resume=True)
    record = json.loads((run / "final" / "ltk_stage.json").read_text())
    assert record["resumed_from"] == str(run / "checkpoint-2")
    assert record["global_step"] == 4
    steps = [e["step"] for e in _log(tmp_path / "runs" / "ny", "cpt") if "loss" in e]
    assert steps == [1, 2, 3, 4]  # steps 3 and 4 were trained after the resume, none twice
    # A finished stage is skipped on --resume.
    with caplog.at_level(logging.INFO, logger="ltk"):
        train_recipe(recipe, stage="cpt", max_steps=4, resume=True)
    assert "already finished" in caplog.text


def _extended_vocabulary_recipe(tmp_path: Path, tiny_llama_dir: Path, max_steps: int, **overrides) -> Path:
    """A CPT recipe that extends the vocabulary by up to 24 pieces and keeps the adapter unmerged."""
    write_build(tmp_path, docs=64)
    return make_recipe(
        tmp_path,
        tiny_llama_dir,
        max_steps=max_steps,
        **{
            "ltk.vocabulary.policy": "extend",
            "ltk.vocabulary.extend_size": 24,
            "ltk.stages.cpt.merge": False,
            **overrides,
        },
    )


@pytest.mark.slow
def test_vocabulary_extension_trains_only_new_rows_and_lora(tmp_path: Path, tiny_llama_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Embeddings frozen (no lora_modules_to_save): only the new rows train.
    recipe = _extended_vocabulary_recipe(tmp_path, tiny_llama_dir, 3, lora_modules_to_save=[])
    train_recipe(recipe, stage="cpt")
    run = tmp_path / "runs" / "ny"
    vocab = json.loads((run / "tokenizer" / "ltk_vocab.json").read_text())
    new_ids = vocab["new_ids"]
    base_tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    new_tok = AutoTokenizer.from_pretrained(run / "tokenizer")
    assert 0 < len(new_ids) <= 24 and len(new_tok) == len(base_tok) + len(new_ids)
    assert new_ids == list(range(len(base_tok), len(base_tok) + len(new_ids)))
    # The new pieces shorten Chichewa text.
    sample = "mwana munthu mulungu dziko madzi nyumba chikondi mtendere"
    assert len(new_tok(sample)["input_ids"]) < len(base_tok(sample)["input_ids"])
    assert new_tok.decode(new_tok(sample)["input_ids"]) == sample
    english = "The quick brown fox jumps over the lazy dog."
    assert new_tok(english)["input_ids"] == base_tok(english)["input_ids"]  # base segmentation kept

    final = run / "cpt" / "final"
    assert json.loads((final / "ltk_stage.json").read_text())["saved_as"] == "adapter"
    adapter = load_file(str(final / "adapter_model.safetensors"))
    token_deltas = [k for k in adapter if "trainable_tokens" in k]
    assert token_deltas and all(adapter[k].shape[0] == len(new_ids) for k in token_deltas)
    assert any("lora_A" in k for k in adapter)
    assert not any("modules_to_save" in k for k in adapter)  # no whole embedding matrix trained

    # Merged: old rows exactly as the base; new rows moved away from their mean-of-sub-tokens start.
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    old = base.get_input_embeddings().weight.detach().clone()
    base.resize_token_embeddings(len(new_tok), mean_resizing=False)
    merged = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    emb = merged.get_input_embeddings().weight.detach()
    assert torch.equal(emb[: len(base_tok)], old)
    first = new_tok.decode([new_ids[0]])
    parts = base_tok(first, add_special_tokens=False)["input_ids"]
    assert not torch.allclose(emb[new_ids[0]], old[parts].mean(0))
    assert torch.allclose(emb[new_ids[0]], old[parts].mean(0), atol=0.05)  # trained a little, from there


@pytest.mark.slow
def test_extended_vocabulary_with_whole_embeddings_trains_what_a_kept_one_does(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    """With embed_tokens/lm_head in lora_modules_to_save (the ny default), extend and keep train the
    same parameters: the whole (resized) matrices plus LoRA, so the vocabulary ablation is like-for-like."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    recipe = _extended_vocabulary_recipe(tmp_path, tiny_llama_dir, 2)
    train_recipe(recipe, stage="cpt")
    run = tmp_path / "runs" / "ny"
    new_tok = AutoTokenizer.from_pretrained(run / "tokenizer")
    adapter = load_file(str(run / "cpt" / "final" / "adapter_model.safetensors"))
    assert not any("trainable_tokens" in k for k in adapter)
    whole = [k for k in adapter if "modules_to_save" in k or "embed_tokens" in k]
    assert whole and all(adapter[k].shape[0] == len(new_tok) for k in whole if adapter[k].ndim == 2)
    assert any("lora_A" in k for k in adapter)


@pytest.mark.slow
def test_torch_compile_trains_the_same_losses_as_eager(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """``torch_compile: true`` (inductor) on the packed, block-diagonal path: same losses as eager."""
    losses = {}
    for compiled in (False, True):
        root = tmp_path / str(compiled)
        write_build(root)
        recipe = make_recipe(
            root,
            tiny_llama_dir,
            adapter=None,
            max_steps=3,
            torch_compile=compiled,
            bf16=False,  # fp32 both ways: the comparison is about compiling, not rounding
            **{"ltk.stages.cpt.merge": False},
        )
        train_recipe(recipe, stage="cpt")
        losses[compiled] = [e["loss"] for e in _log(root / "runs" / "ny", "cpt") if "loss" in e]
    assert len(losses[True]) == 3
    assert losses[True] == pytest.approx(losses[False], rel=2e-3), losses


def test_bf16_auto_follows_the_cpu_and_trains_close_to_fp32(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """``bf16: auto`` autocasts to bf16 where the CPU multiplies bf16 natively (AMX, AVX512-BF16), fp32
    elsewhere; master weights stay fp32 and the losses stay close to an fp32 run's."""
    import torch

    from ltk.hardware import cpu_has_native_bf16

    losses, records, finals = {}, {}, {}
    for bf16 in ("auto", False):
        root = tmp_path / str(bf16)
        write_build(root)
        recipe = make_recipe(
            root, tiny_llama_dir, adapter=None, max_steps=3, bf16=bf16, **{"ltk.stages.cpt.merge": False}
        )
        train_recipe(recipe, stage="cpt")
        losses[bf16] = [e["loss"] for e in _log(root / "runs" / "ny", "cpt") if "loss" in e]
        finals[bf16] = root / "runs" / "ny" / "cpt" / "final"
        records[bf16] = json.loads((finals[bf16] / "ltk_stage.json").read_text())
    expected = "bf16 autocast" if cpu_has_native_bf16() else "fp32"
    assert records["auto"]["precision"] == expected and records[False]["precision"] == "fp32"
    assert {t.dtype for t in _weights(finals["auto"]).values()} == {torch.float32}
    assert len(losses["auto"]) == 3
    assert losses["auto"] == pytest.approx(losses[False], rel=3e-2), losses
    if expected == "bf16 autocast":
        assert losses["auto"] != losses[False]  # the bf16 run really rounded differently


def test_dry_run_prints_plan_and_loads_nothing(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    recipe = make_recipe(tmp_path, tiny_llama_dir)
    result = CliRunner().invoke(main, ["train", str(recipe), "--dry-run", "--max-steps", "9"])
    assert result.exit_code == 0, result.output
    plan = yaml.safe_load(result.output)
    assert plan["stages"]["cpt"]["max_steps"] == 9 and plan["stages"]["sft"]["max_steps"] == 9
    assert plan["model_config"]["max_position_embeddings"] == 512
    assert list(plan["data_rows"]["cpt"].values()) == [48]
    assert list(plan["data_rows"]["sft"].values()) == [16]
    assert plan["chat_format"] == {
        "chat_template": "tokenizer_default",
        "source": "the base model's own template",
        "eot_tokens": ["<|im_end|>"],
    }
    sft = plan["plan"]["sft"]
    assert sft["budget"]["steps"] == 9 and sft["budget"]["steps_from"] == "max_steps"
    assert "base weights float32" in sft["weights"]
    memory = plan["plan"]["cpt"]["memory_per_device_gib"]
    assert (
        memory["peak_gib"] > memory["weights"] > 0
        and memory["activations"] > memory["activations_checkpointed"]
    )
    assert not (tmp_path / "runs").exists()


def test_dry_run_steps_follow_the_data_and_the_world_size(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_build(tmp_path)  # 16 examples
    recipe = make_recipe(tmp_path, tiny_llama_dir, **{"ltk.stages.sft.max_steps": None})
    one = yaml.safe_load(CliRunner().invoke(main, ["train", str(recipe), "--dry-run"]).output)
    monkeypatch.setenv("WORLD_SIZE", "2")
    two = yaml.safe_load(CliRunner().invoke(main, ["train", str(recipe), "--dry-run"]).output)
    # 16 examples, micro-batch 2, 3 epochs: 24 steps on one process, 12 on two (same examples seen)
    assert one["plan"]["sft"]["budget"]["steps"] == 24 and two["plan"]["sft"]["budget"]["steps"] == 12
    assert one["plan"]["sft"]["budget"]["epochs"] == two["plan"]["sft"]["budget"]["epochs"] == 3.0


def _bad(tmp_path: Path, tiny_llama_dir: Path, *args: str, **overrides) -> str:
    recipe = make_recipe(tmp_path, tiny_llama_dir, **overrides)
    result = CliRunner().invoke(main, ["train", str(recipe), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing half-saved
    return result.output


def test_missing_corpus_is_reported_before_loading(tmp_path: Path, tiny_llama_dir: Path) -> None:
    out = _bad(tmp_path, tiny_llama_dir)  # no build at all
    assert "ltk.stages.cpt.data: no corpus parquet files found" in out
    assert "ltk build-langpack ny --stage corpus" in out
    assert "ltk.stages.sft.data: tier 1000 was not built" in out


def test_tier_not_built_lists_built_tiers(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    out = _bad(tmp_path, tiny_llama_dir, "--tier", "50000")
    assert "tier 50000 was not built" in out and "tiers built: 1000" in out


def test_base_model_not_found_offline(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    out = _bad(tmp_path, tiny_llama_dir, "--base-model", "nobody/no-such-model-xyz")
    assert "base_model: base model not found offline" in out
    out = _bad(tmp_path, tiny_llama_dir, "--base-model", str(tmp_path / "missing-folder"))
    assert "base model folder not found" in out


def test_sequence_len_beyond_the_model(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    out = _bad(tmp_path, tiny_llama_dir, sequence_len=4096)
    assert "sequence_len: longer than the model can take (max_position_embeddings 512)" in out
    assert "(got 4096)" in out


def test_fsdp_or_deepspeed_on_a_cpu_only_machine_is_refused(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """accelerate would drop them silently on CPU (tried: a 2-process FSDP run trained as plain DDP)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only refusal")
    write_build(tmp_path)
    ds = tmp_path / "ds_zero2.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}))
    out = _bad(tmp_path, tiny_llama_dir, fsdp=["full_shard", "auto_wrap"], deepspeed=str(ds))
    assert "fsdp: needs GPUs" in out and "deepspeed: needs GPUs" in out
    assert "silently train plain data parallelism" in out and "remove `fsdp`" in out


def test_sft_alone_needs_stage_one(tmp_path: Path, tiny_llama_dir: Path) -> None:
    write_build(tmp_path)
    out = _bad(tmp_path, tiny_llama_dir, "--stage", "sft")
    assert "stage 2 starts from stage 1, which has not finished" in out
