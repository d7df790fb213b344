"""Vocabulary extension (an option; the study keeps the base vocabulary at small budgets).

A BPE tokenizer of the base's own kind is trained on target-language corpus text; its pieces are taken in the
order it learnt them, and for each new piece the base segmentation of that piece is rebuilt by merges
appended after all base merges (left to right, adding the intermediate pieces), until ``extend_size`` pieces
are added. The base segmentation is thus kept and only then refined into the new pieces. New embedding
rows start as the mean of the embeddings of the base pieces they replace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ltk.errors import LtkError


def _merge_pair(merge: Any) -> tuple[str, str]:
    if isinstance(merge, str):
        a, b = merge.split(" ", 1)
        return a, b
    return merge[0], merge[1]


def extend_tokenizer(base_tokenizer: Any, texts: Iterable[str], extend_size: int) -> tuple[Any, list[int]]:
    """A copy of ``base_tokenizer`` with up to ``extend_size`` new BPE pieces; returns it and the new ids."""
    from tokenizers import Tokenizer

    state = json.loads(base_tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model.get("type") != "BPE":
        raise LtkError(f"vocabulary extension supports BPE tokenizers only (this one is {model.get('type')})")
    vocab: dict[str, int] = model["vocab"]
    base_size = len(base_tokenizer)
    base_bpe = base_tokenizer.backend_tokenizer.model
    trained = base_tokenizer.train_new_from_iterator(texts, vocab_size=base_size + extend_size)
    new_merges = json.loads(trained.backend_tokenizer.to_str())["model"]["merges"]
    merges_as_lists = bool(model["merges"]) and not isinstance(model["merges"][0], str)
    known_merges = {_merge_pair(m) for m in model["merges"]}
    next_id = max(max(vocab.values()) + 1, base_size)
    added: list[str] = []
    for merge in new_merges:  # candidates in the order the target-language tokenizer learnt them
        piece = "".join(_merge_pair(merge))
        if piece in vocab:
            continue
        # Chain merges over the base segmentation of the piece, left to right: after every base merge has
        # applied, the word is exactly these parts, so the appended merges rebuild the new piece.
        parts = [t.value for t in base_bpe.tokenize(piece)]
        chain, current = [], parts[0]
        for part in parts[1:]:
            chain.append((current, part))
            current += part
        missing = [a + b for a, b in chain if a + b not in vocab]
        if len(added) + len(missing) > extend_size:
            break
        for a, b in chain:
            if a + b not in vocab:
                vocab[a + b] = next_id
                next_id += 1
                added.append(a + b)
            if (a, b) not in known_merges:
                known_merges.add((a, b))
                model["merges"].append([a, b] if merges_as_lists else f"{a} {b}")
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(json.dumps(state))
    extended = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=base_tokenizer.bos_token,
        eos_token=base_tokenizer.eos_token,
        unk_token=base_tokenizer.unk_token,
        pad_token=base_tokenizer.pad_token,
        additional_special_tokens=list(getattr(base_tokenizer, "additional_special_tokens", []) or []),
    )
    extended.chat_template = base_tokenizer.chat_template
    new_ids = [vocab[p] for p in added]
    return extended, new_ids


def init_new_embeddings(model: Any, base_tokenizer: Any, new_tokenizer: Any, new_ids: list[int]) -> None:
    """Resize the model to the new vocabulary; each new row = mean of its base sub-token rows."""
    import torch

    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    inp = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tied = out is None or out.weight is inp
    with torch.no_grad():
        for new_id in new_ids:
            text = new_tokenizer.decode([new_id])
            parts = base_tokenizer(text, add_special_tokens=False)["input_ids"] or [
                base_tokenizer.eos_token_id
            ]
            inp[new_id] = inp[parts].mean(dim=0)
            if not tied:
                out.weight[new_id] = out.weight[parts].mean(dim=0)


def corpus_texts(files: list[Path], limit: int, *, lang: str = "target") -> list[str]:
    """Up to ``limit`` target-language documents of the corpus (all rows when there is no lang column)."""
    import pyarrow.parquet as pq

    texts: list[str] = []
    for f in files:
        names = pq.read_schema(f).names
        table = pq.read_table(f, columns=[c for c in ("text", "lang") if c in names])
        rows = table.to_pydict()
        for i, text in enumerate(rows["text"]):
            if "lang" in rows and rows["lang"][i] != lang:
                continue
            texts.append(text)
            if len(texts) >= limit:
                return texts
    return texts
