"""The whole-corpus step of the corpus stage, on the small per-task outputs of the datatrove steps:

1. ``split_and_dedup``: held-out split (whole groups or a hashed fraction), then exact + near dedup per
   language, held-out first (held-out wins), then training minus anything that matches held-out text;
2. ``apply_budget``: a seeded order, per-source caps, the target token budget;
3. ``mix_english`` (:mod:`ltk.corpus.mix`): English documents so that English is the langpack's share of
   the training tokens; then one seeded shuffle of the training rows.

``overlap_check`` re-checks the result independently. Every dropped document is counted with its reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ltk.langpack.load import Langpack
from ltk.langpack.schema import HeldOut
from ltk.log import progress as log_progress

LANGS = ("target", "english")


def heldout_mask(ids: list[str], groups: list[str], spec: HeldOut) -> list[bool]:
    if spec.groups:
        wanted = set(spec.groups)
        return [g in wanted for g in groups]
    if spec.fraction <= 0:
        return [False] * len(ids)
    # A hash of the id, not a random draw: the same document is held out in every build.
    cut = int(spec.fraction * 2**32)
    return [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=4).digest(), "big") < cut for i in ids]


@dataclass
class Split:
    """Document positions per language after the held-out split and dedup, and what was dropped."""

    train: dict[str, list[int]] = field(default_factory=dict)
    heldout: dict[str, list[int]] = field(default_factory=dict)
    drops: dict[str, Counter] = field(default_factory=lambda: {lang: Counter() for lang in LANGS})


def split_and_dedup(docs: dict[str, list], pack: Langpack, progress: bool = True) -> Split:
    """Held-out split, then exact + near dedup: held-out first (it wins), then training minus held-out."""
    import numpy as np

    from ltk.corpus.dedup import DedupIndex

    spec = pack.spec
    nd = spec.filters.near_dedup
    n = len(docs["idx"])
    sigs = [np.frombuffer(s, dtype=np.uint32) if s else None for s in docs["sig"]]
    by_lang: dict[str, list[int]] = {lang: [] for lang in LANGS}
    for i in range(n):
        by_lang[docs["lang"][i]].append(i)
    out = Split()
    bar = log_progress(total=n, desc="dedup + held-out", unit="doc", enabled=progress)
    for lang, members in by_lang.items():
        drops = out.drops[lang]
        hspec = spec.corpus.heldout if lang == "target" else spec.english.heldout
        mask = heldout_mask([docs["id"][i] for i in members], [docs["group"][i] for i in members], hspec)
        h_index = DedupIndex(nd.threshold, nd.num_perm, nd.enabled)
        t_index = DedupIndex(nd.threshold, nd.num_perm, nd.enabled)
        heldout: list[int] = []
        train: list[int] = []
        for i, held in zip(members, mask, strict=True):
            if not held:
                continue
            bar.update()
            kind = h_index.query(docs["key"][i], sigs[i])
            if kind:
                drops[f"duplicate_{kind}"] += 1
            elif len(heldout) >= hspec.max_documents:
                drops["heldout_over_max_documents"] += 1  # never moved into training
            else:
                h_index.add(docs["key"][i], sigs[i])
                heldout.append(i)
        for i, held in zip(members, mask, strict=True):
            if held:
                continue
            bar.update()
            if h_index.query(docs["key"][i], sigs[i]):
                drops["overlaps_heldout"] += 1
                continue
            kind = t_index.offer(docs["key"][i], sigs[i])
            if kind:
                drops[f"duplicate_{kind}"] += 1
            else:
                train.append(i)
        out.heldout[lang], out.train[lang] = heldout, train
    bar.close()
    return out


def source_caps(pack: Langpack) -> dict[str, int | None]:
    """Token caps per source: a target source's share of the budget and max_tokens; English max_tokens."""
    spec = pack.spec
    budget = spec.corpus.token_budget
    caps: dict[str, int | None] = {}
    for s in spec.corpus.sources:
        limits = [x for x in (s.max_tokens, int(s.share * budget) if s.share else None) if x]
        caps[s.name] = min(limits) if limits else None
    for s in spec.english.sources:
        caps[s.name] = s.max_tokens
    return caps


def apply_budget(
    docs: dict[str, list], split: Split, pack: Langpack, seed: int
) -> tuple[list[int], list[int]]:
    """Target documents in a seeded order under the budget and source caps, and English candidates in
    their own seeded order under their caps (the mix then takes what it needs from the front)."""
    from ltk.corpus.mix import seeded_order

    tokens, sources = docs["tokens"], docs["source"]
    budget = pack.spec.corpus.token_budget
    caps = source_caps(pack)
    used: Counter = Counter()
    target_drops, english_drops = split.drops["target"], split.drops["english"]
    chosen_target: list[int] = []
    total = 0
    for j in seeded_order(len(split.train["target"]), seed, 1):
        i = split.train["target"][j]
        if total >= budget:
            target_drops["over_token_budget"] += 1
            continue
        cap = caps.get(sources[i])
        if cap is not None and used[sources[i]] >= cap:
            target_drops["over_source_cap"] += 1
            continue
        chosen_target.append(i)
        used[sources[i]] += tokens[i]
        total += tokens[i]
    english: list[int] = []
    for j in seeded_order(len(split.train["english"]), seed, 2):
        i = split.train["english"][j]
        cap = caps.get(sources[i])
        if cap is not None and used[sources[i]] + tokens[i] > cap:
            english_drops["over_source_cap"] += 1
            continue
        used[sources[i]] += tokens[i]
        english.append(i)
    return chosen_target, english


def select_documents(docs: dict[str, list], pack: Langpack, seed: int, progress: bool = True) -> dict:
    """Held-out split, dedup (held-out wins), token budget and English mix. Returns the selection."""
    from ltk.corpus.mix import mix_english, seeded_order

    split = split_and_dedup(docs, pack, progress)
    chosen_target, english = apply_budget(docs, split, pack, seed)
    tokens = docs["tokens"]
    mix = mix_english(
        [tokens[i] for i in chosen_target], [tokens[i] for i in english], pack.spec.english.ratio
    )
    kept_target = [chosen_target[j] for j in mix.target]
    kept_english = [english[j] for j in mix.english]
    split.drops["target"]["trimmed_for_english_mix"] += len(chosen_target) - len(kept_target)
    split.drops["english"]["not_needed_for_mix"] += len(english) - len(kept_english)
    for counts in split.drops.values():
        for reason in [k for k, v in counts.items() if v == 0]:
            del counts[reason]
    combined = sorted(kept_target + kept_english)
    return {
        "train": [combined[j] for j in seeded_order(len(combined), seed, 3)],
        "heldout": split.heldout,
        "drops": split.drops,
        "mix": mix,
        "target_tokens_available": sum(tokens[i] for i in split.train["target"]),
        "target_kept": len(split.train["target"]),
        "english_tokens_available": sum(tokens[i] for i in split.train["english"]),
    }


def overlap_check(
    docs: dict[str, list], train: list[int], heldout: list[int], nd: Any, script: str = "Latn"
) -> dict:
    """Independent re-check: how many training documents match held-out text, exactly or nearly."""
    import numpy as np

    from ltk.corpus.dedup import DedupIndex, MinHasher, exact_key

    index = DedupIndex(nd.threshold, nd.num_perm, near=True)
    hashers = {
        lang: MinHasher(nd.num_perm, n, unit=unit)
        for lang, (unit, n) in (("target", nd.shingling(script)), ("english", nd.shingling("Latn")))
    }

    def signature(i: int) -> Any:
        stored = docs["sig"][i]
        if stored:
            return np.frombuffer(stored, dtype=np.uint32)
        return hashers[docs["lang"][i]].signature(docs["text"][i])

    for i in heldout:
        index.add(exact_key(docs["text"][i]), signature(i))
    counts: Counter = Counter()
    for i in train:
        kind = index.query(exact_key(docs["text"][i]), signature(i))
        if kind:
            counts[kind] += 1
    return {
        "exact": counts["exact"],
        "near": counts["near"],
        "train_checked": len(train),
        "heldout": len(heldout),
    }
