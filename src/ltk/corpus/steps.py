"""The per-document steps of the corpus stage as datatrove pipeline steps.

Each task (``rank``) reads one input shard, normalises, identifies the language, applies the quality
filters, computes exact keys and MinHash signatures (and token counts), and writes one parquet file.
Filters subclass datatrove's ``BaseFilter``: each drop returns a reason, which datatrove counts into its
per-task stats as ``dropped_<lang>/<reason>``. Whole-corpus work (dedup across tasks, held-out split,
budget and mix) happens afterwards in ``ltk.corpus.stage``, on these small per-task outputs.

The same list of steps runs under datatrove's LocalPipelineExecutor (default), SlurmPipelineExecutor or
RayPipelineExecutor: steps only depend on ``rank`` and on files under the work folder.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from ltk.corpus.filters import Thresholds, quality_reason
from ltk.corpus.normalize import normalize_text
from ltk.io import atomic_target
from ltk.log import progress

INPUT_COLUMNS = ("idx", "lang", "source", "id", "group", "text")


def input_shard(work: Path, rank: int) -> Path:
    return Path(work) / "input" / f"{rank:05d}.parquet"


def output_shard(work: Path, rank: int) -> Path:
    return Path(work) / "steps" / f"{rank:05d}.parquet"


class ShardReader(PipelineStep):
    """Reads ``input/<rank>.parquet`` written by the corpus stage (one shard per task)."""

    name = "ltk shard reader"
    type = "📖 - READER"

    def __init__(self, work: str, progress: bool = True):
        super().__init__()
        self.work, self.progress = str(work), progress

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import pyarrow.parquet as pq

        table = pq.read_table(input_shard(Path(self.work), rank))
        cols = {c: table.column(c).to_pylist() for c in INPUT_COLUMNS}
        n = table.num_rows
        bar = progress(total=n, desc=f"filter task {rank}", unit="doc", enabled=self.progress)
        # Counted once per shard: datatrove's per-call stat update is a measurable cost per document.
        for lang, count in Counter(cols["lang"]).items():
            self.stat_update(f"in_{lang}", value=count)
        for i in range(n):
            meta = {"idx": cols["idx"][i], "lang": cols["lang"][i], "source": cols["source"][i]}
            meta["group"] = cols["group"][i]
            yield Document(text=cols["text"][i], id=cols["id"][i], metadata=meta)
            bar.update()
        bar.close()


class Normalize(PipelineStep):
    """NFC + control characters + whitespace; documents left empty are dropped (``empty``)."""

    name = "ltk normalise"
    type = "🔨 - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                doc.text = normalize_text(doc.text)
            if not doc.text:
                self.stat_update(f"dropped_{doc.metadata['lang']}/empty")
                continue
            yield doc


class LanguageFilter(BaseFilter):
    """Keeps a document when the backend names its expected language with enough confidence."""

    name = "ltk language id"

    def __init__(self, backend: str, codes: dict[str, frozenset[str]], min_confidence: dict[str, float]):
        super().__init__(batch_size=64)
        self.backend_name, self.codes, self.min_confidence = backend, codes, min_confidence
        self._backend = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        if self._backend is None:
            from ltk.corpus.langid import make_backend

            self._backend = make_backend(self.backend_name)
        out: list[bool | tuple[bool, str]] = []
        for doc, (code, conf) in zip(batch, self._backend.predict([d.text for d in batch]), strict=True):
            lang = doc.metadata["lang"]
            doc.metadata["langid"] = code
            if code not in self.codes[lang]:
                out.append((False, f"{lang}/wrong_language"))
            elif conf < self.min_confidence[lang]:
                out.append((False, f"{lang}/low_language_confidence"))
            else:
                out.append(True)
        return out


class QualityFilter(BaseFilter):
    """Length, repeated/short lines, digit and symbol ratios, with thresholds per language."""

    name = "ltk quality filters"

    def __init__(self, thresholds: dict[str, Thresholds]):
        super().__init__()
        self.thresholds = thresholds

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang = doc.metadata["lang"]
        reason = quality_reason(doc.text, self.thresholds[lang])
        return True if reason is None else (False, f"{lang}/{reason}")


class Signatures(PipelineStep):
    """Exact key and MinHash signature per document, for the global dedup that follows."""

    name = "ltk minhash"
    type = "🫂 - DEDUP"

    def __init__(self, num_perm: int, shingling: dict[str, tuple[str, int]], near: bool):
        """``shingling``: (unit, n-gram length) per language, e.g. ``{"target": ("characters", 12)}``."""
        super().__init__()
        self.num_perm, self.shingling, self.near = num_perm, shingling, near

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from datatrove.utils.batching import batched

        from ltk.corpus.dedup import MinHasher, exact_key

        hashers = {lang: MinHasher(self.num_perm, n, unit=unit) for lang, (unit, n) in self.shingling.items()}
        for batch in batched(data, 64):
            with self.track_time("batch"):
                sigs: list = [None] * len(batch)
                if self.near:
                    # Batched MinHash per language: same signatures as one by one, a fraction of numpy's
                    # call overhead.
                    for lang, hasher in hashers.items():
                        members = [i for i, d in enumerate(batch) if d.metadata["lang"] == lang]
                        texts = [batch[i].text for i in members]
                        for i, sig in zip(members, hasher.signatures(texts), strict=True):
                            sigs[i] = sig
                for doc, sig in zip(batch, sigs, strict=True):
                    doc.metadata["key"] = exact_key(doc.text)
                    doc.metadata["sig"] = sig.tobytes() if sig is not None else b""
            yield from batch


class TokenCount(PipelineStep):
    """Counts tokens with the base model's tokenizer (saved as a folder by the corpus stage)."""

    name = "ltk token count"
    type = "🔢 - TOKENIZER"

    def __init__(self, tokenizer_dir: str | None, batch: int = 256):
        super().__init__()
        self.tokenizer_dir, self.batch = tokenizer_dir, batch

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.tokenizer_dir is None:
            for doc in data:
                doc.metadata["tokens"] = 0
                yield doc
            return
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from ltk.corpus.token_count import TokenCounter

        counter = TokenCounter(self.tokenizer_dir)
        buf: list[Document] = []

        def flush() -> list[Document]:
            with self.track_time("batch"):
                counts = counter.counts([d.text for d in buf])
            for d, n in zip(buf, counts, strict=True):
                d.metadata["tokens"] = n
                self.stat_update(f"tokens_{d.metadata['lang']}", value=n)
            return buf

        for doc in data:
            buf.append(doc)
            if len(buf) >= self.batch:
                yield from flush()
                buf = []
        if buf:
            yield from flush()


class ShardWriter(PipelineStep):
    """Writes the task's surviving documents to ``steps/<rank>.parquet`` (temp name, then rename)."""

    name = "ltk shard writer"
    type = "💽 - WRITER"

    def __init__(self, work: str):
        super().__init__()
        self.work = str(work)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols: dict[str, list] = {k: [] for k in (*INPUT_COLUMNS, "key", "sig", "tokens")}
        for doc in data:
            m = doc.metadata
            for k in ("idx", "lang", "source", "group", "key", "sig", "tokens"):
                cols[k].append(m[k])
            cols["id"].append(doc.id)
            cols["text"].append(doc.text)
        for lang, count in Counter(cols["lang"]).items():
            self.stat_update(f"kept_{lang}", value=count)
        schema = pa.schema(
            [
                ("idx", pa.int64()),
                ("lang", pa.string()),
                ("source", pa.string()),
                ("id", pa.string()),
                ("group", pa.string()),
                ("text", pa.string()),
                ("key", pa.binary()),
                ("sig", pa.binary()),
                ("tokens", pa.int64()),
            ]
        )
        with atomic_target(output_shard(Path(self.work), rank)) as tmp:
            pq.write_table(pa.table(cols, schema=schema), tmp)
        return
        yield  # a generator that yields nothing: the writer is the end of the pipeline
