"""The corpus stage of ``ltk build-langpack``: sources -> clean, deduplicated, English-mixed shards.

Flow (``build_corpus``):
  1. check every source is reachable (before any work); ``--dry-run`` stops here and reports the plan;
  2. read the sources once into numbered input shards (``<work>/input/<task>.parquet``);
  3. the per-document datatrove steps (:mod:`ltk.corpus.executor`): normalise -> language ID -> quality
     filters -> exact key + MinHash signature -> token count. A killed build resumes: datatrove skips the
     tasks it marked complete, and the input shards are reused;
  4. the whole-corpus step (:mod:`ltk.corpus.selection`): held-out split, exact + near dedup (held-out
     first), token budget, English mix by tokens, seeded shuffle;
  5. shards + manifest written into a temporary folder, renamed to ``corpus/`` when complete.

Why the dedup is not a datatrove stage: datatrove's MinHash dedup is four stages of bucket files meant for
billions of documents. A langpack corpus (0.5B tokens is about 1M documents) fits one LSH index in memory,
and a single ordered pass is what makes "held-out wins, first copy wins" deterministic.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.io import check_writable, json_text, library_versions, remove_stale_temps, sha256_file, staged_dir
from ltk.langpack.load import Langpack
from ltk.layout import BuildLayout
from ltk.log import progress as log_progress

ROWS_PER_SHARD = 20_000
SHARD_CHARS = 8_000_000  # input characters per datatrove task (more tasks than workers balances load)
COLUMNS = ("text", "lang", "source", "id", "group")
VERSIONED = ("ltk", "datatrove", "pyarrow", "numpy", "pycld2", "transformers", "tokenizers", "datasets")


# ------------------------------------------------------------------------------------------- planning
def corpus_sources(pack: Langpack) -> list[tuple[str, Any]]:
    """(lang, source) for every corpus source: ``target`` first, then ``english``."""
    out = [("target", s) for s in pack.spec.corpus.sources]
    if pack.spec.english.ratio > 0 or pack.spec.english.sources:
        out += [("english", s) for s in pack.spec.english.sources]
    return out


def plan_sources(
    pack: Langpack, *, limit: int | None = None, data_dir: Path | None = None
) -> tuple[list[dict], list[str], list[str]]:
    """Check every source before any work. Returns (plan rows, warnings, errors of required sources)."""
    from ltk.corpus.sources import check_source, source_label

    rows, notes, errors = [], [], []
    for lang, source in corpus_sources(pack):
        caps = [x for x in (limit, source.max_records) if x]
        row = {
            "lang": lang,
            "source": source.name,
            "kind": source.kind,
            "reads": source_label(source),
            "limit": min(caps) if caps else None,
            "licence": source.licence,
        }
        try:
            check_source(source, pack, data_dir)
            row["status"] = "ok"
        except LtkError as err:
            if source.required:
                row["status"] = "UNREACHABLE"
                errors.append(str(err))
            else:
                row["status"] = "skipped"
                notes.append(f"source {source.name!r} skipped (required: false): {str(err).splitlines()[0]}")
        rows.append(row)
    return rows, notes, errors


def fingerprint(pack: Langpack, **settings: Any) -> str:
    """What a finished corpus was built from: a rebuild with the same fingerprint is skipped."""
    from ltk import __version__

    spec = pack.spec
    payload = {
        "corpus": spec.corpus.model_dump(mode="json"),
        "english": spec.english.model_dump(mode="json"),
        "filters": spec.filters.model_dump(mode="json"),
        "ltk": __version__,
        **{k: str(v) for k, v in settings.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- reading
def write_inputs(
    pack: Langpack,
    plan: list[dict],
    work: Path,
    *,
    limit: int | None,
    data_dir: Path | None,
    workers: int,
    progress: bool,
) -> dict:
    """Read every source once into numbered input shards. Reused as is when a killed build resumes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ltk.corpus.sources import ReadStats, iter_records

    done = work / "input" / "inputs.json"
    if done.exists():
        return json.loads(done.read_text())
    rows: dict[str, list] = {k: [] for k in ("idx", "lang", "source", "id", "group", "text")}
    per_source: dict[str, dict] = {}
    skipped = {r["source"] for r in plan if r["status"] != "ok"}
    chars = 0
    for lang, source in corpus_sources(pack):
        if source.name in skipped:
            continue
        stats = ReadStats()
        n = 0
        bar = log_progress(desc=f"read {source.name}", unit="doc", enabled=progress)
        for rec in iter_records(source, pack, limit=limit, data_dir=data_dir, stats=stats):
            rows["idx"].append(len(rows["idx"]))
            rows["lang"].append(lang)
            rows["source"].append(source.name)
            rows["id"].append(rec["id"])
            rows["group"].append(rec.get("group", ""))
            rows["text"].append(rec["text"])
            chars += len(rec["text"])
            n += 1
            bar.update()
        bar.close()
        per_source[source.name] = {"records": n, "skipped": dict(stats.skipped), "files": stats.files}
    total = len(rows["idx"])
    tasks = max(workers, min(256, -(-chars // SHARD_CHARS)), 1)
    info = {"tasks": tasks, "records": total, "chars": chars, "sources": per_source}
    with staged_dir(work / "input") as tmp:
        for rank in range(tasks):
            # Contiguous slices keep each source's records together; the order is restored by idx later.
            lo, hi = rank * total // tasks, (rank + 1) * total // tasks
            pq.write_table(pa.table({k: v[lo:hi] for k, v in rows.items()}), tmp / f"{rank:05d}.parquet")
        (tmp / "inputs.json").write_text(json.dumps(info, sort_keys=True))
    return info


# ------------------------------------------------------------------------------------------- writing
def write_split(docs: dict[str, list], rows: list[int], folder: Path, per_shard: int) -> dict[str, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    chunks = [rows[i : i + per_shard] for i in range(0, len(rows), per_shard)] or [[]]
    for k, chunk in enumerate(chunks):
        path = folder / f"part-{k:05d}.parquet"
        table = pa.table({c: [docs[c][i] for i in chunk] for c in COLUMNS}, schema=schema)
        pq.write_table(table, path, compression="zstd")
        files[f"{folder.name}/{path.name}"] = {"rows": len(chunk), "sha256": sha256_file(path)}
    return files


# ------------------------------------------------------------------------------------------ the stage
@dataclass(frozen=True)
class CorpusJob:
    """One corpus build: what to read, how, and where the work and output go."""

    pack: Langpack
    layout: BuildLayout
    seed: int = 0
    limit: int | None = None
    workers: int = 1
    tokenizer: str | None = None
    data_dir: Path | None = None
    progress: bool = True
    executor: str = "local"
    executor_options: dict | None = None
    tasks: int | None = None

    def fingerprint(self) -> str:
        return fingerprint(
            self.pack,
            seed=self.seed,
            limit=self.limit,
            tokenizer=self.tokenizer,
            data_dir=self.data_dir,
            tasks=self.tasks,
        )


def build_corpus(
    pack: Langpack,
    build_root: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    workers: int = 1,
    dry_run: bool = False,
    tokenizer: str | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    force: bool = False,
    executor: str = "local",
    executor_options: dict | None = None,
    tasks: int | None = None,
) -> dict:
    """Build ``<build_root>/<code>/corpus/`` and return its manifest.

    With ``dry_run``, only the per-source plan is returned (``dry_run: true``). A finished corpus with the
    same settings is reused unless ``force``. Raises LtkError when fewer target documents than
    ``corpus.min_documents`` survive, leaving nothing partial behind.
    """
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more (got {workers})")
    job = CorpusJob(
        pack,
        BuildLayout(Path(build_root), pack.code),
        seed=seed,
        limit=limit,
        workers=workers,
        tokenizer=tokenizer,
        data_dir=data_dir,
        progress=progress,
        executor=executor,
        executor_options=executor_options,
        tasks=tasks,
    )
    plan, notes, errors = plan_sources(pack, limit=limit, data_dir=data_dir)
    if dry_run:
        return {
            "dry_run": True,
            "langpack": pack.code,
            "plan": plan,
            "warnings": notes,
            "errors": errors,
            "out": str(job.layout.dir),
        }
    if errors:
        raise LtkError("\n".join(errors))
    check_writable(job.layout.dir)
    remove_stale_temps(job.layout.dir, "corpus")
    stamp = job.fingerprint()
    manifest_file = job.layout.corpus / "manifest.json"
    if manifest_file.exists() and not force:
        old = json.loads(manifest_file.read_text())
        if old.get("fingerprint") == stamp:
            old["reused"] = True
            return old
    work = job.layout.corpus_work
    if (work / "fingerprint").exists() and (work / "fingerprint").read_text() != stamp:
        shutil.rmtree(work)  # settings changed: a resume would mix two builds
    work.mkdir(parents=True, exist_ok=True)
    (work / "fingerprint").write_text(stamp)
    try:
        return _build(job, plan, notes, stamp)
    except LtkError:
        shutil.rmtree(work, ignore_errors=True)  # a user error: nothing partial left behind
        raise


def _build(job: CorpusJob, plan: list[dict], notes: list[str], stamp: str) -> dict:
    """Steps 2-5 of the module docstring, each timed; returns the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ltk.corpus.executor import read_task_stats, run_steps
    from ltk.corpus.selection import overlap_check, select_documents
    from ltk.corpus.token_count import tokenizer_folder

    pack, work = job.pack, job.layout.corpus_work
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tok_dir, tok_name = tokenizer_folder(job.tokenizer, work)
    timings["tokenizer"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    inputs = write_inputs(
        pack,
        plan,
        work,
        limit=job.limit,
        data_dir=job.data_dir,
        workers=max(job.workers, job.tasks or 1),
        progress=job.progress,
    )
    timings["read sources"] = time.perf_counter() - t0
    for name, info in inputs["sources"].items():
        if info["records"] == 0:
            notes.append(f"source {name!r} is empty: it yielded no records")
        for reason, count in info["skipped"].items():
            notes.append(f"source {name!r}: skipped {count} {reason.replace('_', ' ')}(s)")

    t0 = time.perf_counter()
    run_steps(
        pack,
        work,
        tasks=inputs["tasks"],
        workers=job.workers,
        tokenizer_dir=tok_dir,
        progress=job.progress,
        executor=job.executor,
        executor_options=job.executor_options,
    )
    timings["normalise + langid + filters + minhash + tokens (datatrove)"] = time.perf_counter() - t0
    step_drops = read_task_stats(work)

    t0 = time.perf_counter()
    tables = [pq.read_table(p) for p in sorted((work / "steps").glob("*.parquet"))]
    table = pa.concat_tables(tables).sort_by("idx") if tables else None
    docs = {
        c: (table.column(c).to_pylist() if table is not None else [])
        for c in ("idx", "lang", "source", "id", "group", "text", "key", "sig", "tokens")
    }
    sel = select_documents(docs, pack, job.seed, job.progress)
    timings["dedup + held-out + budget + mix"] = time.perf_counter() - t0

    drops = {lang: Counter(step_drops.get(lang, {})) + sel["drops"][lang] for lang in ("target", "english")}
    n_in = step_drops.get("_in", Counter())
    _check_enough(pack, sel, drops, n_in, notes)

    t0 = time.perf_counter()
    heldout_all = sel["heldout"]["target"] + sel["heldout"]["english"]
    overlap = overlap_check(
        docs, sel["train"], heldout_all, pack.spec.filters.near_dedup, pack.spec.language.script
    )
    if overlap["exact"] or overlap["near"]:
        raise LtkError(f"internal check failed: training overlaps held-out text {overlap}; please report it")
    with staged_dir(job.layout.corpus) as tmp:
        files = write_split(docs, sel["train"], tmp / "train", ROWS_PER_SHARD)
        files.update(write_split(docs, sel["heldout"]["target"], tmp / "heldout_target", ROWS_PER_SHARD))
        files.update(write_split(docs, sel["heldout"]["english"], tmp / "heldout_english", ROWS_PER_SHARD))
        timings["write shards + overlap check"] = time.perf_counter() - t0
        manifest = _manifest(job, stamp, plan, inputs, docs, sel, drops, n_in, overlap, files, notes)
        manifest["tokenizer"] = tok_name
        manifest["seconds"] = {k: round(v, 2) for k, v in timings.items()}
        # CPU-side seconds inside the datatrove tasks, summed over tasks (they overlap with workers > 1).
        manifest["task_seconds_per_step"] = {
            k: round(v, 2) for k, v in step_drops.get("_seconds", {}).items()
        }
        (tmp / "manifest.json").write_text(json_text(manifest))
    shutil.rmtree(work, ignore_errors=True)
    return manifest


def _check_enough(pack: Langpack, sel: dict, drops: dict, n_in: Counter, notes: list[str]) -> None:
    """Fail (nothing written) when fewer target documents than ``corpus.min_documents`` survived."""
    spec = pack.spec
    if sel["target_kept"] >= spec.corpus.min_documents:
        return
    reasons = ", ".join(f"{k}: {v}" for k, v in drops["target"].most_common()) or "none"
    hint = ""
    if drops["target"].get("wrong_language", 0) >= max(1, n_in.get("target", 0) // 2):
        hint = (
            f"\n    most documents were not identified as {spec.language.name} "
            f"({spec.language.flores}): check that the corpus sources really are in that language"
        )
    raise LtkError(
        f"only {sel['target_kept']} {spec.language.name} training documents survived, below "
        f"corpus.min_documents ({spec.corpus.min_documents}) in {pack.file}.\n"
        f"    documents read: {n_in.get('target', 0)}; dropped: {reasons}{hint}\n"
        + "".join(f"    warning: {w}\n" for w in notes)
        + "    nothing was written. fix: add or correct sources, or lower min_documents / filter thresholds"
    )


def _manifest(
    job: CorpusJob,
    stamp: str,
    plan: list[dict],
    inputs: dict,
    docs: dict[str, list],
    sel: dict,
    drops: dict,
    n_in: Counter,
    overlap: dict,
    files: dict,
    notes: list[str],
) -> dict:
    pack, spec, mix, tokens = job.pack, job.pack.spec, sel["mix"], docs["tokens"]
    heldout_all = sel["heldout"]["target"] + sel["heldout"]["english"]
    per_source: dict[str, dict] = {}
    for lang, source in corpus_sources(pack):
        read = inputs["sources"].get(source.name, {})
        per_source[source.name] = {
            "lang": lang,
            "kind": source.kind,
            "licence": source.licence,
            "url": source.url,
            "records_read": read.get("records", 0),
            "skipped_while_reading": read.get("skipped", {}),
            "status": next(r["status"] for r in plan if r["source"] == source.name),
            "train_documents": 0,
            "train_tokens": 0,
            "heldout_documents": 0,
        }
    for i in sel["train"]:
        per_source[docs["source"][i]]["train_documents"] += 1
        per_source[docs["source"][i]]["train_tokens"] += tokens[i]
    for i in heldout_all:
        per_source[docs["source"][i]]["heldout_documents"] += 1
    warnings = list(notes)
    if abs(mix.ratio - spec.english.ratio) > 0.01:
        warnings.append(
            f"English share {mix.ratio:.4f} is more than 1% away from the requested {spec.english.ratio}: "
            f"not enough English text; add English sources"
        )
    return {
        "langpack": pack.code,
        "langpack_version": spec.version,
        "language": spec.language.flores,
        "fingerprint": stamp,
        "seed": job.seed,
        "limit": job.limit,
        "executor": {
            "engine": "datatrove",
            "kind": job.executor,
            "tasks": inputs["tasks"],
            "workers": job.workers,
        },
        "documents": {
            lang: {
                "read": n_in.get(lang, 0),
                "train": sum(1 for i in sel["train"] if docs["lang"][i] == lang),
                "heldout": len(sel["heldout"][lang]),
                "dropped": sum(drops[lang].values()),
            }
            for lang in ("target", "english")
        },
        "drops": {lang: dict(sorted(drops[lang].items())) for lang in drops},
        "tokens": {
            "train": {"target": mix.target_tokens, "english": mix.english_tokens},
            "heldout": {lang: sum(tokens[i] for i in sel["heldout"][lang]) for lang in ("target", "english")},
        },
        "token_budget": {
            "target_budget": spec.corpus.token_budget,
            "target_available": sel["target_tokens_available"],
            "target_used": mix.target_tokens,
            "fraction_of_budget": round(mix.target_tokens / spec.corpus.token_budget, 6),
            "english_available": sel["english_tokens_available"],
        },
        "english_ratio": {
            "requested": spec.english.ratio,
            "achieved": round(mix.ratio, 6),
            "target_trimmed_for_mix": mix.trimmed_target,
        },
        "overlap": overlap,
        "sources": per_source,
        "files": files,
        "versions": library_versions(*VERSIONED),
        "warnings": warnings,
    }


# ------------------------------------------------------------------------------------------- summary
def render_summary(manifest: dict) -> str:
    """A closing table: documents in, drops per reason, tokens kept, achieved mix, time per step."""
    if manifest.get("dry_run"):
        lines = [f"dry run for {manifest['langpack']}: nothing read or written. Would read:"]
        for r in manifest["plan"]:
            cap = f", at most {r['limit']} records" if r["limit"] else ""
            lines.append(f"  [{r['lang']:<7}] {r['source']:<24} {r['status']:<8} {r['reads']}{cap}")
        lines += [f"warning: {w}" for w in manifest.get("warnings", [])]
        lines += [f"error: {e}" for e in manifest.get("errors", [])]
        lines.append(f"output would go to {manifest['out']}/corpus/")
        return "\n".join(lines)
    d, t = manifest["documents"], manifest["tokens"]
    rows = [("", "target", "english")]
    rows.append(("documents read", d["target"]["read"], d["english"]["read"]))
    reasons = sorted(set(manifest["drops"]["target"]) | set(manifest["drops"]["english"]))
    for r in reasons:
        rows.append(
            (f"  dropped: {r}", manifest["drops"]["target"].get(r, 0), manifest["drops"]["english"].get(r, 0))
        )
    rows.append(("documents kept (train)", d["target"]["train"], d["english"]["train"]))
    rows.append(("documents held out", d["target"]["heldout"], d["english"]["heldout"]))
    rows.append(("tokens kept (train)", t["train"]["target"], t["train"]["english"]))
    rows.append(("tokens held out", t["heldout"]["target"], t["heldout"]["english"]))
    w0 = max(len(str(r[0])) for r in rows)
    w1 = max(len(f"{r[1]:,}" if isinstance(r[1], int) else str(r[1])) for r in rows)
    fmt = lambda v: f"{v:,}" if isinstance(v, int) else str(v)  # noqa: E731
    out = [f"{r[0]:<{w0}}  {fmt(r[1]):>{w1}}  {fmt(r[2]):>12}" for r in rows]
    e = manifest["english_ratio"]
    b = manifest["token_budget"]
    o = manifest["overlap"]
    out.append("")
    out.append(f"English share of training tokens: {e['achieved']:.4f} (requested {e['requested']})")
    out.append(
        f"token budget: {b['target_used']:,} of {b['target_budget']:,} target tokens used "
        f"({b['fraction_of_budget']:.1%}); tokenizer {manifest['tokenizer']}"
    )
    out.append(f"train/held-out overlap: {o['exact']} exact, {o['near']} near-duplicate")
    out.append("time per step: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest["seconds"].items()))
    inner = manifest.get("task_seconds_per_step", {})
    if inner:
        out.append("  inside the tasks: " + ", ".join(f"{k} {v:.1f}s" for k, v in inner.items()))
    out += [f"warning: {w}" for w in manifest.get("warnings", [])]
    return "\n".join(out)
