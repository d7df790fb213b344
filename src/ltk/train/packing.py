"""Wrapped packing with document boundaries kept.

TRL's ``packing_strategy="wrapped"`` concatenates documents and cuts rows of exactly ``max_length``, but it
records no boundaries: attention then crosses from one document into the next. Here every document ends
with EOS, rows are cut the same wrapped way (no token wasted), and each row keeps the lengths of the
document pieces it holds (``seq_lengths``). The collator turns them into ``position_ids`` that restart at
every document and sends no attention mask, so transformers builds a block-diagonal causal mask per row
(``find_packed_sequence_indices``) and each token sees only its own document. The first token of every
piece gets no loss (it would be predicted from another document).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def pack_token_lists(docs: list[list[int]], eos_id: int, seq_len: int) -> dict[str, list[list[int]]]:
    """Concatenate ``docs`` (each followed by EOS) and cut rows of ``seq_len`` tokens.

    Returns ``input_ids`` rows and, per row, ``seq_lengths``: the lengths of the document pieces in it.
    The last row may be shorter (the collator pads it).
    """
    rows: list[list[int]] = []
    lengths: list[list[int]] = []
    row: list[int] = []
    pieces: list[int] = []
    for doc in docs:
        tokens = list(doc)
        if not tokens or tokens[-1] != eos_id:
            tokens.append(eos_id)
        start = 0
        while start < len(tokens):
            take = min(seq_len - len(row), len(tokens) - start)
            row.extend(tokens[start : start + take])
            pieces.append(take)
            start += take
            if len(row) == seq_len:
                rows.append(row)
                lengths.append(pieces)
                row, pieces = [], []
    if row:
        rows.append(row)
        lengths.append(pieces)
    return {"input_ids": rows, "seq_lengths": lengths}


def tokenize_and_pack(
    dataset: Any, tokenizer: Any, seq_len: int, *, batch_size: int = 1000, num_proc: int | None = None
) -> Any:
    """A ``datasets.Dataset`` with ``text`` -> packed rows (``input_ids``, ``seq_lengths``).

    Packing is wrapped within each map batch of ``batch_size`` documents; one short row per batch at most.
    """
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError("the tokenizer has no EOS token; documents cannot be separated")

    def _pack(batch: dict[str, list]) -> dict[str, list]:
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return pack_token_lists(ids, eos_id, seq_len)

    return dataset.map(
        _pack,
        batched=True,
        batch_size=batch_size,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc="Tokenizing and packing",
    )


@dataclass
class PackedCollator:
    """Batches packed rows as [batch, seq_len] with per-document ``position_ids`` and no attention mask."""

    pad_token_id: int
    trace_dir: Path | None = None  # when set, each rank appends a hash of every row it trains on

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        if self.trace_dir is not None:
            self._trace(examples)

        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(examples), width), dtype=torch.long)
        for i, example in enumerate(examples):
            ids = torch.tensor(example["input_ids"], dtype=torch.long)
            n = len(ids)
            input_ids[i, :n] = ids
            labels[i, :n] = ids
            start = 0
            for piece in [*example["seq_lengths"], width - n]:
                if piece <= 0:
                    continue
                position_ids[i, start : start + piece] = torch.arange(piece)
                labels[i, start] = -100  # never predict a document's first token from another document
                start += piece
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}

    def _trace(self, examples: list[dict[str, Any]]) -> None:
        """Audit trail (``LTK_TRACE_BATCHES=1``): which rows each rank saw, to check data sharding."""
        rank = int(os.environ.get("RANK", "0"))
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        rows = [hashlib.sha1(json.dumps(e["input_ids"]).encode()).hexdigest()[:16] for e in examples]
        with (self.trace_dir / f"rank{rank}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"rank": rank, "rows": rows}) + "\n")
