"""Nested, deterministic instruction tiers (the study's 1k -> 65k -> 950k), capped by what exists.

Every record gets a rank from a hash of (seed, id); tier N is the N best-ranked records, so tier 1k is
a subset of tier 65k by construction, and the same inputs and seed give the same tiers on any machine.
A tier larger than the records available is built once, with all of them, named by its real size.
With ``bilingual_ratio`` r, each tier also gets the English originals of its first round(N * r)
translated records (the same prefix rule keeps the English part nested too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
