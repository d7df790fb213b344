"""Reading the build outputs a recipe points at: the corpus parquet parts (``text``) and a tier's jsonl
(``messages``). Only the columns training needs are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.recipe.schema import Recipe


def load_corpus(recipe: Recipe, files: list[Path]) -> Any:
    """The stage-1 corpus as a ``datasets.Dataset`` with one ``text`` column, English mixed in if needed."""
    import datasets

    from ltk.train.mix import mix_tables, read_text_table
    from ltk.train.preflight import parquet_files

    table = read_text_table(files)
    english = recipe.ltk.english
    if not english.premixed and english.ratio > 0:
        table = mix_tables(
            table, read_text_table(parquet_files(english.data or "")), english.ratio, seed=recipe.seed
        )
    return datasets.Dataset(table)


def load_messages(path: str | Path) -> Any:
    """A tier's ``train.jsonl`` as a ``datasets.Dataset`` with one ``messages`` column (checked)."""
    import datasets

    path = Path(path)
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}: line {n}: not JSON ({exc.msg})") from None
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise UsageError(f"{path}: line {n}: needs a non-empty 'messages' list")
            if not any(m.get("role") == "assistant" for m in messages):
                raise UsageError(f"{path}: line {n}: has no assistant turn to learn from")
            rows.append([{"role": m["role"], "content": m["content"]} for m in messages])
    if not rows:
        raise UsageError(f"{path}: no examples")
    return datasets.Dataset.from_dict({"messages": rows})
