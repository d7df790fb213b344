"""Parallel sets: aligned target/English pairs for evaluation (chrF) and translation instructions.

Pairs are joined on record id (``align: id``, e.g. Bible verses ``GEN.1.1``) or on row position
(``align: index``, e.g. FLORES). Bible-style ids are verified chapter by chapter: when the two sides
number a chapter's verses differently (versification differs between translations), the whole chapter
is dropped, because a verse-for-verse join there would pair different sentences. Every drop is counted.
Pairs are split into held-out/train with the corpus's held-out rule, so held-out books never appear in
training pairs.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.io import atomic_target, atomic_write_json, sha256_file
from ltk.langpack.load import Langpack
from ltk.langpack.schema import RefSource
from ltk.layout import BuildLayout

_VERSE_ID = re.compile(r"^([1-3A-Z]{3})\.(\d+)\.(\d+)$")


def all_named_sources(pack: Langpack) -> dict[str, Any]:
    spec = pack.spec
    named = {}
    for s in [
        *spec.corpus.sources,
        *spec.english.sources,
        *spec.instructions.translate,
        *spec.instructions.ready_made,
    ]:
        named[s.name] = s
    for p in spec.parallel:
        for side in (p.target, p.english):
            if not isinstance(side, RefSource):
                named[side.name] = side
    for side in [*spec.eval.target, *spec.eval.english]:
        if not isinstance(side, RefSource):
            named[side.name] = side
    return named


def resolve_source(pack: Langpack, entry: Any) -> Any:
    if isinstance(entry, RefSource):
        named = all_named_sources(pack)
        if entry.source not in named:
            raise UsageError(f"{pack.file}: parallel source refers to unknown source {entry.source!r}")
        return named[entry.source]
    return entry


def align_pairs(target: list[dict], english: list[dict], how: str) -> tuple[list[dict], Counter]:
    """Join two record lists; returns pairs ``{id, target, english, group}`` and drop counts."""
    from ltk.corpus.normalize import normalize_text

    drops: Counter = Counter()
    pairs: list[dict] = []
    if how == "index":
        for t, e in zip(target, english, strict=False):
            pairs.append(
                {"id": t["id"], "target": t["text"], "english": e["text"], "group": t.get("group", "")}
            )
        if len(target) != len(english):
            drops["unpaired_rows"] += abs(len(target) - len(english))
    else:
        eng = {}
        for e in english:
            if e["id"] in eng:
                drops["duplicate_id"] += 1
            eng[e["id"]] = e
        tgt_ids = set()
        for t in target:
            if t["id"] in tgt_ids:
                drops["duplicate_id"] += 1
                continue
            tgt_ids.add(t["id"])
            e = eng.get(t["id"])
            if e is None:
                drops["missing_in_english"] += 1
                continue
            pairs.append(
                {"id": t["id"], "target": t["text"], "english": e["text"], "group": t.get("group", "")}
            )
        drops["missing_in_target"] += sum(1 for i in eng if i not in tgt_ids)
        pairs, bad = _check_versification(pairs, target, english)
        drops.update(bad)
    kept = []
    for p in pairs:
        p["target"], p["english"] = normalize_text(p["target"]), normalize_text(p["english"])
        if not p["target"] or not p["english"]:
            drops["empty_text"] += 1
            continue
        kept.append(p)
    return kept, Counter({k: v for k, v in drops.items() if v})


def _check_versification(
    pairs: list[dict], target: list[dict], english: list[dict]
) -> tuple[list[dict], Counter]:
    """Drop every pair of a chapter whose verse count differs between the two sides."""

    def counts(records: list[dict]) -> Counter:
        c: Counter = Counter()
        for r in records:
            m = _VERSE_ID.match(r["id"])
            if m:
                c[(m.group(1), m.group(2))] += 1
        return c

    t_counts, e_counts = counts(target), counts(english)
    if not t_counts:
        return pairs, Counter()
    mismatched = {ch for ch in t_counts.keys() | e_counts.keys() if t_counts.get(ch) != e_counts.get(ch)}
    kept, drops = [], Counter()
    for p in pairs:
        m = _VERSE_ID.match(p["id"])
        if m and (m.group(1), m.group(2)) in mismatched:
            drops["verse_count_mismatch"] += 1
        else:
            kept.append(p)
    return kept, drops


def heldout_of(pack: Langpack, pairs: list[dict]) -> list[bool]:
    """The corpus's held-out rule (whole groups, else a hashed fraction of ids)."""
    from ltk.corpus.selection import heldout_mask

    return heldout_mask([p["id"] for p in pairs], [p["group"] for p in pairs], pack.spec.corpus.heldout)


def build_parallel_sets(
    pack: Langpack,
    build_root: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    data_dir: Path | None = None,
    names: list[str] | None = None,
) -> dict:
    """Write ``<build_root>/<code>/parallel/<set>.parquet`` (columns id, target, english, group) and
    ``manifest.json``; returns the manifest."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ltk.corpus.sources import ReadStats, check_source, iter_records

    layout = BuildLayout(Path(build_root), pack.code)
    folder = layout.parallel
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"langpack": pack.code, "seed": seed, "limit": limit, "sets": {}}
    for pset in pack.spec.parallel:
        if names and pset.name not in names:
            continue
        sides = {}
        for side in ("target", "english"):
            source = resolve_source(pack, getattr(pset, side))
            try:
                check_source(source, pack, data_dir)
            except Exception:
                if source.required:
                    raise
                sides = None
                break
            stats = ReadStats()
            # --limit caps the pairs below, not the records read: reading a prefix would miss held-out groups.
            sides[side] = list(iter_records(source, pack, data_dir=data_dir, stats=stats))
        if sides is None:
            manifest["sets"][pset.name] = {"skipped": "a source is unreachable (required: false)"}
            continue
        pairs, drops = align_pairs(sides["target"], sides["english"], pset.align)
        held = heldout_of(pack, pairs)
        if pset.split != "all":
            want = pset.split == "heldout"
            n_before = len(pairs)
            pairs = [p for p, h in zip(pairs, held, strict=True) if h == want]
            drops[f"not_in_{pset.split}_split"] += n_before - len(pairs)
        cap = min(x for x in (pset.max_pairs, limit) if x) if (pset.max_pairs or limit) else None
        if cap and len(pairs) > cap:
            pick = sorted(np.random.default_rng([seed, 7]).permutation(len(pairs))[:cap].tolist())
            drops["over_max_pairs"] += len(pairs) - len(pick)
            pairs = [pairs[i] for i in pick]
        dest = layout.parallel_set(pset.name)
        cols = {c: [p[c] for p in pairs] for c in ("id", "target", "english", "group")}
        with atomic_target(dest) as tmp:
            schema = pa.schema([(c, pa.string()) for c in cols])
            pq.write_table(pa.table(cols, schema=schema), tmp, compression="zstd")
        groups = defaultdict(int)
        for p in pairs:
            groups[p["group"]] += 1
        manifest["sets"][pset.name] = {
            "pairs": len(pairs),
            "align": pset.align,
            "split": pset.split,
            "target_records": len(sides["target"]),
            "english_records": len(sides["english"]),
            "drops": dict(sorted(drops.items())),
            "groups": len(groups),
            "file": dest.name,
            "sha256": sha256_file(dest),
        }
    atomic_write_json(folder / "manifest.json", manifest)
    return manifest
