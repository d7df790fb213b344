"""The batching loop every engine shares: each distinct segment translated once, cache first, in
length-sorted batches under a token budget; conversations split into sentences and reassembled.

Speed comes from doing less and doing it in bulk: each distinct segment is translated once, segments are
sorted by length and packed into batches under a token budget (little padding), and every finished batch
is committed to the content-addressed cache (``ltk.translation.cache``). A run killed at any moment loses
at most the batch in flight; rerunning translates only what the cache lacks, so the final output is
identical to an uninterrupted run. Under ``torchrun`` / ``accelerate launch`` each rank translates a
deterministic shard of the missing segments into its own cache file in the shared folder, and rank 0
assembles.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ltk.errors import LtkError
from ltk.translation.cache import TranslationCache
from ltk.translation.engines import Engine

# Token budget per batch (rows x longest row). The float32 transformers engine on CPU is fastest at 2048
# (benchmarks/translation.py, 2-core CPU: 1024 -> 1.04, 2048 -> 1.29, 4096 -> 1.02 segments/s): bigger
# batches spend more on KV-cache copies and on rows that wait for the batch's longest. In bfloat16 the
# same CPU peaks at 4096 (2048 -> 3.47, 4096 -> 3.6-3.8, 8192 -> 2.4-2.6 segments/s).
DEFAULT_BATCH_TOKENS = 4096
CPU_BATCH_TOKENS = 2048
DEFAULT_MAX_BATCH = 128


@dataclass
class TranslationStats:
    segments: int = 0
    distinct: int = 0
    cached: int = 0
    translated: int = 0
    batches: int = 0
    generate_calls: int = 0
    source_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    rank: int = 0
    world_size: int = 1

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments_per_s"] = round(self.translated / self.seconds, 3) if self.seconds else None
        return d


@dataclass
class Translations:
    text: dict[str, str] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)
    stats: TranslationStats = field(default_factory=TranslationStats)


def token_budget_batches(
    lengths: Sequence[int], batch_tokens: int, max_batch: int = DEFAULT_MAX_BATCH
) -> list[list[int]]:
    """Indices grouped into batches, longest first, so that rows x longest row <= batch_tokens.

    Sorting makes rows of a batch nearly equal in length (little padding); longest-first puts the most
    memory-hungry batch first, so an out-of-memory error shows at once rather than hours in.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        if current and ((len(current) + 1) * width > batch_tokens or len(current) >= max_batch):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def default_batch_tokens(engine: Engine) -> int:
    """The token budget for ``engine``: smaller for the float32 transformers engine on CPU (CPU_BATCH_TOKENS)."""
    on_cpu = str(getattr(engine, "device", "cpu")).startswith("cpu")
    fp32 = engine.precision == "float32"
    return CPU_BATCH_TOKENS if engine.backend == "transformers" and on_cpu and fp32 else DEFAULT_BATCH_TOKENS


def distributed_rank() -> tuple[int, int, Any]:
    """(rank, world size, state) under torchrun / accelerate launch; (0, 1, None) in a plain process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    import torch
    from accelerate import PartialState

    # Without cpu=True accelerate treats a CPU-only torchrun as one process (every rank would be rank 0).
    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes, state


def translate_segments(
    engine: Engine,
    segments: Iterable[str],
    src: str,
    tgt: str,
    *,
    cache: TranslationCache,
    batch_tokens: int | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: bool = True,
    desc: str = "translating",
) -> Translations:
    """Translate every distinct segment once (cache first); returns text and ids for each segment."""
    started = time.perf_counter()
    segments = list(segments)
    distinct = sorted(set(segments))
    settings_key = engine.settings.key()
    keys = {s: cache.key(engine.model_key, src, tgt, settings_key, s) for s in distinct}
    found = cache.get_many(keys.values())
    missing = sorted((s for s in distinct if keys[s] not in found), key=lambda s: keys[s])
    rank, world, state = distributed_rank()
    if state is not None:
        # Every rank reads the cache before any rank writes to it: otherwise a fast rank's first commits
        # shrink a slower rank's `missing` list, the shards stop lining up and segments fall between them.
        state.wait_for_everyone()
    shard = missing[rank::world]  # deterministic: ordered by content hash, identical on every rank
    stats = TranslationStats(
        segments=len(segments),
        distinct=len(distinct),
        cached=len(distinct) - len(missing),
        rank=rank,
        world_size=world,
    )
    calls_before = engine.generate_calls
    batch_tokens = batch_tokens or default_batch_tokens(engine)
    if shard:
        encoded = engine.encode(shard, src, tgt)
        batches = token_budget_batches([len(e) for e in encoded], batch_tokens, max_batch)
        bar = _progress(len(shard), desc, progress and rank == 0)
        try:
            for batch in batches:
                rows = [encoded[i] for i in batch]
                limits = [engine.settings.limit(len(r)) for r in rows]
                outputs = engine.generate(rows, tgt, limits)
                cache.put_many(
                    [
                        (keys[shard[i]], engine.model_key, src, tgt, shard[i], engine.decode(out), out)
                        for i, out in zip(batch, outputs, strict=True)
                    ]
                )
                stats.batches += 1
                stats.translated += len(batch)
                stats.source_tokens += sum(len(r) for r in rows)
                stats.output_tokens += sum(len(o) for o in outputs)
                bar.update(len(batch))
        finally:
            bar.close()
    if state is not None:
        state.wait_for_everyone()  # every rank's shard is committed before anyone assembles
    stats.generate_calls = engine.generate_calls - calls_before
    result = Translations(stats=stats)
    found = cache.get_many(keys.values())
    for s in distinct:
        if keys[s] not in found:
            raise LtkError(f"translation of a segment is missing from the cache {cache.folder} after the run")
        result.text[s], result.ids[s] = found[keys[s]]
    stats.seconds = time.perf_counter() - started
    return result


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from ltk.log import progress

    return progress(total=total, desc=desc, unit="seg", enabled=enabled, smoothing=0.1)


# ------------------------------------------------------------------------------ conversations
@dataclass
class TranslatedConversation:
    messages: list[dict[str, str]]
    lost_spans: int
    segmented: list[Any]  # one SegmentedText per message, for the round-trip check


def translate_conversations(
    engine: Engine,
    conversations: Sequence[Sequence[dict[str, str]]],
    src: str,
    tgt: str,
    *,
    cache: TranslationCache,
    batch_tokens: int | None = None,
    progress: bool = True,
) -> tuple[list[TranslatedConversation], Translations]:
    """Translate every message of every conversation, sentence by sentence, keeping structure."""
    from ltk.translation.segment import segment_text, sentencex_language

    lang = sentencex_language(src)
    segmented = [[segment_text(m["content"], lang) for m in conv] for conv in conversations]
    all_segments = [s for conv in segmented for seg in conv for s in seg.segments()]
    translations = translate_segments(
        engine, all_segments, src, tgt, cache=cache, batch_tokens=batch_tokens, progress=progress
    )
    out = []
    for conv, segs in zip(conversations, segmented, strict=True):
        messages, lost = [], 0
        for message, seg in zip(conv, segs, strict=True):
            text, n = seg.reassemble(translations.text)
            lost += n
            messages.append({"role": message["role"], "content": text})
        out.append(TranslatedConversation(messages, lost, segs))
    return out, translations


def back_translate(
    engine: Engine,
    translated: Sequence[TranslatedConversation],
    forward: Translations,
    src: str,
    tgt: str,
    *,
    cache: TranslationCache,
    batch_tokens: int | None = None,
    progress: bool = True,
) -> tuple[list[str], Translations]:
    """Each conversation translated back to ``src`` (masks restored), joined, for round-trip chrF."""
    wanted = {forward.text[s] for conv in translated for seg in conv.segmented for s in seg.segments()}
    wanted.discard("")
    back = translate_segments(
        engine,
        sorted(wanted),
        tgt,
        src,
        cache=cache,
        batch_tokens=batch_tokens,
        progress=progress,
        desc="round trip",
    )
    composed = {s: back.text.get(t, "") for s, t in forward.text.items()}
    texts = ["\n".join(seg.reassemble(composed)[0] for seg in conv.segmented) for conv in translated]
    return texts, back
