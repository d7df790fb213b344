"""Translation requests built from a parallel set: each aligned pair becomes an instruction in one or both
directions, with prompt templates varied per example (``ltk/data/translation_templates.yml``).

This is how a langpack with parallel text but no instruction data (``ny``) builds its tiers offline,
with no translation model at all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import cache
from importlib import resources
from typing import Any

Record = dict[str, Any]


@cache
def translation_templates() -> dict[str, Any]:
    import yaml

    text = resources.files("ltk.data").joinpath("translation_templates.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _choice(seed: int, key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{key}".encode()).digest()[:8], "big") % n


def parallel_examples(
    rows: list[dict[str, Any]],
    *,
    set_name: str,
    directions: list[str],
    language_name: str,
    flores: str,
    seed: int = 0,
    max_examples: int | None = None,
) -> tuple[list[Record], Counter]:
    """Translation requests from aligned pairs, in both directions, with varied prompt templates.

    About half the prompts are in English and half in the target language (when templates exist for
    it), so the model learns to follow translation requests phrased either way.
    """
    data = translation_templates()
    native = data.get("languages", {}).get(flores)
    skipped: Counter = Counter()
    out: list[Record] = []
    for direction in directions:
        made = 0
        for row in rows:
            target, english = str(row.get("target") or "").strip(), str(row.get("english") or "").strip()
            if not target or not english:
                skipped["empty_pair"] += 1
                continue
            rid = f"{set_name}:{direction}:{row['id']}"
            use_native = native is not None and _choice(seed, rid + ":lang", 2) == 1
            if use_native:
                names = {"target": native["self"], "english": native["english"]}
                templates = native["templates"]
            else:
                names = {"target": language_name, "english": "English"}
                templates = data["english"]
            template = templates[_choice(seed, rid, len(templates))]
            if direction == "to_target":
                src_name, tgt_name, text, answer = names["english"], names["target"], english, target
            else:
                src_name, tgt_name, text, answer = names["target"], names["english"], target, english
            prompt = template.format(text=text, source=src_name, target=tgt_name)
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            out.append(
                {"id": rid, "source": f"parallel:{set_name}", "messages": messages, "direction": direction}
            )
            made += 1
            if max_examples is not None and made >= max_examples:
                break
    return out, skipped
