"""Fast checks of the quickstart's and the experiment's own logic: derived recipes, budgets, verdicts,
the results table and the plot. (The end-to-end runs are in tests/integration/test_quickstart.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ltk.errors import UsageError
from ltk.experiment import SCALES, Arm, arm_recipe, arms_for, findings, plot, render_markdown
from ltk.quickstart import FAST, FULL, budget_for, quickstart_recipe, render_headline, write_quickstart_recipe
from ltk.recipe.load import load_recipe, stage_settings
from ltk.recipe.render import write_recipe
from ltk.registry import get_langpack


@pytest.fixture(scope="module")
def ny_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qs")
    return write_recipe(get_langpack("ny"), root / "build", root / "recipes").path


def test_budget_for() -> None:
    assert budget_for(fast=False) == FULL and budget_for(fast=True) == FAST
    b = budget_for(fast=True, max_steps=9)
    assert (b.cpt_steps, b.sft_steps) == (9, 4)
    with pytest.raises(UsageError):
        budget_for(fast=False, max_steps=0)


def test_quickstart_recipe_sets_short_budgets(ny_recipe: Path, tmp_path: Path) -> None:
    recipe = quickstart_recipe(ny_recipe, tmp_path / "run", FAST)
    path = write_quickstart_recipe(recipe, tmp_path / "run" / "ny-quickstart.yml", ny_recipe)
    again = load_recipe(path)  # the written file validates and reads back
    cpt, sft = stage_settings(again, "cpt"), stage_settings(again, "sft")
    assert (cpt.max_steps, cpt.sequence_len, cpt.micro_batch_size) == (
        FAST.cpt_steps,
        256,
        FAST.cpt_micro_batch,
    )
    assert sft.max_steps == FAST.sft_steps and sft.learning_rate == FAST.sft_learning_rate
    assert cpt.output_dir == str(tmp_path / "run" / "cpt")
    assert again.ltk.eval.enabled is False  # the quickstart evaluates each stage itself
    assert again.base_model == "embedded:smollm2-135m"
    # Same settings: rewriting is a no-op; other settings in the same run folder are refused.
    write_quickstart_recipe(recipe, path, ny_recipe)
    with pytest.raises(UsageError, match="other settings"):
        write_quickstart_recipe(quickstart_recipe(ny_recipe, tmp_path / "run", FULL), path, ny_recipe)


def test_experiment_arm_recipes_differ_only_where_the_arm_does(ny_recipe: Path, tmp_path: Path) -> None:
    base = load_recipe(ny_recipe)
    sc = SCALES["small"]
    data = {
        "corpus_en25": tmp_path / "mixed",
        "corpus_en0": tmp_path / "en0",
        "tiers": {n: tmp_path / f"tier-{n}" / "train.jsonl" for n in sc.tiers},
        "sft_start": tmp_path / "cpt-en25" / "final",
    }
    recipes = {
        a.name: arm_recipe(base, a, sc, tmp_path / a.name, data) for a in arms_for(sc) if a.kind != "base"
    }
    en0, en25, vocab = recipes["cpt-en0"], recipes["cpt-en25"], recipes["cpt-en25-vocab+"]
    assert en0.ltk.english.ratio == 0 and en0.ltk.stages.cpt.data == str(tmp_path / "en0")
    assert en25.ltk.english.ratio == 0.25 and en25.ltk.stages.cpt.data == str(tmp_path / "mixed")
    assert vocab.ltk.vocabulary.policy == "extend" and en25.ltk.vocabulary.policy == "keep"
    s0, s25 = stage_settings(en0, "cpt"), stage_settings(en25, "cpt")
    # Equal token budgets: same steps, batch and sequence length.
    assert (s0.max_steps, s0.micro_batch_size, s0.sequence_len) == (s25.max_steps, s25.micro_batch_size, 256)
    assert s0.learning_rate == s25.learning_rate and en0.seed == en25.seed
    sft = recipes[f"sft-{sc.tiers[-1]}"]
    assert sft.base_model == str(tmp_path / "cpt-en25" / "final")
    assert sft.ltk.stages.sft.tier == sc.tiers[-1] and sft.ltk.stages.cpt.enabled is False
    assert stage_settings(sft, "sft").num_epochs == 1.0
    # No warmup in the SFT arms: a warmup step at lr 0 would leave the smallest tier untrained.
    assert stage_settings(sft, "sft").warmup_ratio == 0.0
    # Like-for-like vocabulary arms: both train whole embedding matrices plus LoRA.
    sv, s25c = stage_settings(vocab, "cpt"), s25
    assert (
        "embed_tokens" in (sv.lora_modules_to_save or [])
        and sv.lora_modules_to_save == s25c.lora_modules_to_save
    )


def _row(arm: str, kind: str, tbpb: float, ebpb: float, chrf: float = 10.0, tier: int | None = None) -> dict:
    return {
        "arm": arm, "kind": kind, "english_ratio": None, "vocabulary": "keep", "tier": tier,
        "target_bpb": tbpb, "english_bpb": ebpb, "target_ppl": 30.0, "english_ppl": 2 ** (4 * ebpb),
        "codeswitch_answers": 0.5, "codeswitch_words": 0.2, "chrf_to_target": chrf, "chrf_to_english": chrf,
    }  # fmt: skip


REFS = [f"Ndipo Mulungu anati, pakhale kuwala pa tsiku la {n}, ndipo kudakhala kuwala." for n in range(20)]


def _metrics(tbpb: float, ebpb: float, quality: float = 1.0, switched: int = 10) -> dict:
    """Per-item eval metrics of a synthetic arm: 20 chapters whose difficulty is shared by every arm (as
    real chapters are), 20 verse translations keeping ``quality`` of each reference, 20 answers."""
    import math

    import numpy as np

    from ltk.evaluate.translation import score_with_items

    rng = np.random.default_rng(0)
    difficulty, n_bytes = rng.uniform(0.7, 1.3, 20), rng.integers(2000, 6000, 20)
    noise = np.random.default_rng(int(tbpb * 1000 + ebpb * 10)).normal(0, 0.005, 20)

    def bpb(v: float) -> dict:
        return {"items": [{"id": str(i), "nll": float(v * d * (1 + e) * math.log(2) * b), "tokens": 100,
                           "bytes": int(b)} for i, (d, e, b) in enumerate(zip(difficulty, noise, n_bytes, strict=True))]}  # fmt: skip

    ids = [str(i) for i in range(20)]
    _, items = score_with_items([r[: int(len(r) * quality)] for r in REFS], REFS, ids)
    answers = [{"id": i, "switched": int(i) < switched, "words": 10, "non_target_words": 0} for i in ids]
    return {
        "bpb": {"target": bpb(tbpb), "english": bpb(ebpb)},
        "chrf": {"sets": {"v": {"to_target": {"items": items}, "to_english": {"items": items}}}},
        "codeswitch": {"items": answers},
    }


def test_findings_verdicts() -> None:
    rows = [
        _row("base", "base", 2.0, 1.0),
        _row("cpt-en0", "cpt", 1.6, 1.3),
        _row("cpt-en25", "cpt", 1.7, 1.05),
        _row("cpt-en25-vocab+", "cpt", 1.8, 1.05),
        _row("sft-16", "sft", 1.7, 1.05, chrf=12.0, tier=16),
        _row("sft-64", "sft", 1.7, 1.05, chrf=15.0, tier=64),
    ]
    rows[-1]["codeswitch_answers_ci"] = [0.3, 0.7]
    evals = {
        "base": _metrics(2.0, 1.0),
        "cpt-en0": _metrics(1.6, 1.3),
        "cpt-en25": _metrics(1.7, 1.05),
        "cpt-en25-vocab+": _metrics(1.8, 1.05),
        "sft-16": _metrics(1.7, 1.05, quality=0.4),
        "sft-64": _metrics(1.7, 1.05, quality=1.0),
    }
    found = findings(rows, evals)
    assert [f["verdict"] for f in found] == ["holds", "holds", "holds", "holds", "holds", "contradicted"]
    assert "excludes 0" in found[0]["reason"] and "20 documents" in found[0]["reason"]
    assert found[0]["differences"][0]["ci"][1] < 0  # en0 - base target bpb: clearly lower
    # English degrades as much with mixing as without: en0 - en25 is no effect, so that part is
    # inconclusive; and extension that helps contradicts "extension hurts".
    evals["cpt-en25"] = _metrics(1.7, 1.3)
    evals["cpt-en25-vocab+"] = _metrics(1.6, 1.05)
    evals["sft-64"] = _metrics(1.7, 1.05, quality=0.4)  # the same translations: no difference
    found = findings(rows, evals)
    assert [f["verdict"] for f in found[:5]] == ["holds", "inconclusive", "contradicted", "inconclusive",
                                                 "inconclusive"]  # fmt: skip
    assert "contains 0" in found[1]["reason"] and "the opposite of the claim" in found[2]["reason"]
    # Without per-item scores (old eval files) no paired claim can be decided; the code-switch rate is
    # read from the row's own Wilson interval (30-70% lies outside the study's 2-5%).
    assert [f["verdict"] for f in findings(rows)] == ["inconclusive"] * 5 + ["contradicted"]


def test_findings_of_a_half_done_experiment() -> None:
    """Arms resume across sittings, so a table is often read before every arm has run: each claim is read
    from the arms it needs, and a claim whose arms are missing names them and the command to run them."""
    rows = [_row("base", "base", 2.0, 1.0), _row("cpt-en25", "cpt", 1.7, 1.05),
            _row("sft-64", "sft", 1.7, 1.05, tier=64)]  # fmt: skip
    evals = {"base": _metrics(2.0, 1.0), "cpt-en25": _metrics(1.7, 1.05), "sft-64": _metrics(1.7, 1.05)}
    found = {f["claim"]: f for f in findings(rows, evals)}

    def claim(start: str) -> dict:
        return next(f for c, f in found.items() if c.startswith(start))

    pretraining = claim("continual pretraining")
    assert pretraining["verdict"] == "holds" and "en25 - base: holds" in pretraining["reason"]
    assert "en0" not in pretraining["measured"]
    english = claim("without English mixing")
    assert english["verdict"] == "not measured" and "--only cpt-en0" in english["measured"]
    assert "--only cpt-en25-vocab+" in claim("at a small budget")["measured"]
    assert "(measured: sft-64)" in claim("more instruction data")["measured"]
    # Nothing pretrained yet: the pretraining claim says so rather than vanishing.
    assert [f["verdict"] for f in findings(rows[:1], evals)][0] == "not measured"

    from dataclasses import asdict

    result = {
        "date": "2026-12-01", "machine": "2-core CPU", "scale": asdict(SCALES["full"]), "seed": 0,
        "base_model": "embedded:smollm2-135m", "langpack": "ny", "rows": rows, "findings": list(found.values()),
        "total_seconds": 600.0, "not_measured": ["cpt-en0"],
    }  # fmt: skip
    md = render_markdown(result)
    assert "| cpt-en0 | not measured yet: `ltk experiment --scale full --only cpt-en0` |" in md
    assert "| not measured | not measured yet |" in md and "**not measured**" not in md
    assert "in 10 min," in md  # rows without recorded times: the sitting's wall time
    for r, (train, ev) in zip(rows, ((None, 700.0), (1260.0, 720.0), (200.0, 700.0)), strict=True):
        r["train_seconds"], r["eval_seconds"] = train, ev
    assert "60 min of training and evaluation over the arms (this sitting: 10 min)" in render_markdown(result)


def test_seed_spread() -> None:
    from ltk.experiment import seed_spread

    per_seed = {s: [_row("cpt-en0", "cpt", 1.6 + 0.1 * s, 1.3)] for s in range(3)}
    spread = seed_spread(per_seed)["cpt-en0"]["target_bpb"]
    assert spread["mean"] == pytest.approx(1.7) and spread["sd"] == pytest.approx(0.1)
    assert (spread["min"], spread["max"], spread["seeds"]) == (pytest.approx(1.6), pytest.approx(1.8), 3)


def test_markdown_and_plot(tmp_path: Path) -> None:
    from dataclasses import asdict

    rows = [
        _row("base", "base", 2.0, 1.0),
        _row("cpt-en0", "cpt", 1.6, 1.3),
        _row("sft-16", "sft", 1.7, 1.0, tier=16),
    ]
    result = {
        "date": "2026-11-26", "machine": "2-core CPU", "scale": asdict(SCALES["tiny"]), "seed": 0,
        "base_model": "embedded:smollm2-135m", "langpack": "ny", "rows": rows, "findings": findings(rows),
        "total_seconds": 60.0,
    }  # fmt: skip
    md = render_markdown(result)
    assert "| cpt-en0 | – | keep | – | 1.6000 | 1.3000 |" in md
    assert "14.69 -> 198.84" in md and "ltk experiment --scale tiny --seed 0" in md
    # Stage 3 on a smaller tier than the largest: the reproduce line names it (the default tier is implied).
    result["pref_tier"] = min(SCALES["tiny"].tiers)
    assert f"--pref-tier {min(SCALES['tiny'].tiers)} " in render_markdown(result)
    result["pref_tier"] = max(SCALES["tiny"].tiers)
    assert "--pref-tier" not in render_markdown(result)
    png = plot(result, tmp_path / "findings.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # The plot of stage 3 on a smaller tier names that tier: same numbers, different picture (and the same
    # input twice gives the same bytes, so the difference is the label).
    low, high = min(SCALES["tiny"].tiers), max(SCALES["tiny"].tiers)
    pictures = []
    for name, tier in (("a", high), ("b", high), ("c", low)):
        result["rows"] = [*rows, _row("sft+pref", "pref", 1.7, 1.0, tier=tier)]
        pictures.append(plot(result, tmp_path / f"pref-{name}.png").read_bytes())
    assert pictures[0] == pictures[1] and pictures[2] != pictures[0]
    result["rows"] = rows
    text = render_headline({"base": {"target_bpb": 2.0, "english_bpb": 1.0, "codeswitch_answers": 0.25,
                                     "chrf_to_target": 9.5}}, "Chichewa")  # fmt: skip
    assert "2.0000" in text and "25%" in text and "[brackets]" not in text
    text = render_headline({"base": {"target_bpb": 2.0, "target_bpb_ci": [1.9, 2.1], "codeswitch_answers": 0.25,
                                     "codeswitch_answers_ci": [0.1, 0.5]}}, "Chichewa")  # fmt: skip
    assert "2.0000 [1.9000, 2.1000]" in text and "25% [10, 50]" in text and "95% intervals" in text


def test_seeds_table_and_plot_with_an_arm_measured_on_one_seed_only(tmp_path: Path) -> None:
    from dataclasses import asdict

    from ltk.experiment import PREF_ARM, seed_spread

    seed0 = [_row("base", "base", 2.0, 1.0), _row("cpt-en0", "cpt", 1.6, 1.3), _row("sft-16", "sft", 1.7, 1.0, tier=16),
             _row(PREF_ARM, "pref", 1.7, 1.0, tier=16)]  # fmt: skip
    seed1 = [
        _row("base", "base", 2.0, 1.0),
        _row("cpt-en0", "cpt", 1.7, 1.2),
        _row("sft-16", "sft", 1.8, 1.1, tier=16),
    ]
    result = {
        "date": "2026-12-01", "machine": "2-core CPU", "scale": asdict(SCALES["tiny"]), "seed": 0, "seeds": [0, 1],
        "base_model": "embedded:smollm2-135m", "langpack": "ny", "rows": seed0, "findings": findings(seed0),
        "total_seconds": 60.0, "per_seed": {"1": {"rows": seed1, "failed": {}}},
        "spread": seed_spread({0: seed0, 1: seed1}),
    }  # fmt: skip
    md = render_markdown(result)
    assert "| sft+pref | 1.7000 (one seed only) |" in md and "1.6500 ± 0.0707 (1.6000-1.7000, 2 seeds)" in md
    # Without --with-pref the cached first-seed pref arm is reused, and only then: the command says so.
    assert "`ltk experiment --scale tiny --seeds 0,1`" in md
    result["per_seed"]["1"]["rows"] = [*seed1, _row(PREF_ARM, "pref", 1.8, 1.1, tier=16)]
    assert "--with-pref --seeds 0,1" in render_markdown(result)
    png = plot(result, tmp_path / "findings-seeds.png")  # other seeds drawn over the first seed's bars
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_arms_cover_the_study() -> None:
    names = [a.name for a in arms_for(SCALES["full"])]
    assert names == ["base", "cpt-en0", "cpt-en25", "cpt-en25-vocab+", "sft-64", "sft-256", "sft-1024"]
    assert Arm("x", "cpt").vocabulary == "keep"


def test_experiment_seeds_option_rejects_bad_values(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ltk.cli import main

    for bad in ("0,one", ","):
        res = CliRunner().invoke(
            main, ["experiment", "--scale", "tiny", "--seeds", bad, "--out", str(tmp_path)]
        )
        assert res.exit_code == 2 and "--seeds" in res.output, res.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_pref_tier_picks_the_sft_arm_stage_3_starts_from(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ltk.cli import main
    from ltk.experiment import PREF_ARM, arm_run_dir

    sc = SCALES["full"]
    arm = next(a for a in arms_for(sc, with_optional=True, pref_tier=256) if a.name == PREF_ARM)
    assert arm.tier == 256 and arm_run_dir(tmp_path, arm) == tmp_path / "runs" / "sft-256"
    default = next(a for a in arms_for(sc, with_optional=True) if a.name == PREF_ARM)
    assert default.tier == 1024
    with pytest.raises(UsageError, match="--pref-tier 100: scale full has SFT tiers 64, 256, 1024"):
        arms_for(sc, pref_tier=100)
    args = ["experiment", "--pref-tier", "100", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")]
    res = CliRunner().invoke(main, [*args, "--build-root", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--pref-tier 100" in res.output, res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "b").exists()  # rejected before any work


def test_experiment_report_with_nothing_measured(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ltk.cli import main

    args = ["experiment", "--scale", "small", "--report", "--work", str(tmp_path / "work")]
    res = CliRunner().invoke(
        main, [*args, "--out", str(tmp_path / "out"), "--build-root", str(tmp_path / "b")]
    )
    assert res.exit_code == 2, res.output
    assert "no arm of scale small is measured" in res.output and "ltk experiment --scale small" in res.output
    assert not list(tmp_path.iterdir())  # no build, no output, no work folder
