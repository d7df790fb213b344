"""The instruction stage of ``ltk build-langpack``: translated, ready-made and parallel-text instructions,
quality-filtered, split into nested tiers, written as ``messages`` JSONL that ``datasets`` and TRL read.

    read every source (a required source that cannot be read fails before any translation)
    -> translate the English sets, quality-estimate each record (``ltk.translation``)
    -> check the ready-made sets -> hold out eval prompts -> nested tiers -> write

Writes ``<build>/<code>/instructions/``: ``tier-<N>/train.jsonl`` per tier, ``heldout_prompts.jsonl`` (never
in any tier) and ``manifest.json``. The folder is built next to its destination and renamed into place,
so a crash never leaves a half-written stage; translations live in the cache (``<build>/cache``), so a
rerun after a crash resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError
from ltk.instructions.formats import BadRecord, to_messages
from ltk.instructions.from_parallel import parallel_examples
from ltk.instructions.tiers import build_tiers, rank_key
from ltk.io import json_text, library_versions, staged_dir, write_jsonl
from ltk.layout import BuildLayout
from ltk.translation.qe import QualityReport, judge, sampled

log = logging.getLogger(__name__)
ENGLISH = "eng_Latn"
Record = dict[str, Any]
VERSIONED = ("ltk", "transformers", "torch", "sacrebleu", "sentencex", "pycld2", "ctranslate2")


# ---------------------------------------------------------------------------------------------- reading
@dataclass
class Pools:
    """Every record read, by how it becomes training data, with per-source facts and drop counts."""

    english: list[Record] = field(default_factory=list)  # to translate
    ready: list[Record] = field(default_factory=list)  # target-language sets used as they are
    parallel: list[Record] = field(default_factory=list)  # translation requests from parallel text
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)


def _read_instruction_source(
    source: Any, pack: Any, limit: int | None, data_dir: Path | None, counts: Counter
) -> Iterator[Record]:
    """Records of one source as ``{id, source, messages}``; unreadable optional sources are skipped."""
    from ltk.corpus.sources import ReadStats, check_source, iter_records

    try:
        check_source(source, pack, data_dir)
    except LtkError as err:
        if source.required:
            raise
        log.warning("skipping optional source %r: %s", source.name, err)
        counts[f"{source.name}:unreachable"] += 1
        return
    stats = ReadStats()
    for record in iter_records(source, pack, limit=limit, data_dir=data_dir, stats=stats):
        try:
            messages = to_messages(record, source.records)  # field_map already applied by the reader
        except BadRecord as bad:
            counts[bad.reason] += 1
            continue
        yield {"id": f"{source.name}:{record['id']}", "source": source.name, "messages": messages}
    for reason, n in stats.skipped.items():
        counts["malformed" if reason == "missing_text" else reason] += n


def _read_parallel(pack: Any, layout: BuildLayout, name: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from ltk.corpus.parallel import build_parallel_sets

    path = layout.parallel_set(name)
    if not path.exists():
        build_parallel_sets(pack, layout.root)
    if not path.exists():
        raise LtkError(f"parallel set {name!r} was not written to {path}")
    return pq.read_table(path, columns=["id", "target", "english"]).to_pylist()


def _licence_of(pack: Any, entry: Any) -> str:
    if getattr(entry, "licence", None):
        return entry.licence
    wanted = getattr(entry, "source", None)
    spec = pack.spec
    candidates = [*spec.corpus.sources, *spec.english.sources]
    candidates += [side for p in spec.parallel for side in (p.target, p.english)]
    for source in candidates:
        if getattr(source, "name", None) == wanted and getattr(source, "licence", None):
            return source.licence
    return "unknown"


def read_pools(
    pack: Any, layout: BuildLayout, *, seed: int, limit: int | None, data_dir: Path | None
) -> Pools:
    """Step 1: read everything; English records are deduplicated."""
    spec = pack.spec.instructions
    language = pack.spec.language
    pools = Pools()
    counts = pools.counts
    for kind, sources, pool in (
        ("translate", spec.translate, pools.english),
        ("ready_made", spec.ready_made, pools.ready),
    ):
        for source in sources:
            before = Counter(counts)
            rows = list(_read_instruction_source(source, pack, limit, data_dir, counts))
            pool.extend(rows)
            pools.sources[source.name] = {
                "kind": kind,
                "licence": source.licence,
                "read": len(rows),
                "skipped": dict(counts - before),
            }
    psets = {p.name: p for p in pack.spec.parallel}
    for gen in spec.from_parallel:
        pairs = _read_parallel(pack, layout, gen.parallel)
        caps = [x for x in (gen.max_examples, limit) if x is not None]
        rows, skipped = parallel_examples(
            pairs,
            set_name=gen.parallel,
            directions=list(gen.directions),
            language_name=language.name,
            flores=language.flores,
            seed=seed,
            max_examples=min(caps) if caps else None,
        )
        counts.update(skipped)
        pools.parallel.extend(rows)
        pset = psets[gen.parallel]
        licences = sorted({_licence_of(pack, pset.target), _licence_of(pack, pset.english)})
        pools.sources[f"parallel:{gen.parallel}"] = {
            "kind": "from_parallel",
            "licence": " + ".join(licences),
            "read": len(rows),
            "skipped": dict(skipped),
        }
    pools.english = dedupe(pools.english, counts)
    return pools


def dedupe(records: list[Record], counts: Counter) -> list[Record]:
    """First record of each id and of each content; later copies counted as ``duplicate``."""
    seen_ids: set[str] = set()
    seen_content: set[str] = set()
    out = []
    for r in records:
        content = json.dumps(r["messages"], ensure_ascii=False, sort_keys=True)
        if r["id"] in seen_ids or content in seen_content:
            counts["duplicate"] += 1
            continue
        seen_ids.add(r["id"])
        seen_content.add(content)
        out.append(r)
    return out


def _joined(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


# ------------------------------------------------------------------------------------------ translation
@dataclass
class TranslationSettings:
    """How the English sets are translated (command-line choices over the langpack's)."""

    model: str | None = None  # overrides instructions.model
    backend: str = "transformers"
    device: str | None = None
    dtype: str = "auto"
    batch_tokens: int | None = None


@dataclass
class Translated:
    """Translated records that passed quality estimation, their English originals, and the facts."""

    kept: list[Record] = field(default_factory=list)
    originals: dict[str, Record] = field(default_factory=dict)
    quality: QualityReport = field(default_factory=QualityReport)
    info: dict[str, Any] | None = None  # the manifest's ``translation`` block
    run: dict[str, Any] = field(default_factory=dict)  # speed and cache statistics
    rank: int = 0


def translate_pool(
    pack: Any,
    layout: BuildLayout,
    english: list[Record],
    how: TranslationSettings,
    *,
    seed: int,
    counts: Counter,
    progress: bool,
) -> Translated:
    """Step 2: translate every English record (cache first), round-trip a sample, judge each record."""
    from ltk.assets import resolve_model
    from ltk.translation import (
        NLLB_LICENCE,
        TranslationCache,
        back_translate,
        distributed_rank,
        load_engine,
        translate_conversations,
    )

    out = Translated()
    if not english:  # e.g. the ny pack builds from parallel text with no model at all
        return out
    spec = pack.spec.instructions
    tgt = pack.spec.language.flores
    thresholds = spec.quality
    model = how.model or spec.model
    engine = load_engine(
        resolve_model(model),
        how.backend,
        device=how.device,
        dtype=how.dtype,
        cache_dir=layout.cache,
        languages=(ENGLISH, tgt),
    )
    rank, _, _ = distributed_rank()
    tcache = TranslationCache(layout.cache / "translations", writer=f"rank{rank}")
    results, forward = translate_conversations(
        engine,
        [r["messages"] for r in english],
        ENGLISH,
        tgt,
        cache=tcache,
        batch_tokens=how.batch_tokens,
        progress=progress,
    )
    checked = [i for i, r in enumerate(english) if sampled(r["id"], thresholds.roundtrip_sample, seed)]
    back_texts, back = back_translate(
        engine,
        [results[i] for i in checked],
        forward,
        ENGLISH,
        tgt,
        cache=tcache,
        batch_tokens=how.batch_tokens,
        progress=progress,
    )
    tcache.close()
    out.rank = rank
    out.run = {"forward": forward.stats.as_dict(), "roundtrip": back.stats.as_dict()}
    if rank != 0:  # other ranks only fill the shared cache; rank 0 writes the outputs
        return out
    iso = pack.spec.language.iso639_1 or pack.spec.language.iso639_3
    roundtrip = dict(zip(checked, back_texts, strict=True))
    for i, (record, result) in enumerate(zip(english, results, strict=True)):
        verdict = judge(
            _joined(record["messages"]),
            _joined(result.messages),
            thresholds=thresholds,
            target_iso=iso,
            lost_spans=result.lost_spans,
            roundtrip=roundtrip.get(i),
        )
        out.quality.add(verdict)
        if verdict.keep:
            out.kept.append({"id": record["id"], "source": record["source"], "messages": result.messages})
            out.originals[record["id"]] = {
                "id": f"{record['id']}:en",
                "source": record["source"],
                "messages": record["messages"],
            }
        else:
            counts[verdict.reason] += 1
    out.info = {
        "model": model,
        "model_key": engine.model_key,
        "backend": how.backend,
        "dtype": engine.precision,
        "settings": json.loads(engine.settings.key()),
        "licence": NLLB_LICENCE,
        "segments": forward.stats.segments,
        "distinct_segments": forward.stats.distinct,
        "roundtrip_records": len(checked),
    }
    return out


def check_ready_made(pack: Any, ready: list[Record], counts: Counter) -> tuple[list[Record], QualityReport]:
    """Step 3: ready-made target-language records through the same checks (language, repetition, ...)."""
    thresholds = pack.spec.instructions.quality
    iso = pack.spec.language.iso639_1 or pack.spec.language.iso639_3
    report = QualityReport()
    kept = []
    for record in dedupe(ready, counts):
        verdict = judge("", _joined(record["messages"]), thresholds=thresholds, target_iso=iso)
        report.add(verdict)
        if verdict.keep:
            kept.append(record)
        else:
            counts[verdict.reason] += 1
    return kept, report


def hold_out_prompts(pack: Any, candidates: list[Record], parallel: list[Record], seed: int) -> list[Record]:
    """Step 4: target-language prompts for evaluation, chosen by a seeded rank and never trained on."""
    pool = list(candidates)
    if len(pool) < pack.spec.eval.prompts:
        pool = pool + [r for r in parallel if r.get("direction") == "to_target"]
    by_rank = sorted(pool, key=lambda r: rank_key(seed, "heldout:" + r["id"]))
    return by_rank[: pack.spec.eval.prompts]


# ---------------------------------------------------------------------------------------------- the stage
def build_instructions(
    pack: Any,
    build_root: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    translation_model: str | None = None,
    device: str | None = None,
    backend: str = "transformers",
    dtype: str = "auto",
    batch_tokens: int | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Build ``<build_root>/<code>/instructions/`` and return its manifest (with ``run`` statistics).

    ``limit`` caps records read per source (and examples per parallel direction); ``translation_model``
    overrides ``instructions.model`` of the langpack.
    """
    layout = BuildLayout(Path(build_root), pack.code)
    spec = pack.spec.instructions
    pools = read_pools(pack, layout, seed=seed, limit=limit, data_dir=data_dir)
    counts = pools.counts
    how = TranslationSettings(translation_model, backend, device, dtype, batch_tokens)
    translated = translate_pool(pack, layout, pools.english, how, seed=seed, counts=counts, progress=progress)
    if translated.rank != 0:
        return {"rank": translated.rank, "translation": translated.run.get("forward")}
    kept_ready, ready_quality = check_ready_made(pack, pools.ready, counts)
    parallel = dedupe(pools.parallel, counts)

    heldout = hold_out_prompts(pack, translated.kept + kept_ready, parallel, seed)
    heldout_ids = {r["id"] for r in heldout}
    trainable = [r for r in translated.kept + kept_ready + parallel if r["id"] not in heldout_ids]
    if not trainable:
        raise LtkError(
            f"no instruction examples for {pack.code}: every source was empty, unreachable or filtered out"
            f"\n    fix: check instructions.* in {pack.file} (counts: {dict(counts)})"
        )
    tiers = build_tiers(
        trainable,
        spec.tiers,
        seed=seed,
        english_originals={k: v for k, v in translated.originals.items() if k not in heldout_ids},
        bilingual_ratio=spec.bilingual_ratio,
    )

    with staged_dir(layout.instructions) as tmp:
        tier_info = []
        for tier in tiers:
            rows = [{"messages": r["messages"], "id": r["id"], "source": r["source"]} for r in tier.rows]
            info = write_jsonl(tmp / tier.name / "train.jsonl", rows)
            tier_info.append(
                {
                    "name": tier.name,
                    "requested": tier.requested,
                    "path": f"{tier.name}/train.jsonl",
                    "target_rows": tier.target_rows,
                    "english_rows": tier.english_rows,
                    **info,
                }
            )
        held_info = write_jsonl(
            tmp / "heldout_prompts.jsonl", [{"id": r["id"], "messages": r["messages"]} for r in heldout]
        )
        licences = [
            {"what": name, "licence": info["licence"]} for name, info in sorted(pools.sources.items())
        ]
        if translated.info:
            licences.append(
                {"what": f"translations by {translated.info['model']}", "licence": translated.info["licence"]}
            )
        manifest = {
            "stage": "instructions",
            "langpack": pack.code,
            "langpack_version": pack.spec.version,
            "language": pack.spec.language.flores,
            "seed": seed,
            "limit": limit,
            "sources": pools.sources,
            "counts": {
                "translated_kept": len(translated.kept),
                "ready_made_kept": len(kept_ready),
                "from_parallel": len(parallel),
                "heldout_prompts": len(heldout),
                "trainable": len(trainable),
            },
            "dropped": dict(sorted(counts.items())),
            "translation": translated.info,
            "quality": {
                "translated": translated.quality.as_dict(),
                "ready_made": ready_quality.as_dict(),
                "thresholds": spec.quality.__dict__,
            },
            "bilingual_ratio": spec.bilingual_ratio,
            "tiers": tier_info,
            "heldout_prompts": {"path": "heldout_prompts.jsonl", **held_info},
            "licences": licences,
            "versions": library_versions(*VERSIONED, python=True),
        }
        (tmp / "manifest.json").write_text(json_text(manifest), encoding="utf-8")
    return {**manifest, "run": translated.run}


def format_summary(manifest: dict[str, Any], run: dict[str, Any] | None = None) -> str:
    lines = [f"instructions for {manifest['langpack']} ({manifest['language']}):"]
    for key, value in manifest["counts"].items():
        lines.append(f"  {key:<18} {value:>9,}")
    if manifest["dropped"]:
        lines.append("  dropped: " + ", ".join(f"{k} {v:,}" for k, v in manifest["dropped"].items()))
    for tier in manifest["tiers"]:
        extra = f" (+{tier['english_rows']:,} English)" if tier["english_rows"] else ""
        lines.append(f"  {tier['name']:<18} {tier['target_rows']:>9,} rows{extra}")
    if run and run.get("forward"):
        f = run["forward"]
        lines.append(
            f"  translation: {f['distinct']:,} distinct of {f['segments']:,} segments, {f['cached']:,} cached, "
            f"{f['translated']:,} translated in {f['seconds']:.1f}s"
        )
    return "\n".join(lines)
