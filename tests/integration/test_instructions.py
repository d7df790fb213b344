"""The instruction stage: the ny langpack builds its tiers fully offline from a parallel parquet, and a pack
with an English set to translate goes through the tiny NLLB, QE (drop reasons counted) and tiers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ltk.instructions.tiers import build_tiers


def _pairs(n: int) -> list[dict]:
    return [
        {
            "id": f"GEN.{i // 30 + 1}.{i % 30 + 1}",
            "target": f"Mulungu analenga kumwamba ndi dziko lapansi nambala {i}.",
            "english": f"God created the heaven and the earth, number {i}.",
            "group": "GEN",
        }
        for i in range(n)
    ]


def _write_parallel(out: Path, code: str, name: str, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = out / code / "parallel"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / f"{name}.parquet")


def _ny_pack(tiers: list[int], **instructions):
    from ltk.langpack.load import Langpack
    from ltk.registry import get_langpack

    pack = get_langpack("ny")
    spec = pack.spec.model_copy(
        update={"instructions": pack.spec.instructions.model_copy(update={"tiers": tiers, **instructions})}
    )
    return Langpack(spec=spec, root=pack.root, origin=pack.origin)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_tiers_nested_deterministic_and_capped() -> None:
    records = [{"id": f"r{i}", "source": "s", "messages": []} for i in range(250)]
    english = {f"r{i}": {"id": f"r{i}:en", "source": "s", "messages": []} for i in range(0, 250, 2)}
    tiers = build_tiers(
        records, [10, 100, 1000, 5000], seed=3, english_originals=english, bilingual_ratio=0.2
    )
    assert [t.name for t in tiers] == ["tier-10", "tier-100", "tier-250"]  # 1000 capped, 5000 dropped
    assert [t.requested for t in tiers] == [10, 100, 1000]
    ids = [{r["id"] for r in t.rows} for t in tiers]
    assert ids[0] < ids[1] < ids[2]
    # English originals of the tier's own records, round(n * 0.2), capped by how many have one
    have = [sum(1 for i in tier_ids if i in english) for tier_ids in ids]
    assert [t.english_rows for t in tiers] == [
        min(round(n * 0.2), h) for n, h in zip((10, 100, 250), have, strict=True)
    ]
    assert all(
        r["id"][:-3] in ids_
        for t, ids_ in zip(tiers, ids, strict=True)
        for r in t.rows
        if r["id"].endswith(":en")
    )
    again = build_tiers(
        records, [10, 100, 1000, 5000], seed=3, english_originals=english, bilingual_ratio=0.2
    )
    assert [t.rows for t in again] == [t.rows for t in tiers]
    other_seed = build_tiers(records, [10], seed=4)
    assert {r["id"] for r in other_seed[0].rows} != {r["id"] for r in tiers[0].rows if ":en" not in r["id"]}


def test_ny_builds_instruction_tiers_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from datasets import load_dataset

    from ltk.instructions.stage import build_instructions

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the optional alpaca source must be skipped, not fetched
    out = tmp_path / "build"
    _write_parallel(out, "ny", "bible-verses-train", _pairs(120))
    pack = _ny_pack([50, 100, 1000])
    with caplog.at_level(logging.WARNING, logger="ltk"):
        manifest = build_instructions(pack, out, seed=0, progress=False)
    assert "skipping optional source 'alpaca-cleaned'" in caplog.text
    folder = out / "ny" / "instructions"
    assert manifest["translation"] is None  # no model needed, none loaded
    assert manifest["counts"]["from_parallel"] == 240  # both directions
    assert manifest["counts"]["heldout_prompts"] == 50
    assert [t["name"] for t in manifest["tiers"]] == ["tier-50", "tier-100", "tier-190"]
    rows = {t["name"]: _lines(folder / t["path"]) for t in manifest["tiers"]}
    held = _lines(folder / "heldout_prompts.jsonl")
    held_ids = {r["id"] for r in held}
    assert all(r["id"].split(":")[1] == "to_target" for r in held)
    tier_ids = [{r["id"] for r in rows[n]} for n in ("tier-50", "tier-100", "tier-190")]
    assert tier_ids[0] < tier_ids[1] < tier_ids[2]
    assert not held_ids & tier_ids[2]
    example = next(r for r in rows["tier-190"] if ":to_english:" in r["id"])
    assert [m["role"] for m in example["messages"]] == ["user", "assistant"]
    assert example["messages"][1]["content"].startswith("God created")
    assert "Mulungu analenga" in example["messages"][0]["content"]
    assert any("Masulirani" in r["messages"][0]["content"] for r in rows["tier-190"])  # Chichewa templates
    assert any("Translate" in r["messages"][0]["content"] for r in rows["tier-190"])  # English templates
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["tiers"][0]["sha256"] == manifest["tiers"][0]["sha256"]
    assert {"what": "parallel:bible-verses-train", "licence": "MIT"} in on_disk["licences"]
    # datasets (and so TRL) read a tier directly as conversations
    ds = load_dataset("json", data_files=str(folder / "tier-50" / "train.jsonl"), split="train")
    assert len(ds) == 50 and ds[0]["messages"][0]["role"] == "user"
    # same inputs and seed: byte-identical outputs
    first = {p.name: p.read_bytes() for p in folder.rglob("*.jsonl")}
    build_instructions(pack, out, seed=0, progress=False)
    assert {p.name: p.read_bytes() for p in folder.rglob("*.jsonl")} == first
    assert not list((out / "ny").glob("instructions.*"))  # no temp folders left behind


@pytest.mark.slow
def test_translated_source_goes_through_qe_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ltk.instructions.stage import build_instructions
    from ltk.langpack.load import Langpack
    from ltk.langpack.schema import LocalSource

    test_translate = pytest.importorskip("test_translate")  # same folder: reuse the tiny NLLB builder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = test_translate.build_tiny_nllb(tmp_path / "nllb")
    root = tmp_path / "pack" / "ny"
    (root / "data").mkdir(parents=True)
    records = [
        {"instruction": f"Write sentence number {i} about the river.", "output": f"The river {i} flows."}
        for i in range(30)
    ]
    records += [{"instruction": "", "output": ""}, {"instruction": 5, "output": "x"}]
    (root / "data" / "mini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    source = LocalSource(
        name="mini", kind="local", path="data/mini.jsonl", records="alpaca", licence="CC0-1.0"
    )
    pack = _ny_pack([10, 20], translate=[source])
    pack = Langpack(
        spec=pack.spec.model_copy(update={"eval": pack.spec.eval.model_copy(update={"prompts": 5})}),
        root=root,
    )
    out = tmp_path / "build"
    _write_parallel(out, "ny", "bible-verses-train", _pairs(20))
    try:
        manifest = build_instructions(pack, out, translation_model=str(model), progress=False)
        again = build_instructions(pack, out, translation_model=str(model), progress=False)
    finally:
        torch.set_num_threads(threads)
    quality = manifest["quality"]["translated"]
    assert quality["checked"] == 30
    assert sum(quality["dropped"].values()) + quality["kept"] == 30
    assert manifest["dropped"]["empty"] == 1 and manifest["dropped"]["malformed"] == 1
    assert quality["kept"] < 30  # random weights produce junk that QE must catch
    assert set(quality["scores"]) >= {"repetition"}
    assert manifest["translation"]["licence"] == "CC-BY-NC-4.0"
    from ltk.translation import resolve_backend, resolve_dtype

    # the default backend: CTranslate2 int8 on a CPU without native bf16, transformers otherwise
    backend = resolve_backend("auto", "nllb", "cpu")
    assert manifest["translation"]["backend"] == backend
    expected = "int8" if backend == "ctranslate2" else resolve_dtype("auto", "cpu")
    assert manifest["translation"]["dtype"] == expected  # what the engine computed in
    assert manifest["run"]["forward"]["translated"] > 0
    assert again["run"]["forward"]["translated"] == 0 and again["run"]["forward"]["generate_calls"] == 0
    assert again["run"]["roundtrip"]["generate_calls"] == 0


def _lax_pack_with_english(tmp_path: Path, n: int, tiers: list[int]):
    """The ny pack with ``n`` English alpaca records to translate and quality checks loose enough that the
    tiny random NLLB's output mostly passes: its outputs are 4.5-12x longer than the English, so the length
    check alone drops about a third (tiers fill, and drops still happen)."""
    from ltk.langpack.load import Langpack
    from ltk.langpack.schema import LocalSource, Quality

    root = tmp_path / "pack" / "ny"
    (root / "data").mkdir(parents=True, exist_ok=True)
    records = [
        {"instruction": f"Write sentence {i} about the {w} and the sea.", "output": f"The {w} {i} flows."}
        for i, w in zip(range(n), ["river", "wind", "sky", "child", "poem"] * n, strict=False)
    ]
    (root / "data" / "mini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    source = LocalSource(
        name="mini", kind="local", path="data/mini.jsonl", records="alpaca", licence="CC0-1.0"
    )
    quality = Quality(
        min_roundtrip_chrf=0.0, langid_min_confidence=0.0, min_length_ratio=0.01, max_length_ratio=10.0,
        max_repeated_ngram_fraction=1.0,
    )  # fmt: skip
    pack = _ny_pack(tiers, translate=[source], from_parallel=[], quality=quality)
    return Langpack(
        spec=pack.spec.model_copy(update={"eval": pack.spec.eval.model_copy(update={"prompts": 3})}),
        root=root,
    )


@pytest.mark.slow
def test_tiers_grow_incrementally_and_stay_byte_identical(tmp_path: Path, monkeypatch) -> None:
    """Real translation (tiny NLLB) + QE: tier-N is the same bytes built alone, together with larger tiers
    or grown step by step; growing translates only new records; the manifest counts work per tier."""
    import torch

    from ltk.instructions.stage import build_instructions

    test_translate = pytest.importorskip("test_translate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = str(test_translate.build_tiny_nllb(tmp_path / "nllb"))
    pack = _lax_pack_with_english(tmp_path, 80, [6, 12, 24])

    def build(out: Path, max_tier) -> dict:
        return build_instructions(
            pack, out, translation_model=model, dtype="float32", max_tier=max_tier, progress=False
        )

    def tier_bytes(out: Path) -> dict[str, bytes]:
        return {
            p.parent.name: p.read_bytes() for p in (out / "ny" / "instructions").glob("tier-*/train.jsonl")
        }

    try:
        alone = build(tmp_path / "alone", None)  # default: the recipe's tier, the first
        together = build(tmp_path / "together", "all")
        grown = [build(tmp_path / "grown", t) for t in (6, 12, 24)]
        again = build(tmp_path / "grown", 24)
    finally:
        torch.set_num_threads(threads)
    assert [t["name"] for t in alone["tiers"]] == ["tier-6"] and alone["max_tier"] == 6
    assert [t["name"] for t in together["tiers"]] == ["tier-6", "tier-12", "tier-24"]
    built_alone, built_together, built_grown = (
        tier_bytes(tmp_path / d) for d in ("alone", "together", "grown")
    )
    assert built_alone["tier-6"] == built_together["tier-6"] == built_grown["tier-6"]
    assert built_grown == built_together
    held = [
        (tmp_path / d / "ny" / "instructions" / "heldout_prompts.jsonl").read_bytes()
        for d in ("alone", "together")
    ]
    assert held[0] == held[1]
    # QE dropped some records and the walk refilled them
    assert together["quality"]["translated"]["dropped"]["length_ratio"] > 0
    # work avoided: the first build translated far fewer than the 80 records of the pool
    assert alone["translation"]["records"] < together["translation"]["records"] <= 80
    # per tier: English records of the order up to the tier's last row, translated = kept + dropped
    for tier in together["tiers"]:
        assert tier["translated"] == tier["translated_kept"] + tier["translated_dropped"]
        assert tier["translated_kept"] == tier["target_rows"]  # every row of these tiers is translated
    assert together["tiers"][0] == {**alone["tiers"][0]}
    # growing translated only records not translated before: the later steps found the earlier ones cached
    assert grown[1]["run"]["forward"]["cached"] > 0
    step_new = [g["run"]["forward"]["translated"] for g in grown]
    assert sum(step_new) == together["run"]["forward"]["translated"]  # same segments, each translated once
    assert again["run"]["forward"]["translated"] == 0 and again["run"]["forward"]["generate_calls"] == 0


@pytest.mark.slow
def test_another_engine_builds_tiers_and_its_licence_flows(tmp_path: Path, monkeypatch) -> None:
    """The instruction stage with OPUS-MT (one tiny model per direction; the round trip uses the reverse
    one): the manifest names the engine and its weights' licence, and a model card carries it."""
    import torch

    from ltk.evaluate.report import collect_licences
    from ltk.instructions.stage import build_instructions

    fam = pytest.importorskip("test_translation_engines")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    fam.build_tiny_marian(tmp_path / "opus" / "opus-mt-en-ny")
    fam.build_tiny_marian(tmp_path / "opus" / "opus-mt-ny-en")
    pack = _lax_pack_with_english(tmp_path, 30, [5, 10])
    try:
        manifest = build_instructions(
            pack, tmp_path / "build", translation_engine="marian", dtype="float32", progress=False,
            translation_model=str(tmp_path / "opus" / "opus-mt-{src}-{tgt}"),
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    info = manifest["translation"]
    assert (
        info["engine"] == "marian"
        and info["licence"] == "CC-BY-4.0"
        and info["model_key"].startswith("marian:")
    )
    assert [t["name"] for t in manifest["tiers"]] == ["tier-5"]
    assert manifest["run"]["roundtrip"]["translated"] > 0  # the reverse model ran
    found: dict[str, str] = {}
    collect_licences(
        json.loads((tmp_path / "build" / "ny" / "instructions" / "manifest.json").read_text()), found
    )
    assert found[f"translations by {tmp_path / 'opus' / 'opus-mt-{src}-{tgt}'}"] == "CC-BY-4.0"
