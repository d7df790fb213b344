"""NLLB translation: engines (transformers, CTranslate2), a persistent cache, and the batching loop.

transformers 5 removed the translation pipeline, so ltk calls ``generate`` itself: the source language is
set on the tokenizer (it prefixes ``eng_Latn`` and appends ``</s>``) and the target language is forced as
the first generated token (``forced_bos_token_id``).

Speed comes from doing less and doing it in bulk: each distinct segment is translated once, segments are
sorted by length and packed into batches under a token budget (little padding), and every finished batch
is committed to a content-addressed SQLite cache. A run killed at any moment loses at most the batch in
flight; rerunning translates only what the cache lacks, so the final output is identical to an
uninterrupted run. Under ``torchrun`` / ``accelerate launch`` each rank translates a deterministic shard of
the missing segments into its own cache file in the shared folder, and rank 0 assembles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ltk.errors import LtkError, UsageError
from ltk.hardware import cpu_has_native_bf16
from ltk.languages import FLORES_RE

NLLB_LICENCE = "CC-BY-NC-4.0"
# Token budget per batch (rows x longest row). The float32 transformers engine on CPU is fastest at 2048
# (benchmarks/translation.py, 2-core CPU: 1024 -> 1.04, 2048 -> 1.29, 4096 -> 1.02 segments/s): bigger
# batches spend more on KV-cache copies and on rows that wait for the batch's longest. In bfloat16 the
# same CPU peaks at 4096 (2048 -> 3.47, 4096 -> 3.6-3.8, 8192 -> 2.4-2.6 segments/s).
DEFAULT_BATCH_TOKENS = 4096
CPU_BATCH_TOKENS = 2048
DEFAULT_MAX_BATCH = 128
BACKENDS = ("transformers", "ctranslate2")
# Weights' dtype for the transformers engine. "auto": bfloat16 on GPUs that support it (float16 on older
# ones), bfloat16 on CPUs with native bf16 matmuls (AMX / AVX512-BF16: matmuls 2-3x fp32 there, the engine
# ~1.7x, benchmarks/translation.py), float32 elsewhere (emulated bf16 is slower than fp32).
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings; part of the cache key, so changing one re-translates."""

    num_beams: int = 1
    max_new_tokens: int = 256
    # Per-segment cap: ratio * source tokens + 10 (stops NLLB's repetition loops early). None: no cap.
    max_length_ratio: float | None = 3.0
    min_new_tokens: int = 0
    max_input_tokens: int = 512

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def limit(self, source_tokens: int) -> int:
        """How many tokens (target language token included) one segment may produce."""
        cap = self.max_new_tokens
        if self.max_length_ratio is not None:
            cap = min(cap, int(self.max_length_ratio * source_tokens) + 10)
        return max(cap, 2)

    def min_tokens(self, limits: Sequence[int]) -> int:
        """Tokens a batch must generate before it may stop (min_new_tokens >= the limits forces every row
        to decode to its limit: benchmarks use that to give every variant the same work)."""
        return min(self.min_new_tokens, max(limits))


# ------------------------------------------------------------------------------------------------ cache
class TranslationCache:
    """Content-addressed translations in SQLite files under one folder.

    Each writer (one per process/rank) owns ``translations-<writer>.sqlite`` and reads every file of the
    folder, so ranks never contend for a lock and a shared folder works across nodes. Rows are committed
    per batch in one transaction: SQLite's journal makes a SIGKILL lose only the uncommitted batch, and
    the primary key makes a retried batch a no-op (nothing duplicated).
    """

    def __init__(self, folder: Path, writer: str = "main"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"translations-{writer}.sqlite"
        self.conn = sqlite3.connect(self.path, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against process kills
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, model TEXT, src TEXT, tgt TEXT,"
            " source TEXT, output TEXT, ids TEXT) WITHOUT ROWID"
        )
        self.conn.commit()
        self._readers: dict[Path, sqlite3.Connection] = {}

    @staticmethod
    def key(model_key: str, src: str, tgt: str, settings_key: str, text: str) -> str:
        payload = json.dumps([model_key, src, tgt, settings_key, text], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _connections(self) -> list[sqlite3.Connection]:
        for path in sorted(self.folder.glob("translations-*.sqlite")):
            if path != self.path and path not in self._readers:
                self._readers[path] = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        return [self.conn, *self._readers.values()]

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple[str, list[int]]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[str, list[int]]] = {}
        for conn in self._connections():
            missing = [k for k in wanted if k not in found]
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, output, ids FROM translations WHERE key IN ({marks})"  # noqa: S608
                for key, output, ids in conn.execute(query, chunk):
                    found[key] = (output, json.loads(ids))
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, str, str, str, list[int]]]) -> None:
        """Rows of (key, model, src, tgt, source text, output text, output ids), in one transaction."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO translations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*r[:6], json.dumps(r[6])) for r in rows],
            )

    def count(self) -> int:
        return sum(c.execute("SELECT COUNT(*) FROM translations").fetchone()[0] for c in self._connections())

    def close(self) -> None:
        for conn in [self.conn, *self._readers.values()]:
            conn.close()
        self._readers.clear()


# ---------------------------------------------------------------------------------------------- engines
class Engine(Protocol):
    backend: str
    model_key: str
    precision: str  # what the weights compute in: a torch dtype name, or CTranslate2's compute type
    settings: GenerationSettings
    generate_calls: int

    def supported_languages(self) -> list[str]: ...
    def encode(self, texts: Sequence[str], src: str) -> list[list[int]]: ...
    def generate(
        self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]
    ) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


def model_fingerprint(name_or_path: str, revision: str | None = None) -> str:
    """Identity of a model for the cache: hub id + revision, or a content hash of a local folder.

    For a folder, each file contributes its name, size and the sha256 of its first and last MiB: cheap on
    multi-GB weights, and any retrained or re-quantised checkpoint changes it.
    """
    path = Path(name_or_path)
    if not path.is_dir():
        return f"{name_or_path}@{revision or 'main'}"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with file.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return f"local:{digest.hexdigest()[:24]}"


def _load_error(model: str, exc: BaseException) -> LtkError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower()
    hint = (
        "the hub is not reachable (offline): pass a local folder with --model / instructions.model"
        if offline or not Path(model).exists()
        else "check that the folder holds a transformers checkpoint (config.json, tokenizer, weights)"
    )
    return LtkError(f"cannot load translation model {model!r}: {type(exc).__name__}: {exc}\n    fix: {hint}")


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; use one of: {', '.join(DTYPES)}")


def resolve_dtype(dtype: str, device: str) -> str:
    """The concrete dtype for ``dtype`` ("auto" or a name in DTYPES) on ``device``."""
    check_dtype(dtype)
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


class TransformersEngine:
    """NLLB (or any M2M100-style seq2seq model) through ``transformers`` ``generate``.

    The dtype is part of ``model_key`` (a float32 and a bfloat16 translation are cached apart).
    """

    backend = "transformers"

    def __init__(
        self,
        model: str,
        *,
        settings: GenerationSettings | None = None,
        device: str | None = None,
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        self.name = model
        self.settings = settings or GenerationSettings()
        self.generate_calls = 0
        self.tokenizer, config = load_tokenizer_and_config(model, revision, trust_remote_code)
        import torch
        from transformers import AutoModelForSeq2SeqLM

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = self.precision = resolve_dtype(dtype, self.device)
        try:
            self.model = AutoModelForSeq2SeqLM.from_pretrained(
                model,
                revision=revision,
                trust_remote_code=trust_remote_code,
                dtype=getattr(torch, self.dtype),
            )
        except Exception as exc:  # noqa: BLE001 - every loader failure becomes one clear message
            raise _load_error(model, exc) from exc
        self.model.to(self.device).eval()
        commit = getattr(config, "_commit_hash", None)
        base_key = model_fingerprint(model, commit or revision)
        # float32 keeps the bare key, so caches written before dtypes were selectable stay valid.
        self.model_key = base_key if self.dtype == "float32" else f"{base_key}+{self.dtype}"

    def supported_languages(self) -> list[str]:
        return language_tokens(self.tokenizer)

    def encode(self, texts: Sequence[str], src: str) -> list[list[int]]:
        return encode(self.tokenizer, texts, src, self.settings.max_input_tokens)

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                forced_bos_token_id=self.tokenizer.convert_tokens_to_ids(tgt),
                max_new_tokens=max(limits),
                min_new_tokens=self.settings.min_tokens(limits) or None,
                num_beams=self.settings.num_beams,
                do_sample=False,
            )
        self.generate_calls += 1
        eos = self.tokenizer.eos_token_id
        return [_trim(row[1:], eos, pad, limit) for row, limit in zip(out.tolist(), limits, strict=True)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


class CTranslate2Engine:
    """The same model converted to CTranslate2 (int8 on CPU by default): several times faster on CPU.

    The conversion runs once and is kept next to the translation cache, keyed by the model fingerprint.
    """

    backend = "ctranslate2"

    def __init__(
        self,
        model: str,
        *,
        settings: GenerationSettings | None = None,
        device: str | None = None,
        compute_type: str | None = None,
        revision: str | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ):
        try:
            import ctranslate2
        except ImportError:
            raise UsageError(
                "the ctranslate2 backend needs the ctranslate2 package: pip install 'ltk[fast]'"
            ) from None
        self.name = model
        self.settings = settings or GenerationSettings()
        self.generate_calls = 0
        self.decoded_tokens = 0  # tokens decoded over all rows (greedy search): the work actually done
        self.tokenizer, config = load_tokenizer_and_config(model, revision, False)
        if not getattr(config, "is_encoder_decoder", False):
            raise _not_seq2seq(model, config)
        self.device = device or ("cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu")
        self.compute_type = self.precision = compute_type or (
            "int8" if self.device == "cpu" else "int8_float16"
        )
        base_key = model_fingerprint(model, getattr(config, "_commit_hash", None) or revision)
        self.model_key = f"{base_key}+ct2-{self.compute_type}"
        root = (
            Path(cache_dir) if cache_dir else Path(os.environ.get("LTK_CACHE", "~/.cache/ltk")).expanduser()
        )
        folder = root / "ct2" / hashlib.sha256(self.model_key.encode()).hexdigest()[:24]
        if not (folder / "model.bin").exists():
            _convert_ct2(model, folder, revision)
        self.translator = ctranslate2.Translator(
            str(folder),
            device=self.device,
            compute_type=self.compute_type,
            inter_threads=1,
            intra_threads=threads or (os.cpu_count() or 1),
        )

    def supported_languages(self) -> list[str]:
        return language_tokens(self.tokenizer)

    def encode(self, texts: Sequence[str], src: str) -> list[list[int]]:
        return encode(self.tokenizer, texts, src, self.settings.max_input_tokens)

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        tok = self.tokenizer
        source = [tok.convert_ids_to_tokens(list(ids)) for ids in batch]

        def stop_at_own_limit(step: Any) -> bool:
            # CTranslate2 takes a finished row out of the batch. Without this, a row that does not end
            # (a repetition loop) would decode to the batch's largest limit and be cut afterwards.
            self.decoded_tokens += 1
            return step.step + 1 >= limits[step.batch_id]

        greedy = self.settings.num_beams == 1  # CTranslate2 calls back per token in greedy search only
        results = self.translator.translate_batch(
            source,
            target_prefix=[[tgt]] * len(batch),
            beam_size=self.settings.num_beams,
            max_decoding_length=max(limits),
            min_decoding_length=self.settings.min_tokens(limits) or 1,
            max_input_length=0,
            callback=stop_at_own_limit if greedy else None,
        )
        self.generate_calls += 1
        eos, pad = tok.eos_token_id, tok.pad_token_id
        return [
            _trim(tok.convert_tokens_to_ids(r.hypotheses[0]), eos, pad, limit)
            for r, limit in zip(results, limits, strict=True)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


def _convert_ct2(model: str, folder: Path, revision: str | None) -> None:
    import shutil

    from ctranslate2.converters import TransformersConverter

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        TransformersConverter(model, revision=revision).convert(str(tmp), quantization="int8", force=True)
    except Exception as exc:  # noqa: BLE001
        shutil.rmtree(tmp, ignore_errors=True)
        raise LtkError(f"cannot convert {model!r} to CTranslate2: {exc}") from exc
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another rank may have finished the same conversion first
        tmp.rename(folder)
    shutil.rmtree(tmp, ignore_errors=True)


def _trim(ids: Sequence[int], eos: int, pad: int, limit: int) -> list[int]:
    """Generated ids up to (not including) EOS, cut at the segment's own limit.

    Greedy decoding is causal, so cutting a row at its own limit gives exactly what generating it alone
    with that limit gives: the result does not depend on which segments shared its batch.
    """
    out: list[int] = []
    for token in ids[:limit]:
        if token == eos:
            break
        if token != pad:
            out.append(int(token))
    return out


def _not_seq2seq(model: str, config: Any) -> UsageError:
    return UsageError(
        f"{model!r} is a {getattr(config, 'model_type', '?')} model, not a seq2seq translation model"
        "\n    fix: use an NLLB checkpoint such as facebook/nllb-200-distilled-600M (or a local copy of one)"
    )


def load_tokenizer_and_config(model: str, revision: str | None, trust_remote_code: bool) -> tuple[Any, Any]:
    """Tokenizer and config, with every failure turned into a clear error before any work starts."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        raise _load_error(model, exc) from exc
    if not getattr(config, "is_encoder_decoder", False):
        raise _not_seq2seq(model, config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # noqa: BLE001
        raise _load_error(model, exc) from exc
    if not language_tokens(tokenizer):
        raise UsageError(
            f"the tokenizer of {model!r} has no FLORES-200 language tokens (eng_Latn, swh_Latn, ...)"
            "\n    fix: use an NLLB checkpoint"
        )
    return tokenizer, config


def language_tokens(tokenizer: Any) -> list[str]:
    return sorted(t for t in tokenizer.all_special_tokens if FLORES_RE.match(t))


def check_languages(engine: Engine, *codes: str) -> None:
    supported = engine.supported_languages()
    bad = [c for c in codes if c not in supported]
    if bad:
        raise UsageError(
            f"translation model {getattr(engine, 'name', '?')!r} does not support {', '.join(bad)}. "
            f"It supports {len(supported)} codes: {' '.join(supported)}"
            "\n    fix: use one of those FLORES-200 codes (`ltk langpacks codes NAME` finds one by name)"
        )


@dataclass
class _TokenizerOnly:
    name: str
    tokenizer: Any

    def supported_languages(self) -> list[str]:
        return language_tokens(self.tokenizer)


def encode(tokenizer: Any, texts: Sequence[str], src: str, max_tokens: int) -> list[list[int]]:
    tokenizer.src_lang = src  # NLLB tokenizers rebuild their [src_lang] ... </s> template on assignment
    enc = tokenizer(list(texts), truncation=True, max_length=max_tokens)
    return [list(ids) for ids in enc["input_ids"]]


def load_engine(
    model: str,
    backend: str = "transformers",
    *,
    settings: GenerationSettings | None = None,
    device: str | None = None,
    dtype: str = "auto",
    cache_dir: Path | None = None,
    revision: str | None = None,
    languages: Sequence[str] = (),
) -> Engine:
    """The engine for ``backend``; ``languages`` are checked from the tokenizer before weights load.

    ``dtype`` applies to the transformers backend (CTranslate2 picks its own compute type: int8 on CPU).
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")
    check_dtype(dtype)  # before any loading, and before the ctranslate2 check below
    if backend == "ctranslate2" and dtype != "auto":
        raise UsageError(
            f"dtype {dtype!r} applies to the transformers backend; the ctranslate2 backend runs int8 on "
            "CPU and int8_float16 on GPU\n    fix: leave dtype at auto, or use --backend transformers"
        )
    if languages:
        tokenizer, _ = load_tokenizer_and_config(model, revision, False)
        check_languages(_TokenizerOnly(model, tokenizer), *languages)
    if backend == "transformers":
        return TransformersEngine(model, settings=settings, device=device, dtype=dtype, revision=revision)
    if backend == "ctranslate2":
        return CTranslate2Engine(
            model, settings=settings, device=device, cache_dir=cache_dir, revision=revision
        )
    raise UsageError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")


# ------------------------------------------------------------------------------------- batching loop
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
        encoded = engine.encode(shard, src)
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
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seg", disable=not enabled, dynamic_ncols=True, smoothing=0.1)


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
    from ltk.build.segment import segment_text, sentencex_language

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


# ------------------------------------------------------------------------------ `ltk translate`
def default_cache_dir() -> Path:
    return Path(os.environ.get("LTK_CACHE", "~/.cache/ltk")).expanduser()


def translate_jsonl(
    input_path: Path,
    output_path: Path,
    *,
    model: str,
    src: str = "eng_Latn",
    tgt: str,
    backend: str = "transformers",
    limit: int | None = None,
    batch_tokens: int | None = None,
    cache_dir: Path | None = None,
    device: str | None = None,
    dtype: str = "auto",
    settings: GenerationSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Translate a JSONL file of instructions (alpaca, sharegpt or messages) into ``messages`` JSONL.

    Bad lines are skipped and counted; the output appears only when complete (temp file + rename).
    """
    from ltk.build.instruction_formats import BadRecord, detect_kind, to_messages

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
    engine = load_engine(
        model,
        backend,
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
            engine,
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
        "engine": f"{engine.backend} ({engine.precision})",
        **translations.stats.as_dict(),
    }
    if rank != 0:
        return summary
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f"{output_path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        for (rid, _), result in zip(records, results, strict=True):
            fh.write(json.dumps({"id": rid, "messages": result.messages}, ensure_ascii=False) + "\n")
    tmp.replace(output_path)
    return summary
