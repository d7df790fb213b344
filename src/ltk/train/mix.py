"""English replay for corpora that were not mixed at build time. Needs only pyarrow, so the Axolotl plugin
uses the same function inside Axolotl's environment."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def read_text_table(files: list[Path]) -> pa.Table:
    tables = [pq.read_table(f, columns=["text"]) for f in files]
    return pa.concat_tables(tables) if tables else pa.table({"text": pa.array([], pa.string())})


def mix_english(target: pa.Table, english: pa.Table, ratio: float, *, seed: int = 0) -> pa.Table:
    """Target rows plus English rows so that English is about ``ratio`` of all characters, shuffled.

    Characters stand in for tokens (no tokenizer needed here); the same seed gives the same table.
    """
    if ratio <= 0 or english.num_rows == 0:
        mixed = target
    else:
        target_chars = int(pc.sum(pc.utf8_length(target["text"])).as_py() or 0)
        wanted = target_chars * ratio / (1.0 - ratio)
        lengths = pc.utf8_length(english["text"]).to_pylist()
        order = list(range(english.num_rows))
        random.Random(seed).shuffle(order)
        taken, total = [], 0
        for i in order:  # with too little English, all of it is taken
            if total >= wanted:
                break
            taken.append(i)
            total += lengths[i]
        mixed = pa.concat_tables([target.select(["text"]), english.select(["text"]).take(taken)])
    order = list(range(mixed.num_rows))
    random.Random(seed + 1).shuffle(order)
    return mixed.take(order)


def write_mixed(
    target_files: list[Path], english_files: list[Path], ratio: float, out: Path, *, seed: int = 0
) -> Path:
    """Mix and write one parquet file atomically (used by the Axolotl plugin)."""
    import os

    table = mix_english(read_text_table(target_files), read_text_table(english_files), ratio, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    return out
