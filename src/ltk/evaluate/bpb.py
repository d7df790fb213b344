"""Bits per byte: sum of token negative log-likelihoods (nats) / (ln 2 * UTF-8 bytes of the text).

Unlike perplexity it does not depend on the tokenizer, so a model with an extended vocabulary compares
fairly with its base. Token-level perplexity is reported beside it, as the study did.

Method: each document is encoded on its own, prefixed with the tokenizer's BOS token (EOS when there is
no BOS) so that the first text token is scored too. Long documents are scored with a sliding window of
``context_length`` tokens moved by ``stride``: every token is scored exactly once, with at least
``context_length - stride`` tokens of context once the window slides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

from ltk.log import progress

DEFAULT_CONTEXT = 1024
DEFAULT_STRIDE = 512


def document_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of one document, with the BOS/EOS prefix that lets the first token be scored."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start documents with")
    return [prefix, *ids]


def window_spans(n_ids: int, context_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) per window: the window feeds ids[begin:end] and scores the targets at
    positions first_scored..end-1 (a target t is predicted from ids[begin:t]). Windows end ``stride``
    tokens apart, so each target is scored once with at least ``context_length - stride`` tokens before it."""
    if context_length < 2 or not 1 <= stride < context_length:
        raise ValueError(
            f"need context_length >= 2 and 1 <= stride < context_length (got {context_length}, {stride})"
        )
    spans: list[tuple[int, int, int]] = []
    if n_ids < 2:
        return spans
    first, end = 1, min(context_length, n_ids)  # position 0 is the BOS prefix: never a target
    while True:
        spans.append((max(0, end - context_length), end, first))
        if end >= n_ids:
            return spans
        first, end = end, min(end + stride, n_ids)


def document_nll(model: Any, ids: list[int], context_length: int, stride: int) -> tuple[float, int]:
    """Sum of NLL (nats) over the document's scored tokens, and how many tokens were scored."""
    import torch

    device = next(model.parameters()).device
    total = 0.0
    count = 0
    for begin, end, first in window_spans(len(ids), context_length, stride):
        window = torch.tensor([ids[begin:end]], device=device)
        with torch.no_grad():
            logits = model(input_ids=window, use_cache=False).logits[0].float()
        # logits[i] predicts ids[begin + i + 1]; keep the predictions of targets first..end-1.
        pred = logits[first - begin - 1 : end - begin - 1]
        targets = window[0, first - begin : end - begin]
        nll = torch.nn.functional.cross_entropy(pred, targets, reduction="sum")
        total += float(nll)
        count += end - first
    return total, count


def bpb_intervals(items: list[dict[str, Any]]) -> dict[str, Any]:
    """95% intervals of bits per byte and token perplexity: bootstrap over documents (a document's
    tokens are not independent of each other, so the document is the unit)."""
    import numpy as np

    from ltk.evaluate import uncertainty as u

    n = len(items)
    bpb = u.bootstrap_interval([[i["nll"], i["bytes"]] for i in items], u.bpb_statistic)
    ppl = u.bootstrap_interval([[i["nll"], i["tokens"]] for i in items], lambda s: np.exp(s[:, 0] / s[:, 1]))
    return {
        "bits_per_byte": u.record(bpb, method="bootstrap percentile", unit="documents", n=n),
        "token_perplexity": u.record(ppl, method="bootstrap percentile", unit="documents", n=n),
    }


def bits_per_byte(
    model: Any,
    tokenizer: Any,
    texts: Iterable[str],
    *,
    context_length: int | None = None,
    stride: int | None = None,
    desc: str = "bits per byte",
) -> dict[str, Any]:
    """Bits per byte and token perplexity of ``model`` over ``texts``, with the method stated."""
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("no text to score")
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None) or DEFAULT_CONTEXT
    context_length = min(context_length or DEFAULT_CONTEXT, max_pos)
    context_length = max(2, context_length)
    stride = min(stride or max(1, context_length // 2), context_length - 1)
    was_training = getattr(model, "training", False)
    model.eval()
    items: list[dict[str, Any]] = []  # one per scored document: what the intervals resample
    try:
        for text in progress(texts, desc=desc, unit="doc"):
            ids = document_ids(tokenizer, text)
            if len(ids) < 2:
                continue
            doc_nll, doc_tokens = document_nll(model, ids, context_length, stride)
            data = text.encode("utf-8")
            items.append(
                {
                    "id": hashlib.sha256(data).hexdigest()[:16],
                    "nll": doc_nll,
                    "tokens": doc_tokens,
                    "bytes": len(data),
                }
            )
    finally:
        if was_training:
            model.train()
    nll = sum(i["nll"] for i in items)
    tokens = sum(i["tokens"] for i in items)
    n_bytes = sum(i["bytes"] for i in items)
    if n_bytes == 0:
        raise ValueError("no document produced any token to score")
    return {
        "bits_per_byte": nll / (math.log(2) * n_bytes),
        "token_perplexity": math.exp(nll / tokens),
        "nll_nats": nll,
        "tokens": tokens,
        "bytes": n_bytes,
        "documents": len(texts),
        "intervals": bpb_intervals(items),
        "items": items,
        "method": {
            "formula": "sum token NLL (nats) / (ln 2 * UTF-8 bytes); perplexity = exp(NLL / tokens)",
            "context_length": context_length,
            "stride": stride,
            "document_prefix": "bos" if tokenizer.bos_token_id is not None else "eos",
            "documents_scored_separately": True,
        },
    }
