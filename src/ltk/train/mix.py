"""English replay at train time, for corpora that were not mixed at build time (``ltk.english.premixed:
false``): the same selection as the build's (:func:`ltk.corpus.mix.mix_english`), with characters
standing in for tokens because no tokenizer is at hand here. Needs only pyarrow and numpy, so the Axolotl
plugin uses it inside Axolotl's environment."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ltk.corpus.mix import mix_english, seeded_order
from ltk.io import atomic_target


def read_text_table(files: list[Path]) -> pa.Table:
    tables = [pq.read_table(f, columns=["text"]) for f in files]
    return pa.concat_tables(tables) if tables else pa.table({"text": pa.array([], pa.string())})


def mix_tables(target: pa.Table, english: pa.Table, ratio: float, *, seed: int = 0) -> pa.Table:
    """Target rows plus English rows so that English is ``ratio`` of all characters, shuffled.

    English documents are visited in a seeded order; with too little English, the target side is
    trimmed instead (as at build time), so the ratio holds. The same seed gives the same table.
    """
    target, english = target.select(["text"]), english.select(["text"])
    if ratio <= 0 or english.num_rows == 0:  # nothing to mix in: the target as it is, shuffled
        return target.take(seeded_order(target.num_rows, seed, 3))
    target_sizes = pc.utf8_length(target["text"]).to_pylist()
    english_order = seeded_order(english.num_rows, seed, 2)
    english_sizes = pc.utf8_length(english["text"]).take(english_order).to_pylist()
    mix = mix_english(target_sizes, english_sizes, ratio)
    mixed = pa.concat_tables([target.take(mix.target), english.take([english_order[j] for j in mix.english])])
    return mixed.take(seeded_order(mixed.num_rows, seed, 3))


def write_mixed(
    target_files: list[Path], english_files: list[Path], ratio: float, out: Path, *, seed: int = 0
) -> Path:
    """Mix and write one parquet file atomically (used by the Axolotl plugin)."""
    table = mix_tables(read_text_table(target_files), read_text_table(english_files), ratio, seed=seed)
    with atomic_target(out) as tmp:
        pq.write_table(table, tmp)
    return out
