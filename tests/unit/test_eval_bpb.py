"""Bits per byte against a value computed independently, token by token, from the model's logits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ltk.evaluate.bpb import bits_per_byte, window_spans

TEXT = "Mulungu ndi wabwino. God is good. Tiyeni tipite ku sukulu — café!"


@pytest.mark.parametrize(
    ("n", "context", "stride"), [(2, 4, 1), (10, 4, 2), (11, 5, 4), (37, 8, 3), (5, 64, 32)]
)
def test_windows_score_every_token_once_with_enough_context(n: int, context: int, stride: int) -> None:
    spans = window_spans(n, context, stride)
    scored = [t for _, end, first in spans for t in range(first, end)]
    assert scored == list(range(1, n))
    for begin, end, first in spans:
        assert end - begin <= context and begin < first
        if begin > 0:
            assert first - begin >= context - stride


def test_bad_stride_is_refused() -> None:
    with pytest.raises(ValueError, match="stride"):
        window_spans(10, 4, 4)


def expected_bpb(model, tok, text: str, context: int, stride: int) -> float:
    """Independent computation: each target token t is scored from the window that covers it, found by
    walking window ends (context, context+stride, ...); one forward pass per token, log_softmax by hand."""
    import torch

    ids = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
    ids += tok(text, add_special_tokens=False)["input_ids"]
    total = 0.0
    for t in range(1, len(ids)):
        end = context
        while end <= t:
            end += stride
        begin = max(0, min(end, len(ids)) - context)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[begin:t]])).logits[0, -1].double()
        total -= torch.log_softmax(logits, dim=-1)[ids[t]].item()
    return total / (math.log(2) * len(text.encode("utf-8")))


@pytest.mark.parametrize(("context", "stride"), [(512, 256), (8, 3)])
def test_bits_per_byte_equals_hand_computed_value(tiny_llama_dir: Path, context: int, stride: int) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    got = bits_per_byte(model, tok, [TEXT], context_length=context, stride=stride)
    assert got["bytes"] == len(TEXT.encode("utf-8")) == 68  # 65 characters; "—" takes 3 bytes, "é" 2
    assert got["tokens"] == len(tok(TEXT, add_special_tokens=False)["input_ids"])
    assert got["bits_per_byte"] == pytest.approx(expected_bpb(model, tok, TEXT, context, stride), rel=1e-5)
    assert got["token_perplexity"] == pytest.approx(math.exp(got["nll_nats"] / got["tokens"]))
    assert got["method"]["context_length"] == context and got["method"]["stride"] == stride


def test_two_documents_sum_nll_and_bytes(tiny_llama_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    a, b = bits_per_byte(model, tok, ["Moni dziko"]), bits_per_byte(model, tok, ["Hello world"])
    both = bits_per_byte(model, tok, ["Moni dziko", "Hello world"])
    assert both["nll_nats"] == pytest.approx(a["nll_nats"] + b["nll_nats"])
    assert both["bytes"] == a["bytes"] + b["bytes"] == 21
