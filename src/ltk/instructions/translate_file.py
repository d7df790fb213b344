"""``ltk translate``: a JSONL file of instructions (alpaca, sharegpt or messages records) translated into
``messages`` JSONL with any engine, outside a langpack build. The same engines, cache and batching as the
instruction stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.instructions.formats import BadRecord, detect_kind, to_messages
from ltk.io import atomic_write_jsonl
from ltk.io import cache_dir as default_cache_dir
from ltk.languages import FLORES_RE
from ltk.translation.batching import distributed_rank, translate_conversations
from ltk.translation.cache import TranslationCache
from ltk.translation.engines import GenerationSettings, load_engine


def translate_jsonl(
    input_path: Path,
    output_path: Path,
    *,
    model: str | None = None,
    engine: str = "nllb",
    endpoint: str | None = None,
    concurrency: int = 4,
    retries: int = 4,
    src: str = "eng_Latn",
    tgt: str,
    backend: str = "auto",
    limit: int | None = None,
    batch_tokens: int | None = None,
    cache_dir: Path | None = None,
    device: str | None = None,
    dtype: str = "auto",
    settings: GenerationSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate a JSONL file of instructions (alpaca, sharegpt or messages) into ``messages`` JSONL.

    ``engine`` is the MT family (nllb, m2m100, madlad, marian, llm); ``model`` defaults to its smallest
    released model (llm: required, with ``endpoint``). Bad lines are skipped and counted; the output
    appears only when complete (temp file + rename).
    """
    from ltk.langpack.schema import DEFAULT_ENGINE_MODELS
    from ltk.translation.families import check_family

    check_family(engine)
    model = model or DEFAULT_ENGINE_MODELS.get(engine, "")
    for what, code in (("--src", src), ("--tgt", tgt)):
        if not FLORES_RE.match(code):
            raise UsageError(
                f"{what} {code!r} is not a FLORES-200 code like eng_Latn or swh_Latn"
                "\n    fix: `ltk langpacks codes NAME` finds the code for a language"
            )
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise UsageError(f"input file {input_path} does not exist")
    skipped: dict[str, int] = {}
    records: list[tuple[str, list[dict[str, str]]]] = []
    with input_path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if limit is not None and len(records) >= limit:
                break
            if not line.strip():
                skipped["empty"] = skipped.get("empty", 0) + 1
                continue
            try:
                record = json.loads(line)
                messages = to_messages(record, detect_kind(record))
            except json.JSONDecodeError:
                skipped["malformed"] = skipped.get("malformed", 0) + 1
                continue
            except BadRecord as bad:
                skipped[bad.reason] = skipped.get(bad.reason, 0) + 1
                continue
            rid = record.get("id") if isinstance(record.get("id"), (str, int)) else None
            records.append((str(rid) if rid is not None else f"line-{n}", messages))
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    mt = load_engine(
        model,
        backend,
        family=engine,
        endpoint=endpoint,
        concurrency=concurrency,
        retries=retries,
        settings=settings,
        device=device,
        dtype=dtype,
        cache_dir=cache_root,
        languages=(src, tgt),
    )
    rank, _, _ = distributed_rank()
    cache = TranslationCache(cache_root / "translations", writer=f"rank{rank}")
    try:
        results, translations = translate_conversations(
            mt,
            [m for _, m in records],
            src,
            tgt,
            cache=cache,
            batch_tokens=batch_tokens,
            progress=progress,
        )
    finally:
        cache.close()
    summary = {
        "input": str(input_path),
        "output": str(output_path),
        "records": len(records),
        "skipped": skipped,
        "lost_spans": sum(r.lost_spans for r in results),
        "engine": f"{engine} {mt.name} on {mt.backend} ({mt.precision}); licence {mt.licence}",
        **translations.stats.as_dict(),
    }
    if rank != 0:
        return summary
    rows = (
        {"id": rid, "messages": result.messages} for (rid, _), result in zip(records, results, strict=True)
    )
    atomic_write_jsonl(output_path, rows)
    return summary
