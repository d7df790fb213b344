"""Incremental nested tiers (``select_nested`` + ``build_tiers``), property-tested over random pools, drop
rates, tier lists and growth orders: tier N is byte-identical whether built alone, with larger tiers, or
grown step by step; no record is ever translated twice; only as much is translated as the tier needs.

The judge here stands for translation + quality estimation: a record is dropped by a hash of its id, so
each record's verdict is fixed and independent of the chunk it is judged in, as the real ones are.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ltk.instructions.tiers import build_tiers, rank_key, select_nested


def _pool(n: int, english_share: float, salt: int) -> list[dict]:
    out = []
    for i in range(n):
        h = int(hashlib.sha256(f"{salt}:{i}:kind".encode()).hexdigest(), 16) % 1000
        kind = "en" if h < english_share * 1000 else "ready"
        out.append({"id": f"{kind}:{i}", "source": kind, "messages": [{"role": "user", "content": f"r{i}"}]})
    return out


class Judge:
    """Keeps a record unless a hash of (salt, id) falls under the drop rate; counts what it judged."""

    def __init__(self, drop_rate: float, salt: int):
        self.drop_rate, self.salt = drop_rate, salt
        self.judged: list[str] = []
        self.calls = 0

    def keeps(self, record: dict) -> bool:
        h = int(hashlib.sha256(f"{self.salt}:{record['id']}:drop".encode()).hexdigest(), 16) % 1000
        return h >= self.drop_rate * 1000

    def __call__(self, chunk: list[dict]) -> dict[str, dict | None]:
        self.calls += 1
        self.judged.extend(r["id"] for r in chunk)
        return {
            r["id"]: (
                {**r, "messages": [{"role": "user", "content": "T:" + r["id"]}]} if self.keeps(r) else None
            )
            for r in chunk
        }


def _is_english(record: dict) -> bool:
    return record["id"].startswith("en:")


def _tier_bytes(survivors: list[dict], sizes: list[int], seed: int, ratio: float) -> dict[str, bytes]:
    originals = {r["id"]: {**r, "id": r["id"] + ":en"} for r in survivors if _is_english(r)}
    tiers = build_tiers(survivors, sizes, seed=seed, english_originals=originals, bilingual_ratio=ratio)
    return {t.name: "".join(json.dumps(r, sort_keys=True) + "\n" for r in t.rows).encode() for t in tiers}


pools = st.fixed_dictionaries(
    {
        "n": st.integers(0, 300),
        "english_share": st.sampled_from([0.0, 0.3, 0.9, 1.0]),
        "drop_rate": st.sampled_from([0.0, 0.1, 0.5, 0.95, 1.0]),
        "salt": st.integers(0, 10_000),
        "seed": st.integers(0, 3),
        "ratio": st.sampled_from([0.0, 0.5]),
        "tiers": st.lists(st.integers(1, 320), min_size=1, max_size=4, unique=True).map(sorted),
        "min_chunk": st.sampled_from([1, 16]),
    }
)


@settings(max_examples=150, deadline=None)
@given(case=pools, data=st.data())
def test_tier_is_identical_alone_together_and_grown(case: dict, data: st.DataObject) -> None:
    seed, tiers = case["seed"], case["tiers"]
    order = sorted(
        _pool(case["n"], case["english_share"], case["salt"]), key=lambda r: rank_key(seed, r["id"])
    )
    reference_judge = Judge(case["drop_rate"], case["salt"])
    everything = reference_judge(order)  # the old way: translate and judge every record first
    all_survivors = [
        (everything[r["id"]] if _is_english(r) else r)
        for r in order
        if not _is_english(r) or everything[r["id"]]
    ]
    reference = _tier_bytes(all_survivors, tiers, seed, case["ratio"])

    def build(goal: int, verdicts: dict, judge: Judge) -> dict[str, bytes]:
        sizes = [t for t in tiers if t <= goal]
        fresh = not verdicts
        sel = select_nested(
            order,
            sizes,
            needs_judging=_is_english,
            judge=judge,
            verdicts=verdicts,
            min_chunk=case["min_chunk"],
        )
        built = [t for t in tiers if t <= goal or t <= len(sel.survivors) or sel.exhausted]
        # the walk stopped where the goal was met: every English record before that point was judged
        span, judged_in_prefix, _ = sel.reach[len(sel.survivors)]
        assert judged_in_prefix == sum(_is_english(r) for r in order[:span])
        if fresh and case["min_chunk"] == 1 and case["drop_rate"] == 0.0:
            assert len(verdicts) == judged_in_prefix  # nothing dropped: exactly the records needed
        return _tier_bytes(sel.survivors, built, seed, case["ratio"])

    # alone: each tier in a fresh build (an empty cache)
    for size in tiers:
        judge = Judge(case["drop_rate"], case["salt"])
        alone = build(size, {}, judge)
        assert bool(alone) == bool(all_survivors)  # the requested tier (capped) exists if anything survives
        for tier_name, content in alone.items():
            assert content == reference[tier_name]
    # together: every tier at once
    together = build(tiers[-1], {}, Judge(case["drop_rate"], case["salt"]))
    assert together == reference
    # grown step by step in a random order of goals, the verdicts (the cache) kept between steps
    goals = data.draw(st.lists(st.sampled_from(tiers), min_size=1, max_size=5))
    verdicts: dict = {}
    judge = Judge(case["drop_rate"], case["salt"])
    for goal in goals:
        grown = build(goal, verdicts, judge)
        for tier_name, content in grown.items():
            assert content == reference[tier_name]
        assert len(judge.judged) == len(set(judge.judged))  # never translated twice
    assert set(judge.judged) <= {r["id"] for r in order if _is_english(r)}


def test_walk_translates_only_what_the_tier_needs_and_refills_drops() -> None:
    order = sorted(_pool(2000, 1.0, 7), key=lambda r: rank_key(0, r["id"]))
    judge = Judge(0.2, 7)
    verdicts: dict = {}
    sel = select_nested(order, [100], needs_judging=_is_english, judge=judge, verdicts=verdicts)
    assert len(sel.survivors) == 100
    span, judged, kept = sel.reach[100]
    assert kept == 100 and judged == span  # all English: every record up to the 100th survivor was judged
    assert judged <= len(judge.judged) <= judged + 16  # overshoot at most one minimum chunk
    assert judge.calls >= 2  # the first chunk (100) lost ~20 to QE and was refilled
    assert len(judge.judged) < 200  # not the 2,000 records of the pool
    grown = select_nested(order, [100, 400], needs_judging=_is_english, judge=judge, verdicts=verdicts)
    assert grown.survivors[:100] == sel.survivors
    assert len(judge.judged) == len(set(judge.judged)) < 560


def test_max_tier_must_be_a_tier_of_the_langpack(tmp_path) -> None:
    from click.testing import CliRunner

    from ltk.cli import main

    result = CliRunner().invoke(
        main, ["build-langpack", "ny", "--stage", "instructions", "--max-tier", "7", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--max-tier '7' is not a tier of langpack ny" in result.output
    assert "instructions.tiers = [1000, 10000, 50000]" in result.output
    assert "fix: use one of 1000, 10000, 50000 or 'all'" in result.output
    assert not list(tmp_path.iterdir())  # nothing written
