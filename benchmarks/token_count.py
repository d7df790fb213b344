"""Token counting for the corpus budget: ltk's TokenCounter vs ``Tokenizer.encode_batch``, same run.

Both count the tokens of the same documents (Chichewa + English Bible chapters from the ny langpack's
packages) with SmolLM2's tokenizer (the embedded default), on one core (TOKENIZERS_PARALLELISM=false,
as in the corpus stage's worker processes). The counts must be identical; the script fails otherwise.

    python benchmarks/token_count.py [--mb 10]

Writes benchmarks/results/token_count.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=256, help="documents per call (the corpus step's)")
    args = parser.parse_args()

    from corpus_stage import make_corpus
    from tokenizers import Tokenizer

    from ltk.corpus.normalize import normalize_text
    from ltk.corpus.token_count import TokenCounter, tokenizer_folder

    texts = [normalize_text(t) for _, t in make_corpus(args.mb)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        folder, name = tokenizer_folder(None, Path(tmp))
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]

        t0 = time.perf_counter()
        naive = [len(e.ids) for b in batches for e in tok.encode_batch(b, add_special_tokens=False)]
        naive_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        counter = TokenCounter(folder)  # construction (reading tokenizer.json) is part of ltk's cost
        ours = [n for b in batches for n in counter.counts(b)]
        ltk_s = time.perf_counter() - t0
    if ours != naive:
        raise SystemExit("token counts differ from encode_batch: the fast path is wrong")

    result = {
        "date": str(date.today()),
        "machine": f"{os.cpu_count()}-core CPU, {platform.machine()}, Python {sys.version.split()[0]}",
        "load_average_at_end": os.getloadavg()[0],
        "tokenizer": name,
        "fast_path": counter.fast,
        "input_mb": round(mb, 2),
        "documents": len(texts),
        "tokens": sum(ours),
        "naive_encode_batch": {"seconds": round(naive_s, 2), "mb_per_s": round(mb / naive_s, 2)},
        "ltk_token_counter": {"seconds": round(ltk_s, 2), "mb_per_s": round(mb / ltk_s, 2)},
        "speedup": round(naive_s / ltk_s, 2),
        "counts_identical": True,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "token_count.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Token counting (corpus token budget)",
        "",
        f"{result['date']}, {result['machine']}, one core; {mb:.1f} MB of Chichewa + English Bible "
        f"chapters ({len(texts):,} documents, {sum(ours):,} tokens), tokenizer {name}; load average at end "
        f"{result['load_average_at_end']:.1f}. `python benchmarks/token_count.py`",
        "",
        "| way | seconds | MB/s | ratio |",
        "|---|---:|---:|---:|",
        f"| naive: `Tokenizer.encode_batch`, batches of {args.batch} | {naive_s:.2f} | {mb / naive_s:.2f} | 1.0x |",
        f"| ltk `TokenCounter` (regex pieces, each distinct piece counted once) | {ltk_s:.2f} | "
        f"{mb / ltk_s:.2f} | {naive_s / ltk_s:.2f}x |",
        "",
        "Counts are identical document by document (checked in the run).",
    ]
    (RESULTS / "token_count.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
