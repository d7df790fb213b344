"""The real conversion of the embedded SmolLM2-135M GGUF, into a temporary cache, checked against the
GGUF-loaded model: identical weights, logits and greedy generations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ltk import assets

pytestmark = pytest.mark.slow  # one conversion (~30 s) plus one GGUF load (~25 s) on 2 cores


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("ltk-cache")
    old = os.environ.get("LTK_CACHE")
    os.environ["LTK_CACHE"] = str(cache)
    try:
        # A folder left by a killed conversion (dead pid) must be cleaned up, not reused.
        stale = assets.embedded_model_dir().with_name(assets.MODEL_FOLDER + ".tmp-999999999")
        stale.mkdir(parents=True)
        (stale / "model.safetensors").write_bytes(b"half")
        folder = assets.embedded_base_model(progress=False)
        assert not stale.exists()
        return folder
    finally:
        if old is None:
            os.environ.pop("LTK_CACHE")
        else:
            os.environ["LTK_CACHE"] = old


def test_converted_folder_is_complete_and_described(converted: Path) -> None:
    manifest = json.loads((converted / assets.MANIFEST).read_text())
    assert manifest["source"]["sha256"] == assets.GGUF_SHA256
    assert manifest["parameters"] == 134_515_008
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(
        manifest["files"]
    )
    assert assets.is_complete(converted, verify_hashes=True)
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152
    assert not list(converted.parent.glob("*.tmp-*"))


def test_second_call_reuses_the_cache(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTK_CACHE", str(converted.parent.parent))
    mtime = (converted / "model.safetensors").stat().st_mtime_ns
    assert assets.resolve_model("embedded:smollm2-135m") == str(converted)
    assert (converted / "model.safetensors").stat().st_mtime_ns == mtime


def test_converted_model_equals_gguf_model(converted: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = assets.find_gguf()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(converted)
    tok = AutoTokenizer.from_pretrained(converted)
    assert model.dtype == torch.float32
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # still tied

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert tok.decode(ids["input_ids"][0]).startswith("<|im_start|>system")
    with torch.inference_mode():
        ref_logits = reference(**ids).logits
        new_logits = model(**ids).logits
        assert torch.equal(ref_logits, new_logits)
        ref_out = reference.generate(**ids, max_new_tokens=12, do_sample=False)
        new_out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert torch.equal(ref_out, new_out)
    answer = tok.decode(new_out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer  # the instruct model really works after conversion
