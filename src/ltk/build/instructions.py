"""The instruction stage of ``ltk build-langpack``: translated, ready-made and parallel-text instructions,
quality-filtered, split into nested tiers, written as ``messages`` JSONL that ``datasets`` and TRL read.

Writes ``<out>/<code>/instructions/``: ``tier-<N>/train.jsonl`` per tier, ``heldout_prompts.jsonl`` (never
in any tier) and ``manifest.json``. The folder is built next to its destination and renamed into place,
so a crash never leaves a half-written stage; translations live in the cache (``<out>/cache``), so a
rerun after a crash resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ltk.build.instruction_formats import BadRecord, to_messages
from ltk.build.qe import QualityReport, judge, sampled
from ltk.build.tiers import build_tiers, rank_key
from ltk.build.translate import (
    NLLB_LICENCE,
    TranslationCache,
    back_translate,
    distributed_rank,
    load_engine,
    translate_conversations,
)
from ltk.errors import LtkError

ENGLISH = "eng_Latn"
Record = dict[str, Any]


@cache
def translation_templates() -> dict[str, Any]:
    import yaml

    text = resources.files("ltk.data").joinpath("translation_templates.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _choice(seed: int, key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{key}".encode()).digest()[:8], "big") % n


def parallel_examples(
    rows: list[dict[str, Any]],
    *,
    set_name: str,
    directions: list[str],
    language_name: str,
    flores: str,
    seed: int = 0,
    max_examples: int | None = None,
) -> tuple[list[Record], Counter]:
    """Translation requests from aligned pairs, in both directions, with varied prompt templates.

    About half the prompts are in English and half in the target language (when templates exist for
    it), so the model learns to follow translation requests phrased either way.
    """
    data = translation_templates()
    native = data.get("languages", {}).get(flores)
    skipped: Counter = Counter()
    out: list[Record] = []
    for direction in directions:
        made = 0
        for row in rows:
            target, english = str(row.get("target") or "").strip(), str(row.get("english") or "").strip()
            if not target or not english:
                skipped["empty_pair"] += 1
                continue
            rid = f"{set_name}:{direction}:{row['id']}"
            use_native = native is not None and _choice(seed, rid + ":lang", 2) == 1
            if use_native:
                names = {"target": native["self"], "english": native["english"]}
                templates = native["templates"]
            else:
                names = {"target": language_name, "english": "English"}
                templates = data["english"]
            template = templates[_choice(seed, rid, len(templates))]
            if direction == "to_target":
                src_name, tgt_name, text, answer = names["english"], names["target"], english, target
            else:
                src_name, tgt_name, text, answer = names["target"], names["english"], target, english
            prompt = template.format(text=text, source=src_name, target=tgt_name)
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            out.append(
                {"id": rid, "source": f"parallel:{set_name}", "messages": messages, "direction": direction}
            )
            made += 1
            if max_examples is not None and made >= max_examples:
                break
    return out, skipped


def _read_parallel(pack: Any, out_dir: Path, name: str) -> list[dict[str, Any]]:
    path = out_dir / pack.code / "parallel" / f"{name}.parquet"
    if not path.exists():
        try:
            from ltk.build.parallel import build_parallel_sets
        except ImportError:
            raise LtkError(
                f"parallel set {name!r} is not built ({path} is missing)\n"
                f"    fix: run `ltk build-langpack {pack.code} --stage corpus` first"
            ) from None
        build_parallel_sets(pack, out_dir)
    if not path.exists():
        raise LtkError(f"parallel set {name!r} was not written to {path}")
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["id", "target", "english"]).to_pylist()


def _read_instruction_source(
    source: Any, pack: Any, limit: int | None, data_dir: Path | None, counts: Counter
) -> Iterator[Record]:
    """Records of one source as ``{id, source, messages}``; unreadable optional sources are skipped."""
    from ltk.build import sources as src_mod

    try:
        src_mod.check_source(source, pack, data_dir)
    except LtkError as err:
        if source.required:
            raise
        warnings.warn(f"skipping optional source {source.name!r}: {err}", stacklevel=2)
        counts[f"{source.name}:unreachable"] += 1
        return
    stats = src_mod.ReadStats()
    for record in src_mod.iter_records(source, pack, limit=limit, data_dir=data_dir, stats=stats):
        try:
            messages = to_messages(record, source.records)  # field_map already applied by the reader
        except BadRecord as bad:
            counts[bad.reason] += 1
            continue
        yield {"id": f"{source.name}:{record['id']}", "source": source.name, "messages": messages}
    for reason, n in stats.skipped.items():
        counts["malformed" if reason == "missing_text" else reason] += n


def _dedupe(records: list[Record], counts: Counter) -> list[Record]:
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


def _resolve_model(name: str) -> str:
    try:  # ltk.assets maps `embedded:...` names; plain ids and paths pass through unchanged
        from ltk.assets import resolve_model
    except ImportError:
        return name
    return resolve_model(name)


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


def _joined(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def _row(record: Record) -> dict[str, Any]:
    return {"messages": record["messages"], "id": record["id"], "source": record["source"]}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False) + "\n"
            fh.write(line)
            digest.update(line.encode("utf-8"))
    return {"rows": len(rows), "sha256": digest.hexdigest()}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("ltk", "transformers", "torch", "sacrebleu", "sentencex", "pycld2", "ctranslate2"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def build_instructions(
    pack: Any,
    out_dir: Path,
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
    """Build ``<out_dir>/<code>/instructions/`` and return its manifest.

    ``out_dir`` is the build root (``build/``); ``limit`` caps records read per source (and examples
    per parallel direction); ``translation_model`` overrides ``instructions.model`` of the langpack.
    """
    out_dir = Path(out_dir)
    spec = pack.spec.instructions
    language = pack.spec.language
    tgt = language.flores
    counts: Counter = Counter()
    source_info: dict[str, dict[str, Any]] = {}

    # 1. Read everything first: a source that cannot be read fails the build before any translation.
    english: list[Record] = []
    for source in spec.translate:
        before = Counter(counts)
        rows = list(_read_instruction_source(source, pack, limit, data_dir, counts))
        english.extend(rows)
        source_info[source.name] = {
            "kind": "translate",
            "licence": source.licence,
            "read": len(rows),
            "skipped": dict(counts - before),
        }
    ready: list[Record] = []
    for source in spec.ready_made:
        before = Counter(counts)
        rows = list(_read_instruction_source(source, pack, limit, data_dir, counts))
        ready.extend(rows)
        source_info[source.name] = {
            "kind": "ready_made",
            "licence": source.licence,
            "read": len(rows),
            "skipped": dict(counts - before),
        }
    parallel: list[Record] = []
    psets = {p.name: p for p in pack.spec.parallel}
    for gen in spec.from_parallel:
        pairs = _read_parallel(pack, out_dir, gen.parallel)
        cap = (
            min(x for x in (gen.max_examples, limit) if x is not None)
            if (gen.max_examples or limit)
            else None
        )
        rows, skipped = parallel_examples(
            pairs,
            set_name=gen.parallel,
            directions=list(gen.directions),
            language_name=language.name,
            flores=tgt,
            seed=seed,
            max_examples=cap,
        )
        counts.update(skipped)
        parallel.extend(rows)
        pset = psets[gen.parallel]
        licences = sorted({_licence_of(pack, pset.target), _licence_of(pack, pset.english)})
        source_info[f"parallel:{gen.parallel}"] = {
            "kind": "from_parallel",
            "licence": " + ".join(licences),
            "read": len(rows),
            "skipped": dict(skipped),
        }
    english = _dedupe(english, counts)

    # 2. Translate (only when there is English to translate: the ny pack builds with no model at all).
    translation: dict[str, Any] | None = None
    run: dict[str, Any] = {}
    translated: list[Record] = []
    originals: dict[str, Record] = {}
    quality = QualityReport()
    thresholds = spec.quality
    iso = language.iso639_1 or language.iso639_3
    if english:
        model = translation_model or spec.model
        engine = load_engine(
            _resolve_model(model),
            backend,
            device=device,
            dtype=dtype,
            cache_dir=out_dir / "cache",
            languages=(ENGLISH, tgt),
        )
        rank, _, _ = distributed_rank()
        tcache = TranslationCache(out_dir / "cache" / "translations", writer=f"rank{rank}")
        convs = [r["messages"] for r in english]
        results, forward = translate_conversations(
            engine, convs, ENGLISH, tgt, cache=tcache, batch_tokens=batch_tokens, progress=progress
        )
        checked = [i for i, r in enumerate(english) if sampled(r["id"], thresholds.roundtrip_sample, seed)]
        back_texts, back = back_translate(
            engine,
            [results[i] for i in checked],
            forward,
            ENGLISH,
            tgt,
            cache=tcache,
            batch_tokens=batch_tokens,
            progress=progress,
        )
        tcache.close()
        if rank != 0:  # other ranks only fill the shared cache; rank 0 writes the outputs
            return {"rank": rank, "translation": forward.stats.as_dict()}
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
            quality.add(verdict)
            if verdict.keep:
                translated.append(
                    {"id": record["id"], "source": record["source"], "messages": result.messages}
                )
                originals[record["id"]] = {
                    "id": f"{record['id']}:en",
                    "source": record["source"],
                    "messages": record["messages"],
                }
            else:
                counts[verdict.reason] += 1
        translation = {
            "model": model,
            "model_key": engine.model_key,
            "backend": backend,
            "dtype": engine.precision,
            "settings": json.loads(engine.settings.key()),
            "licence": NLLB_LICENCE,
            "segments": forward.stats.segments,
            "distinct_segments": forward.stats.distinct,
            "roundtrip_records": len(checked),
        }
        run = {"forward": forward.stats.as_dict(), "roundtrip": back.stats.as_dict()}

    ready_quality = QualityReport()
    kept_ready = []
    for record in _dedupe(ready, counts):
        verdict = judge("", _joined(record["messages"]), thresholds=thresholds, target_iso=iso)
        ready_quality.add(verdict)
        if verdict.keep:
            kept_ready.append(record)
        else:
            counts[verdict.reason] += 1
    parallel = _dedupe(parallel, counts)

    # 3. Hold out eval prompts (target-language user turns), then tiers from the rest.
    pool = translated + kept_ready
    if len(pool) < pack.spec.eval.prompts:
        pool = pool + [r for r in parallel if r.get("direction") == "to_target"]
    by_rank = sorted(pool, key=lambda r: rank_key(seed, "heldout:" + r["id"]))
    heldout = by_rank[: pack.spec.eval.prompts]
    heldout_ids = {r["id"] for r in heldout}
    trainable = [r for r in translated + kept_ready + parallel if r["id"] not in heldout_ids]
    if not trainable:
        raise LtkError(
            f"no instruction examples for {pack.code}: every source was empty, unreachable or filtered out"
            f"\n    fix: check instructions.* in {pack.file} (counts: {dict(counts)})"
        )
    tiers = build_tiers(
        trainable,
        spec.tiers,
        seed=seed,
        english_originals={k: v for k, v in originals.items() if k not in heldout_ids},
        bilingual_ratio=spec.bilingual_ratio,
    )

    # 4. Write into a temporary sibling, then swap it into place.
    dest = out_dir / pack.code / "instructions"
    tmp = dest.with_name(f"instructions.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tier_info = []
    for tier in tiers:
        info = _write_jsonl(tmp / tier.name / "train.jsonl", [_row(r) for r in tier.rows])
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
    held_info = _write_jsonl(
        tmp / "heldout_prompts.jsonl", [{"id": r["id"], "messages": r["messages"]} for r in heldout]
    )
    licences = [{"what": name, "licence": info["licence"]} for name, info in sorted(source_info.items())]
    if translation:
        licences.append({"what": f"translations by {translation['model']}", "licence": NLLB_LICENCE})
    manifest = {
        "stage": "instructions",
        "langpack": pack.code,
        "langpack_version": pack.spec.version,
        "language": tgt,
        "seed": seed,
        "limit": limit,
        "sources": source_info,
        "counts": {
            "translated_kept": len(translated),
            "ready_made_kept": len(kept_ready),
            "from_parallel": len(parallel),
            "heldout_prompts": len(heldout),
            "trainable": len(trainable),
        },
        "dropped": dict(sorted(counts.items())),
        "translation": translation,
        "quality": {
            "translated": quality.as_dict(),
            "ready_made": ready_quality.as_dict(),
            "thresholds": thresholds.__dict__,
        },
        "bilingual_ratio": spec.bilingual_ratio,
        "tiers": tier_info,
        "heldout_prompts": {"path": "heldout_prompts.jsonl", **held_info},
        "licences": licences,
        "versions": _versions(),
    }
    (tmp / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    if dest.exists():
        old = dest.with_name(f"instructions.old-{os.getpid()}")
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(dest)
    if progress:
        print(format_summary(manifest, run), file=sys.stderr)
    return {**manifest, "run": run}


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
