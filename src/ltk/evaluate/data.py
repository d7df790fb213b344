"""Reading the eval sets a language's build folder holds (``ltk.layout.BuildLayout``); clear errors when a
set is missing or empty, so that no metric is silently computed on nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.layout import BuildLayout

BUILD_HINT = "build it first: ltk build-langpack CODE --out build"


def _parquet_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"{what}: folder {folder} does not exist; {BUILD_HINT}")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise UsageError(f"{what}: no *.parquet files in {folder}; {BUILD_HINT}")
    return files


def iter_parquet_rows(files: list[Path], columns: list[str]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for file in files:
        names = pq.read_schema(file).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise UsageError(
                f"{file}: missing column(s) {missing} (has {names}); rebuild with this ltk version"
            )
        for batch in pq.ParquetFile(file).iter_batches(columns=columns, batch_size=1024):
            yield from batch.to_pylist()


def read_texts(build_dir: Path, split: str, max_docs: int | None = None) -> list[str]:
    """Texts of ``corpus/<split>`` (heldout_target | heldout_english), in file order, non-empty only."""
    folder = BuildLayout.of(build_dir).corpus_split(split)
    files = _parquet_files(folder, f"held-out set {split!r}")
    texts: list[str] = []
    for row in iter_parquet_rows(files, ["text"]):
        text = row["text"]
        if text and text.strip():
            texts.append(text)
            if max_docs is not None and len(texts) >= max_docs:
                break
    if not texts:
        raise UsageError(f"held-out set {split!r} in {folder} is empty; {BUILD_HINT}")
    return texts


def read_corpus_texts(build_dir: Path, lang: str, max_docs: int | None = None) -> list[str]:
    """Training-corpus texts of one language (``target`` | ``english``), used to learn lexicons."""
    files = _parquet_files(BuildLayout.of(build_dir).corpus_train, "training corpus")
    texts: list[str] = []
    for row in iter_parquet_rows(files, ["text", "lang"]):
        if row["lang"] == lang and row["text"]:
            texts.append(row["text"])
            if max_docs is not None and len(texts) >= max_docs:
                break
    return texts


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: list[dict[str, str]]  # the conversation up to (not including) the answer
    reference: str | None  # the reference answer, when the build knows one


def read_prompts(build_dir: Path, max_prompts: int | None = None) -> list[Prompt]:
    """Held-out target-language prompts from ``instructions/heldout_prompts.jsonl``."""
    path = BuildLayout.of(build_dir).heldout_prompts
    if not path.is_file():
        raise UsageError(f"held-out prompts: {path} does not exist; {BUILD_HINT}")
    prompts: list[Prompt] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                messages = row["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UsageError(f"{path}:{lineno}: not a {{id, messages}} JSON line ({exc})") from None
            reference = None
            if messages and messages[-1].get("role") == "assistant":
                reference = messages[-1].get("content")
                messages = messages[:-1]
            if not any(m.get("role") == "user" for m in messages):
                raise UsageError(f"{path}:{lineno}: prompt has no user turn")
            prompts.append(Prompt(id=str(row.get("id", lineno)), messages=messages, reference=reference))
            if max_prompts is not None and len(prompts) >= max_prompts:
                break
    if not prompts:
        raise UsageError(f"held-out prompts: {path} is empty; {BUILD_HINT}")
    return prompts


@dataclass(frozen=True)
class Pair:
    id: str
    target: str
    english: str


def parallel_names(build_dir: Path) -> list[str]:
    folder = BuildLayout.of(build_dir).parallel
    return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []


def read_parallel(build_dir: Path, name: str, max_pairs: int | None = None) -> list[Pair]:
    path = BuildLayout.of(build_dir).parallel_set(name)
    if not path.is_file():
        known = ", ".join(parallel_names(build_dir)) or "(none)"
        raise UsageError(f"parallel set {name!r}: {path} does not exist (found: {known}); {BUILD_HINT}")
    pairs: list[Pair] = []
    for row in iter_parquet_rows([path], ["id", "target", "english"]):
        if row["target"] and row["english"]:
            pairs.append(Pair(str(row["id"]), row["target"], row["english"]))
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
    if not pairs:
        raise UsageError(f"parallel set {name!r} in {path} is empty; {BUILD_HINT}")
    return pairs


def eval_parallel_names(build_dir: Path) -> list[str]:
    """Parallel sets to score: the langpack's ``eval.parallel`` when known, else those named *heldout*,
    else all (training pairs would overstate translation quality, so held-out ones come first)."""
    names = parallel_names(build_dir)
    info = language_info(build_dir)
    wanted = [n for n in info.get("eval_parallel", []) if n in names]
    if wanted:
        return wanted
    heldout = [n for n in names if "heldout" in n or "test" in n or "dev" in n]
    return heldout or names


def language_info(build_dir: Path) -> dict[str, Any]:
    """Name and codes of the build's language: from the langpack when ltk can find it, else the folder."""
    code = build_dir.resolve().name
    info: dict[str, Any] = {"code": code, "name": code, "flores": None, "iso639_1": None}
    try:
        from ltk.registry import get_langpack

        pack = get_langpack(code)
    except Exception:  # an unknown code is fine here: eval works on the build folder alone
        return info
    lang = pack.spec.language
    info.update(
        name=lang.name,
        flores=lang.flores,
        iso639_1=lang.iso639_1,
        iso639_3=lang.iso639_3,
        script=lang.script,
        eval_parallel=list(pack.spec.eval.parallel),
        max_documents=pack.spec.eval.max_documents,
        prompts=pack.spec.eval.prompts,
    )
    return info
