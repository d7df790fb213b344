"""Fast checks of stage 3 (pref): its recipe keys, how a pair is chosen, the experiment's sft+pref arm and
its verdicts. (Sampling and DPO on a real tiny model are in tests/integration/test_pref.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ltk.errors import ValidationError
from ltk.experiment import PREF_ARM, SCALES, arm_recipe, arm_run_dir, arms_for, findings
from ltk.recipe.load import load_recipe, stage_settings
from ltk.recipe.render import write_recipe
from ltk.recipe.schema import PrefStage
from ltk.registry import get_langpack
from ltk.train.prefs import BETWEEN, EMPTY, STAYS, SWITCHES, PromptRow, choose_pair, classify, clean_answer
from ltk.train.run import select_stages
from ltk.validation import override

sys.path.insert(0, str(Path(__file__).parent))
from test_quickstart_experiment import _metrics, _row


@pytest.fixture(scope="module")
def ny_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pref")
    return write_recipe(get_langpack("ny"), root / "build", root / "recipes").path


def test_pref_is_off_by_default_with_its_own_settings(ny_recipe: Path) -> None:
    recipe = load_recipe(ny_recipe)
    assert recipe.ltk.stages.pref.enabled is False
    assert select_stages(recipe, "all") == ["cpt", "sft"]
    on = override(recipe, {"ltk.stages.pref.enabled": True}, source="test")
    assert select_stages(on, "all") == ["cpt", "sft", "pref"]
    s = stage_settings(on, "pref")
    # Its own defaults (DPO's small step, its own adapter), prompts from the sft tier, saved merged.
    assert (s.learning_rate, s.num_epochs, s.lora_r, s.lora_alpha) == (5e-6, 1.0, 16, 32)
    assert s.data == recipe.ltk.stages.sft.data and s.save == "merged" and s.output_dir.endswith("pref")
    assert s.lora_modules_to_save == []


def test_pref_keys_are_validated(ny_recipe: Path) -> None:
    recipe = load_recipe(ny_recipe)
    with pytest.raises(ValidationError, match="judge_url needs judge_model"):
        override(recipe, {"ltk.stages.pref.judge_url": "http://localhost:8000/v1"}, source="test")
    with pytest.raises(ValidationError, match="samples_per_prompt"):
        override(recipe, {"ltk.stages.pref.samples_per_prompt": 1}, source="test")
    with pytest.raises(ValidationError, match="loss_type"):
        override(recipe, {"ltk.stages.pref.loss_type": "kto"}, source="test")


def test_classify_and_clean() -> None:
    spec = PrefStage()
    assert classify(0, 0, spec) == EMPTY
    assert classify(10, 1, spec) == STAYS  # 10% of the words: at the chosen limit
    assert classify(10, 3, spec) == BETWEEN
    assert classify(10, 5, spec) == BETWEEN  # half: not yet "switches" (more than half is)
    assert classify(10, 6, spec) == SWITCHES
    assert clean_answer("<think>\n\n</think>\n\nMoni!") == "Moni!"


def _samples(*shares: float | None) -> list[dict]:
    out = []
    for i, share in enumerate(shares):
        words, non_target = (0, 0) if share is None else (10, round(share * 10))
        out.append(
            {
                "index": i,
                "text": f"answer {i}",
                "share": share,
                "class": classify(words, non_target, PrefStage()),
            }
        )
    return out


def test_choose_pair_is_deterministic_and_says_how() -> None:
    prompt = PromptRow("p", [{"role": "user", "content": "Moni?"}], ("Moni bwanji.",))
    spec = PrefStage()
    # The cleanest staying sample is chosen (ties: the earlier one), the most switched one rejected.
    record, how = choose_pair(prompt, _samples(0.1, 0.0, 0.9, 0.0, 1.0, None), spec, {})
    assert how == "pair_from_sample"
    assert (record["chosen_sample"], record["rejected_sample"]) == (1, 4)
    assert record["row"]["chosen"] == [{"role": "assistant", "content": "answer 1"}]
    assert record["row"]["prompt"] == prompt.messages
    # No sample stays: the reference answer stands in, unless that is switched off.
    record, how = choose_pair(prompt, _samples(0.9, 0.3), spec, {})
    assert how == "pair_from_reference" and record["row"]["chosen"][0]["content"] == "Moni bwanji."
    assert choose_pair(prompt, _samples(0.9), PrefStage(reference_as_chosen=False), {}) == (
        None,
        "no_sample_stayed",
    )
    assert choose_pair(prompt, _samples(0.0, 0.3, None), spec, {}) == (None, "no_sample_switched")
    # A judge ranks the staying answers, and its minimum score drops weak ones.
    judged = {"p#0": 1.0, "p#1": 2.5}
    record, _ = choose_pair(prompt, _samples(0.0, 0.1, 1.0), spec, judged)
    assert record["chosen_sample"] == 1 and record["judge"] == {"chosen": 2.5}
    record, how = choose_pair(prompt, _samples(0.0, 1.0), PrefStage(judge_min_score=2.0), {"p#0": 1.0})
    assert how == "pair_from_reference"


def test_experiment_pref_arm(ny_recipe: Path, tmp_path: Path) -> None:
    sc = SCALES["small"]
    names = [a.name for a in arms_for(sc)]
    assert PREF_ARM not in names  # not in the default run
    arm = next(a for a in arms_for(sc, with_optional=True) if a.name == PREF_ARM)
    assert arm.kind == "pref" and arm.tier == max(sc.tiers) and arm.optional
    # It shares the largest sft arm's run folder: stage 3 starts from that arm's sft/final, reused.
    assert arm_run_dir(tmp_path, arm) == tmp_path / "runs" / f"sft-{max(sc.tiers)}"
    data = {
        "corpus_en25": tmp_path / "mixed",
        "corpus_en0": tmp_path / "en0",
        "tiers": {n: tmp_path / f"tier-{n}" / "train.jsonl" for n in sc.tiers},
        "sft_start": tmp_path / "cpt-en25" / "final",
    }
    recipe = arm_recipe(load_recipe(ny_recipe), arm, sc, tmp_path / "run", data)
    stages = recipe.ltk.stages
    assert (stages.cpt.enabled, stages.sft.enabled, stages.pref.enabled) == (False, False, True)
    assert stages.sft.data == str(data["tiers"][max(sc.tiers)]) and recipe.base_model == str(
        data["sft_start"]
    )
    s = stage_settings(recipe, "pref")
    assert s.data == stages.sft.data and s.learning_rate == 5e-5 and s.num_epochs == 2.0
    assert stages.pref.max_prompts == 32


def test_pref_verdicts() -> None:
    rows = [_row("sft-64", "sft", 1.7, 1.05, tier=64), _row(PREF_ARM, "pref", 1.7, 1.05, tier=64)]
    evals = {"sft-64": _metrics(1.7, 1.05, switched=10), PREF_ARM: _metrics(1.7, 1.05, switched=1)}
    found = {f["claim"][:40]: f for f in findings(rows, evals)}
    lower = next(f for k, f in found.items() if k.startswith("preference tuning on ltk's own pairs"))
    assert lower["verdict"] == "holds" and "only after: 0" in lower["measured"]
    nothing_worse = next(f for k, f in found.items() if k.startswith("preference tuning makes nothing"))
    assert nothing_worse["verdict"] == "holds" and "no clear regression" in nothing_worse["reason"]
    # Three fewer switches: McNemar cannot tell (inconclusive); English bits per byte clearly worse.
    evals[PREF_ARM] = _metrics(1.7, 1.3, switched=7)
    found = [f for f in findings(rows, evals) if f["claim"].startswith("preference tuning")]
    assert [f["verdict"] for f in found] == ["inconclusive", "contradicted"]
    assert "English bpb: contradicted" in found[1]["reason"]


def test_pref_models_are_a_stage_for_eval_and_reports() -> None:
    from ltk.evaluate import STAGE_ORDER
    from ltk.evaluate.run import guess_stage

    assert guess_stage("runs/ny/pref/final") == "pref"
    assert STAGE_ORDER[-1] == "pref"  # reports order it last; the latest stage's model is pref's
