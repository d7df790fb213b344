"""Wrapped packing keeps documents apart: EOS between documents, position_ids restarting per document,
no loss across a boundary, and no attention from one document into another (checked on a real model)."""

from __future__ import annotations

from pathlib import Path

from ltk.train.packing import PackedCollator, pack_token_lists


def test_pack_token_lists_wraps_and_records_boundaries() -> None:
    out = pack_token_lists([[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]], eos_id=0, seq_len=4)
    assert out["input_ids"] == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 10], [0]]
    assert out["seq_lengths"] == [[4], [3, 1], [4], [1]]
    # every token kept, each document followed by exactly one EOS
    flat = [t for row in out["input_ids"] for t in row]
    assert flat == [1, 2, 3, 0, 4, 5, 0, 6, 7, 8, 9, 10, 0]


def test_existing_eos_is_not_doubled() -> None:
    assert pack_token_lists([[1, 0], [2]], eos_id=0, seq_len=8)["input_ids"] == [[1, 0, 2, 0]]


def test_collator_positions_and_labels() -> None:
    batch = PackedCollator(pad_token_id=99)(
        [
            {"input_ids": [4, 5, 0, 6], "seq_lengths": [3, 1]},
            {"input_ids": [7, 0], "seq_lengths": [2]},
        ]
    )
    assert batch["input_ids"].tolist() == [[4, 5, 0, 6], [7, 0, 99, 99]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0], [0, 1, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 5, 0, -100], [-100, 0, -100, -100]]
    assert "attention_mask" not in batch  # the mask comes from position_ids: block-diagonal per row


def test_no_attention_across_documents(tiny_llama_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    doc_a, doc_b = [11, 12, 13, 14, 2], [21, 22, 23, 2]
    batch = PackedCollator(pad_token_id=2)([{"input_ids": doc_a + doc_b, "seq_lengths": [5, 4]}])
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits[0]
        alone = model(input_ids=torch.tensor([doc_b]), use_cache=False).logits[0]
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
    assert torch.allclose(packed[5:], alone, atol=1e-5)  # doc B sees nothing of doc A
    assert not torch.allclose(leaky[5:], alone, atol=1e-3)  # without boundaries it would
