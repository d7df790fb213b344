"""ltk.io: atomic files and folders, hashes, versions and the cache folder, which every stage relies on."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ltk import io


def test_atomic_json_is_sorted_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "eval" / "base.json"
    io.atomic_write_json(path, {"b": 1, "a": [1.5], "text": "ŵ"}, ensure_ascii=False)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"a": [1.5], "b": 1, "text": "ŵ"}
    assert text.index('"a"') < text.index('"b"') and text.endswith("}\n") and "ŵ" in text
    assert [p.name for p in path.parent.iterdir()] == ["base.json"]


def test_jsonl_reports_rows_and_the_sha256_of_what_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    info = io.atomic_write_jsonl(path, ({"i": i} for i in range(3)))
    assert info == {"rows": 3, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert path.read_text().splitlines() == ['{"i": 0}', '{"i": 1}', '{"i": 2}']


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")

    def rows():
        yield {"ok": 1}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        io.atomic_write_jsonl(path, rows())
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_staged_dir_replaces_the_folder_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "corpus"
    (final / "train").mkdir(parents=True)
    (final / "train" / "old.parquet").write_text("old")
    with pytest.raises(ValueError), io.staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("half")
        raise ValueError("killed")
    assert (final / "train" / "old.parquet").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    with io.staged_dir(final) as tmp:
        (tmp / "new.txt").write_text("whole")
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f"corpus.tmp-{dead}").mkdir()
    (tmp_path / f"corpus.old-{dead}").mkdir()
    mine = tmp_path / f"corpus.tmp-{os.getpid()}"
    mine.mkdir()
    io.remove_stale_temps(tmp_path, "corpus")
    assert sorted(p.name for p in tmp_path.iterdir()) == [mine.name]


def test_sha256_versions_and_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3000)
    (tmp_path / "blob").write_bytes(data)
    assert io.sha256_file(tmp_path / "blob", chunk=1000) == hashlib.sha256(data).hexdigest()
    versions = io.library_versions("pyyaml", "no-such-dist", python=True)
    assert set(versions) == {"python", "pyyaml"}
    assert io.library_versions("no-such-dist", missing="not installed") == {"no-such-dist": "not installed"}
    monkeypatch.setenv("LTK_CACHE", "~/ltk-cache")
    assert io.cache_dir() == Path.home() / "ltk-cache"  # ~ expanded (it was not everywhere)
    monkeypatch.delenv("LTK_CACHE")
    assert io.cache_dir() == Path.home() / ".cache" / "ltk"
