"""Recipes: committed ones re-render byte-for-byte, round-trip, validate strictly, resolve stages."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ltk import __version__
from ltk.assets import EMBEDDED_NAME
from ltk.cli import main
from ltk.errors import ValidationError
from ltk.recipe.load import StageSettings, load_recipe, stage_settings, validate_recipe
from ltk.recipe.render import is_edited, recipe_to_yaml, render_recipe, write_recipe
from ltk.recipe.schema import PLUGIN_CLASS
from ltk.registry import get_langpack
from ltk.train.budget import plan_steps

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "recipes").glob("*.yml"))


def test_there_are_committed_recipes() -> None:
    assert {p.stem for p in COMMITTED} >= {"ny", "sw"}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_recipe_rerenders_byte_for_byte(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From an empty folder: rendering depends on the langpack only, never on build outputs existing.
    monkeypatch.chdir(tmp_path)
    pack = get_langpack(path.stem)
    assert render_recipe(pack, Path("build"), Path("recipes")) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_recipe_validates_and_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    recipe = load_recipe(path)
    assert text.startswith("# ltk recipe for ")
    body_only = recipe_to_yaml(recipe)
    # Serialising the loaded recipe gives the same document (header comments aside).
    assert yaml.safe_load(body_only) == yaml.safe_load(text)
    assert recipe_to_yaml(load_recipe(path)) == body_only
    assert recipe.base_model == EMBEDDED_NAME
    assert PLUGIN_CLASS in recipe.plugins


def test_header_names_langpack_version_ltk_and_command() -> None:
    text = (REPO / "recipes" / "ny.yml").read_text()
    head = text.split("\n\n", 1)[0]
    assert "langpack 'ny' version 1" in head
    assert f"ltk {__version__}" in head
    assert "ltk train recipes/ny.yml" in head
    assert "Chichewa" in head


def test_write_recipe_is_atomic_and_deterministic(tmp_path: Path) -> None:
    pack = get_langpack("sw")
    first = write_recipe(pack, tmp_path / "no-such-build", tmp_path / "recipes").path
    data1 = first.read_bytes()
    again = write_recipe(pack, tmp_path / "no-such-build", tmp_path / "recipes")
    second = again.path
    assert first == second == tmp_path / "recipes" / "sw.yml" and again.status == "unchanged"
    assert second.read_bytes() == data1
    assert [p.name for p in (tmp_path / "recipes").iterdir()] == ["sw.yml"]  # no temp files left
    recipe = load_recipe(first)
    assert recipe.ltk.build_dir == f"{(tmp_path / 'no-such-build').as_posix()}/sw"


def test_an_edited_recipe_is_kept_and_re_rendered_only_on_purpose(tmp_path: Path) -> None:
    pack = get_langpack("ny")
    path = write_recipe(pack, tmp_path / "build", tmp_path / "recipes").path
    rendered = path.read_text()
    assert not is_edited(rendered)
    edited = rendered.replace("learning_rate: 0.0001", "learning_rate: 0.0002", 1)
    assert edited != rendered and is_edited(edited)
    path.write_text(edited)
    # A re-render (as `ltk build-langpack ny` does when resuming) keeps the user's file...
    again = write_recipe(pack, tmp_path / "build", tmp_path / "recipes", base_model="some/other-model")
    assert again.kept and path.read_text() == edited
    assert again.rendered is not None and "base_model: some/other-model" in again.rendered.read_text()
    # ...an unedited one is simply re-rendered, and --overwrite-recipe replaces an edited one.
    forced = write_recipe(pack, tmp_path / "build", tmp_path / "recipes", overwrite=True)
    assert forced.status == "written" and path.read_text() == rendered
    # The command says so, and how to re-render on purpose.
    path.write_text(edited)
    result = CliRunner().invoke(
        main,
        [
            "build-langpack",
            "ny",
            "--stage",
            "recipe",
            "--out",
            str(tmp_path / "build"),
            "--recipes-dir",
            str(tmp_path / "recipes"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kept (you edited it)" in result.output and path.read_text() == edited


def test_recipe_paths_follow_the_build_layout() -> None:
    """The recipe names exactly the folders the build writes (one layout, no guessing)."""
    from ltk.layout import BuildLayout

    pack = get_langpack("ny")
    layout = BuildLayout(Path("/data/build"), "ny")
    data = yaml.safe_load(render_recipe(pack, layout.root, Path("recipes")))
    stages, ev = data["ltk"]["stages"], data["ltk"]["eval"]
    assert data["ltk"]["build_dir"] == str(layout.dir)
    assert stages["cpt"]["data"] == data["datasets"][0]["path"] == str(layout.corpus_train)
    assert stages["sft"]["data"] == str(layout.tier(stages["sft"]["tier"]))
    assert (ev["heldout_target"], ev["heldout_english"], ev["prompts"]) == tuple(
        str(p) for p in (layout.heldout_target, layout.heldout_english, layout.heldout_prompts)
    )


def test_base_model_override_is_written() -> None:
    text = render_recipe(get_langpack("ny"), Path("build"), Path("recipes"), base_model="/models/llama")
    assert yaml.safe_load(text)["base_model"] == "/models/llama"


def test_rendered_values_follow_the_langpack() -> None:
    pack = get_langpack("ny")
    data = yaml.safe_load(render_recipe(pack, Path("build"), Path("recipes")))
    ltk = data["ltk"]
    assert ltk["language"] == "nya_Latn"
    assert ltk["english"] == {"ratio": pack.spec.english.ratio, "premixed": True}
    assert ltk["stages"]["sft"]["tier"] == pack.spec.instructions.tiers[0]
    assert ltk["stages"]["sft"]["data"] == "build/ny/instructions/tier-1000/train.jsonl"
    assert ltk["vocabulary"]["policy"] == pack.spec.tokenizer.policy
    assert data["datasets"][0]["path"] == "build/ny/corpus/train"
    assert data["lora_modules_to_save"] == ["embed_tokens", "lm_head"]
    # No step count fixed at render time: once over the built (budgeted) corpus, steps follow at train time.
    assert "max_steps" not in data and data["num_epochs"] == 1.0


def _settings(**kw) -> StageSettings:
    recipe = load_recipe(REPO / "recipes" / "ny.yml")
    return replace(stage_settings(recipe, "cpt"), **kw)


def test_steps_follow_rows_world_size_and_epochs() -> None:
    s = _settings(micro_batch_size=4, gradient_accumulation_steps=8, max_steps=None, num_epochs=1.0)
    one = plan_steps(None, s, packed_rows=1024, world_size=1)
    eight = plan_steps(None, s, packed_rows=1024, world_size=8)
    assert (one.steps, eight.steps) == (32, 4)  # the same tokens, 8x the rows per step
    assert one.tokens == eight.tokens == 1024 * s.sequence_len
    assert plan_steps(None, replace(s, num_epochs=2.0), packed_rows=1024, world_size=1).steps == 64
    # Trainer's own rounding: ceil over per-process batches, then over accumulation
    assert plan_steps(None, s, packed_rows=33, world_size=1).steps == 2
    fixed = plan_steps(None, replace(s, max_steps=10), packed_rows=1024, world_size=1)
    assert fixed.steps == 10 and fixed.steps_from == "max_steps" and fixed.epochs == round(10 / 32, 4)


def _data() -> dict:
    return yaml.safe_load((REPO / "recipes" / "ny.yml").read_text())


def _problems(data: dict) -> str:
    with pytest.raises(ValidationError) as info:
        validate_recipe(data, "r.yml")
    return str(info.value)


def test_unknown_top_level_key_is_an_error_with_suggestion() -> None:
    data = _data()
    data["learning_rat"] = 0.1
    message = _problems(data)
    assert "r.yml: learning_rat: unknown key" in message
    assert "did you mean 'learning_rate'?" in message


def test_unknown_key_in_ltk_block_names_its_path() -> None:
    data = _data()
    data["ltk"]["stages"]["cpt"]["merged"] = True
    data["ltk"]["evall"] = {}
    message = _problems(data)
    assert "2 problems found" in message
    assert "ltk.stages.cpt.merged: unknown key" in message
    assert "did you mean 'merge'?" in message
    assert "ltk.evall: unknown key" in message


def test_bad_values_are_reported_together() -> None:
    data = _data()
    data["sequence_len"] = 0
    data["ltk"]["stages"]["sft"]["save"] = "zip"
    data["plugins"] = []
    message = _problems(data)
    assert "sequence_len" in message and "ltk.stages.sft.save" in message
    assert "use one of: 'merged' or 'adapter'" in message


def test_plugin_must_be_listed() -> None:
    data = _data()
    data["plugins"] = ["other.Plugin"]
    assert PLUGIN_CLASS in _problems(data)


def test_english_not_premixed_needs_data() -> None:
    data = _data()
    data["ltk"]["english"]["premixed"] = False
    assert "premixed: false with ratio > 0 needs data" in _problems(data)


def test_stage_settings_apply_overrides() -> None:
    recipe = load_recipe(REPO / "recipes" / "ny.yml")
    cpt = stage_settings(recipe, "cpt")
    sft = stage_settings(recipe, "sft")
    assert cpt.output_dir == "runs/ny/cpt" and sft.output_dir == "runs/ny/sft"
    assert cpt.max_steps is None and cpt.num_epochs == 1.0 and cpt.lora_r == recipe.lora_r
    assert cpt.lora_modules_to_save == ["embed_tokens", "lm_head"] and cpt.save == "merged"
    assert sft.max_steps is None and sft.num_epochs == 3.0  # epochs over the tier, not the cpt step count
    assert sft.lora_r == 16 and sft.lora_modules_to_save == []
    assert sft.data.endswith("tier-1000/train.jsonl")
    assert stage_settings(recipe, "sft", max_steps=7).max_steps == 7


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text((REPO / "recipes" / "ny.yml").read_text() + "seed: 3\n")
    with pytest.raises(ValidationError, match="duplicate key 'seed'"):
        load_recipe(path)


def test_cli_reports_bad_recipe_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    data = _data()
    data["micro_batch"] = 2
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["train", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "micro_batch: unknown key" in result.output
    assert "did you mean 'micro_batch_size'?" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_cli_missing_recipe_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2
    assert re.search(r"nope\.yml: file not found", result.output)
