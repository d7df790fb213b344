"""Nested, deterministic instruction tiers (the study's 1k -> 65k -> 950k), capped by what exists.

Every record gets a rank from a hash of (seed, id); tier N is the N best-ranked records, so tier 1k is
a subset of tier 65k by construction, and the same inputs and seed give the same tiers on any machine.
A tier larger than the records available is built once, with all of them, named by its real size.

Records that must be translated first are walked lazily (``select_nested``): the order is fixed before
anything is translated, and only as many records are translated (and quality-checked) as the largest
requested tier needs, refilling what quality estimation drops.
With ``bilingual_ratio`` r, each tier also gets the English originals of its first round(N * r)
translated records (the same prefix rule keeps the English part nested too).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def default_tier(tiers: Sequence[int]) -> int:
    """The tier the rendered recipe trains on, and so the tier a build translates for by default."""
    return tiers[0]


def rank_key(seed: int, record_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{record_id}".encode()).digest()


@dataclass(frozen=True)
class Tier:
    name: str
    requested: int
    rows: list[dict[str, Any]]
    target_rows: int
    english_rows: int


def build_tiers(
    records: Sequence[dict[str, Any]],
    requested: Sequence[int],
    *,
    seed: int = 0,
    english_originals: dict[str, dict[str, Any]] | None = None,
    bilingual_ratio: float = 0.0,
) -> list[Tier]:
    """Tiers from ``records`` (each with a unique ``id``); ``english_originals`` maps id -> English row."""
    ordered = sorted(records, key=lambda r: rank_key(seed, r["id"]))
    english_originals = english_originals or {}
    with_english = [r for r in ordered if r["id"] in english_originals]
    tiers: list[Tier] = []
    for size in sorted(requested):
        n = min(size, len(ordered))
        if n == 0 or (tiers and tiers[-1].target_rows == n):
            continue  # capped: an identical tier adds nothing
        rows = ordered[:n]
        chosen = {r["id"] for r in rows}
        k = round(n * bilingual_ratio)
        english = [english_originals[r["id"]] for r in with_english if r["id"] in chosen][:k]
        # Mix English rows in by their own rank so they are spread through the file, not appended.
        mixed = sorted([*rows, *english], key=lambda r: rank_key(seed, r["id"]))
        tiers.append(Tier(f"tier-{n}", size, mixed, n, len(english)))
    return tiers


# ------------------------------------------------------------------------------ incremental selection
Judge = Callable[[list[dict[str, Any]]], dict[str, "dict[str, Any] | None"]]


@dataclass
class Selection:
    """The outcome of walking a seeded order: survivors in order and how far each tier reached."""

    survivors: list[dict[str, Any]] = field(default_factory=list)
    # tier size -> (records of the order its prefix spans, records there that needed judging, kept of them)
    reach: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    exhausted: bool = False  # the whole order was walked


def select_nested(
    order: Sequence[dict[str, Any]],
    sizes: Sequence[int],
    *,
    needs_judging: Callable[[dict[str, Any]], bool],
    judge: Judge,
    verdicts: dict[str, dict[str, Any] | None],
    free_sizes: Sequence[int] = (),
    min_chunk: int = 16,
) -> Selection:
    """The first ``max(sizes)`` records of ``order`` that survive, judging (translating) as few as possible.

    Records for which ``needs_judging`` is false survive as they are. The others are judged in chunks by
    ``judge`` (id -> the kept record, or None when dropped), whose verdicts are added to ``verdicts`` (shared
    between walks, so a record is never judged twice). Each chunk is sized from the keep rate seen so far,
    so the walk stops just past the largest tier instead of judging the whole pool; a drop is refilled by
    the next chunk. Which records survive depends only on the order and each record's own verdict, never
    on the chunking, so tier N is the same whether built alone, with larger tiers, or grown step by step.

    ``free_sizes`` (larger than ``sizes``) are reached too when that needs no further judging, e.g. for
    packs built only from parallel text.
    """
    out = Selection()
    goal = max(sizes, default=0)
    pos = 0
    judged_in_prefix = kept_in_prefix = 0

    targets = sorted({*sizes, *(s for s in free_sizes if s > goal)})
    last = targets[-1] if targets else 0
    while pos < len(order) and len(out.survivors) < last:
        record = order[pos]
        judged = needs_judging(record)
        if judged and record["id"] not in verdicts:
            if len(out.survivors) >= goal:
                break  # beyond the requested tiers only what needs no judging is taken
            chunk = _next_chunk(order, pos, goal - len(out.survivors), needs_judging, verdicts, min_chunk)
            found = judge(chunk)
            if any(r["id"] not in found for r in chunk):
                raise ValueError("the judge returned no verdict for some records of its chunk")
            verdicts.update(found)
            continue
        pos += 1
        kept = verdicts[record["id"]] if judged else record
        judged_in_prefix += judged
        kept_in_prefix += judged and kept is not None
        if kept is not None:
            out.survivors.append(kept)
            if len(out.survivors) in targets:
                out.reach[len(out.survivors)] = (pos, judged_in_prefix, kept_in_prefix)
    out.exhausted = pos >= len(order)
    out.reach[len(out.survivors)] = (pos, judged_in_prefix, kept_in_prefix)
    return out


def _next_chunk(
    order: Sequence[dict[str, Any]],
    pos: int,
    shortfall: int,
    needs_judging: Callable[[dict[str, Any]], bool],
    verdicts: dict[str, dict[str, Any] | None],
    min_chunk: int,
) -> list[dict[str, Any]]:
    """Unjudged records from ``pos`` on, enough to make up ``shortfall`` survivors at the keep rate seen so
    far (at least ``min_chunk``, so the tail of a walk is not judged a few records at a time)."""
    seen = list(verdicts.values())
    rate = max(sum(v is not None for v in seen) / len(seen), 0.05) if seen else 1.0
    expected, chunk = 0.0, []
    for record in itertools.islice(order, pos, None):
        if expected >= shortfall and len(chunk) >= min_chunk:
            break
        if not needs_judging(record):
            expected += 1
        elif record["id"] in verdicts:
            expected += verdicts[record["id"]] is not None
        else:
            chunk.append(record)
            expected += rate
    return chunk
