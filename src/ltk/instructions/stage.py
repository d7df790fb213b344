"""The instruction stage of ``ltk build-langpack``: translated, ready-made and parallel-text instructions,
quality-filtered, split into nested tiers, written as ``messages`` JSONL that ``datasets`` and TRL read.

    read every source (a required source that cannot be read fails before any translation)
    -> check the ready-made sets -> hold out eval prompts -> nested tiers -> write, where the English
       records are translated and quality-estimated (``ltk.translation``) lazily, in a seeded order and
       only as far down it as the held-out prompts and the largest requested tier need

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

from ltk.errors import LtkError, UsageError
from ltk.instructions.formats import BadRecord, to_messages
from ltk.instructions.from_parallel import parallel_examples
from ltk.instructions.tiers import build_tiers, default_tier, rank_key, select_nested
from ltk.io import json_text, library_versions, staged_dir, write_jsonl
from ltk.langpack.schema import DEFAULT_ENGINE_MODELS
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
    engine: str | None = None  # overrides instructions.engine
    endpoint: str | None = None  # overrides instructions.endpoint (engine llm)
    backend: str = "auto"
    device: str | None = None
    dtype: str = "auto"
    batch_tokens: int | None = None


class RecordTranslator:
    """Translates English records and judges each one, chunk by chunk: the judge the tier walk calls.

    Every chunk goes through the shared cache, so records translated by an earlier build (or an earlier
    chunk) cost nothing, and a killed build resumes where it stopped. Every rank of a distributed run
    walks the same way (each translates its shard of each chunk); only rank 0 writes.
    """

    def __init__(
        self,
        pack: Any,
        layout: BuildLayout,
        how: TranslationSettings,
        *,
        seed: int,
        counts: Counter,
        progress: bool,
    ):
        from ltk.assets import resolve_model
        from ltk.translation import TranslationCache, distributed_rank, load_engine

        self.seed, self.counts, self.progress, self.how = seed, counts, progress, how
        self.thresholds = pack.spec.instructions.quality
        self.tgt = pack.spec.language.flores
        self.iso = pack.spec.language.iso639_1 or pack.spec.language.iso639_3
        spec = pack.spec.instructions
        self.family = how.engine or spec.engine
        if how.engine and how.engine != spec.engine and not how.model:
            self.model = DEFAULT_ENGINE_MODELS.get(how.engine, "")  # another engine: its own default model
        else:
            self.model = how.model or spec.translation_model
        self.engine = load_engine(
            resolve_model(self.model) if self.family not in ("llm", "marian") else self.model,
            how.backend,
            family=self.family,
            endpoint=how.endpoint or spec.endpoint,
            device=how.device,
            dtype=how.dtype,
            cache_dir=layout.cache,
            languages=(ENGLISH, self.tgt),
        )
        # The langpack's licence for its own engine's model; the family's otherwise (NLLB: CC-BY-NC-4.0).
        same = self.family == spec.engine and self.model == spec.translation_model
        self.licence = (spec.model_licence if same else None) or self.engine.licence
        self.rank, _, _ = distributed_rank()
        self.cache = TranslationCache(layout.cache / "translations", writer=f"rank{self.rank}")
        self.quality = QualityReport()
        self.originals: dict[str, Record] = {}
        self.records = self.rounds = self.segments = self.roundtrip_records = 0
        self.forward: Counter = Counter()
        self.back: Counter = Counter()

    def __call__(self, chunk: list[Record]) -> dict[str, Record | None]:
        from ltk.translation import back_translate, translate_conversations

        self.rounds += 1
        log.info(f"instructions: translating {len(chunk):,} English records (round {self.rounds})")
        results, forward = translate_conversations(
            self.engine,
            [r["messages"] for r in chunk],
            ENGLISH,
            self.tgt,
            cache=self.cache,
            batch_tokens=self.how.batch_tokens,
            progress=self.progress,
        )
        thresholds = self.thresholds
        checked = [i for i, r in enumerate(chunk) if sampled(r["id"], thresholds.roundtrip_sample, self.seed)]
        back_texts, back = back_translate(
            self.engine,
            [results[i] for i in checked],
            forward,
            ENGLISH,
            self.tgt,
            cache=self.cache,
            batch_tokens=self.how.batch_tokens,
            progress=self.progress,
        )
        _add_stats(self.forward, forward.stats.as_dict())
        _add_stats(self.back, back.stats.as_dict())
        self.records += len(chunk)
        self.segments += forward.stats.segments
        self.roundtrip_records += len(checked)
        roundtrip = dict(zip(checked, back_texts, strict=True))
        verdicts: dict[str, Record | None] = {}
        for i, (record, result) in enumerate(zip(chunk, results, strict=True)):
            verdict = judge(
                _joined(record["messages"]),
                _joined(result.messages),
                thresholds=thresholds,
                target_iso=self.iso,
                lost_spans=result.lost_spans,
                roundtrip=roundtrip.get(i),
            )
            self.quality.add(verdict)
            if not verdict.keep:
                verdicts[record["id"]] = None
                self.counts[verdict.reason] += 1
                continue
            verdicts[record["id"]] = {
                "id": record["id"],
                "source": record["source"],
                "messages": result.messages,
            }
            self.originals[record["id"]] = {
                "id": f"{record['id']}:en",
                "source": record["source"],
                "messages": record["messages"],
            }
        return verdicts

    def info(self) -> dict[str, Any]:
        """The manifest's ``translation`` block (deterministic: no timings)."""
        engine = self.engine
        return {
            "engine": self.family,
            "model": self.model,
            "model_key": engine.model_key,
            "backend": engine.backend,
            "dtype": engine.precision,
            "settings": json.loads(engine.settings.key()),
            "licence": self.licence,
            "records": self.records,
            "rounds": self.rounds,
            "segments": self.segments,
            "roundtrip_records": self.roundtrip_records,
        }

    def run(self) -> dict[str, Any]:
        """Speed and cache statistics of this build (not in the manifest: they change between runs)."""
        return {"forward": _totals(self.forward), "roundtrip": _totals(self.back)}

    def close(self) -> None:
        self.cache.close()


_SUMMED = ("segments", "distinct", "cached", "translated", "batches", "generate_calls", "source_tokens",
           "output_tokens", "seconds")  # fmt: skip


def _add_stats(total: Counter, stats: dict[str, Any]) -> None:
    for key in _SUMMED:
        total[key] += stats[key]
    total["rank"], total["world_size"] = stats["rank"], stats["world_size"]


def _totals(total: Counter) -> dict[str, Any]:
    out: dict[str, Any] = {k: total.get(k, 0) for k in (*_SUMMED, "rank", "world_size")}
    out["segments_per_s"] = round(out["translated"] / out["seconds"], 3) if out["seconds"] else None
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
def resolve_max_tier(pack: Any, max_tier: int | str | None) -> int:
    """The largest tier to translate for: a tier of the langpack, "all" (the largest), or by default the
    tier the rendered recipe trains (the first), so a first build makes what the first training uses."""
    tiers = pack.spec.instructions.tiers
    if max_tier is None:
        return default_tier(tiers)
    if max_tier == "all":
        return tiers[-1]
    try:
        value = int(max_tier)
    except (TypeError, ValueError):
        value = -1
    if value not in tiers:
        raise UsageError(
            f"--max-tier {max_tier!r} is not a tier of langpack {pack.code} ({pack.file}: instructions.tiers "
            f"= {tiers})\n    fix: use one of {', '.join(map(str, tiers))} or 'all', or add the tier to "
            "instructions.tiers (and bump version)"
        )
    return value


def _reach(selection: Any, rows: int) -> dict[str, int]:
    _, judged, kept = selection.reach.get(rows, (0, 0, 0))
    return {"translated": judged, "translated_kept": kept, "translated_dropped": judged - kept}


def build_instructions(
    pack: Any,
    build_root: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    translation_model: str | None = None,
    translation_engine: str | None = None,
    endpoint: str | None = None,
    device: str | None = None,
    backend: str = "auto",
    dtype: str = "auto",
    batch_tokens: int | None = None,
    data_dir: Path | None = None,
    max_tier: int | str | None = None,
    progress: bool = True,
) -> dict:
    """Build ``<build_root>/<code>/instructions/`` and return its manifest (with ``run`` statistics).

    ``limit`` caps records read per source (and examples per parallel direction); ``translation_model``
    overrides ``instructions.model`` of the langpack. ``max_tier`` (a tier of the langpack, or "all";
    default: the tier the recipe trains) is the largest tier translated for: English records are
    translated only as far down the seeded order as it needs. A pack with nothing to translate (built
    from parallel or ready-made text only) gets every tier.
    """
    layout = BuildLayout(Path(build_root), pack.code)
    spec = pack.spec.instructions
    goal = resolve_max_tier(pack, max_tier)
    pools = read_pools(pack, layout, seed=seed, limit=limit, data_dir=data_dir)
    counts = pools.counts
    kept_ready, ready_quality = check_ready_made(pack, pools.ready, counts)
    parallel = dedupe(pools.parallel, counts)
    translator = None
    if pools.english:  # e.g. the ny pack builds from parallel text with no model at all
        how = TranslationSettings(
            translation_model, translation_engine, endpoint, backend, device, dtype, batch_tokens
        )
        translator = RecordTranslator(pack, layout, how, seed=seed, counts=counts, progress=progress)
    english_ids = {r["id"] for r in pools.english}

    def needs_translation(record: Record) -> bool:
        return record["id"] in english_ids

    def no_translation(chunk: list[Record]) -> dict[str, Record | None]:
        raise AssertionError("only English records are translated")  # pragma: no cover

    verdicts: dict[str, Record | None] = {}  # English id -> translated record kept, or None (dropped)
    walk = {"needs_judging": needs_translation, "judge": translator or no_translation, "verdicts": verdicts}
    try:
        # Held-out prompts first, by their own seeded order, so they never depend on which tiers are built.
        held_order = sorted([*pools.english, *kept_ready], key=lambda r: rank_key(seed, "heldout:" + r["id"]))
        held = select_nested(held_order, [pack.spec.eval.prompts], **walk)
        heldout = hold_out_prompts(pack, held.survivors, parallel, seed)
        heldout_ids = {r["id"] for r in heldout}
        # Then the tiers: one seeded order over every candidate; tier N = its first N survivors.
        tier_order = sorted(
            (r for r in [*pools.english, *kept_ready, *parallel] if r["id"] not in heldout_ids),
            key=lambda r: rank_key(seed, r["id"]),
        )
        # With nothing to translate every tier is free: build them all (as packs from parallel text did).
        sizes = [t for t in spec.tiers if t <= goal] if pools.english else list(spec.tiers)
        selection = select_nested(tier_order, sizes, **walk)
    finally:
        if translator is not None:
            translator.close()
    run = translator.run() if translator else {}
    if translator is not None and translator.rank != 0:  # other ranks only fill the shared cache
        return {"rank": translator.rank, "translation": run.get("forward")}
    if not selection.survivors:
        raise LtkError(
            f"no instruction examples for {pack.code}: every source was empty, unreachable or filtered out"
            f"\n    fix: check instructions.* in {pack.file} (counts: {dict(counts)})"
        )
    reachable = len(selection.survivors)
    built_sizes = [t for t in spec.tiers if t in sizes or selection.exhausted]
    originals = translator.originals if translator else {}
    tiers = build_tiers(
        selection.survivors,
        built_sizes,
        seed=seed,
        english_originals={k: v for k, v in originals.items() if k not in heldout_ids},
        bilingual_ratio=spec.bilingual_ratio,
    )
    translated_kept = sum(v is not None for v in verdicts.values())

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
                    # English records of the order up to this tier's last row: translated, kept, dropped
                    **_reach(selection, tier.target_rows),
                    **info,
                }
            )
        held_info = write_jsonl(
            tmp / "heldout_prompts.jsonl", [{"id": r["id"], "messages": r["messages"]} for r in heldout]
        )
        licences = [
            {"what": name, "licence": info["licence"]} for name, info in sorted(pools.sources.items())
        ]
        info = translator.info() if translator else None
        if info:
            licences.append({"what": f"translations by {info['model']}", "licence": info["licence"]})
        manifest = {
            "stage": "instructions",
            "langpack": pack.code,
            "langpack_version": pack.spec.version,
            "language": pack.spec.language.flores,
            "seed": seed,
            "limit": limit,
            "sources": pools.sources,
            "counts": {
                "english_pool": len(pools.english),
                "translated": len(verdicts),
                "translated_kept": translated_kept,
                "ready_made_kept": len(kept_ready),
                "from_parallel": len(parallel),
                "heldout_prompts": len(heldout),
                "in_tiers": reachable,
            },
            "dropped": dict(sorted(counts.items())),
            "max_tier": goal,
            "translation": info,
            "quality": {
                "translated": (translator.quality if translator else QualityReport()).as_dict(),
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
    return {**manifest, "run": run}


def format_summary(manifest: dict[str, Any], run: dict[str, Any] | None = None) -> str:
    lines = [f"instructions for {manifest['langpack']} ({manifest['language']}):"]
    for key, value in manifest["counts"].items():
        lines.append(f"  {key:<18} {value:>9,}")
    if manifest["dropped"]:
        lines.append("  dropped: " + ", ".join(f"{k} {v:,}" for k, v in manifest["dropped"].items()))
    for tier in manifest["tiers"]:
        extra = f" (+{tier['english_rows']:,} English)" if tier["english_rows"] else ""
        if tier.get("translated"):
            extra += (
                f"; {tier['translated']:,} translated for it, {tier['translated_kept']:,} kept,"
                f" {tier['translated_dropped']:,} dropped"
            )
        lines.append(f"  {tier['name']:<18} {tier['target_rows']:>9,} rows{extra}")
    if manifest.get("translation"):
        t = manifest["translation"]
        lines.append(
            f"  translated {t['records']:,} of {manifest['counts']['english_pool']:,} English records in"
            f" {t['rounds']} round(s), for tiers up to {manifest['max_tier']:,} (--max-tier grows them)"
        )
    if run and run.get("forward"):
        f = run["forward"]
        lines.append(
            f"  translation: {f['distinct']:,} distinct of {f['segments']:,} segments, {f['cached']:,} cached, "
            f"{f['translated']:,} translated in {f['seconds']:.1f}s"
        )
    return "\n".join(lines)
