"""Every shipped langpack validates and carries a datasheet: CI rejects a broken contribution here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ltk.cli import main
from ltk.langpack.load import LANGPACK_FILE, load_langpack
from ltk.langpack.schema import HubSource
from ltk.langpack.validate import contribution_problems
from ltk.languages import flores200_codes
from ltk.registry import builtin_langpacks_dir, load_registry

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
SHIPPED = sorted(
    p.parent.name for p in LANGPACKS.glob(f"*/{LANGPACK_FILE}") if not p.parent.name.startswith("_")
)
# The 52 two-letter configs of MBZUAI/Bactrian-X (its dataset card, "Data in 52 Languages").
BACTRIAN_X = {
    *("af", "ar", "az", "bn", "cs", "de", "en", "es", "et", "fa", "fi", "fr", "gl", "gu", "he", "hi", "hr"),
    *("id", "it", "ja", "ka", "kk", "km", "ko", "lt", "lv", "mk", "ml", "mn", "mr", "my", "ne", "nl", "pl"),
    *("ps", "pt", "ro", "ru", "si", "sl", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "xh"),
    "zh",
}


@pytest.fixture(autouse=True)
def _no_extra_langpacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTK_LANGPACK_PATH", raising=False)


def _sources(pack) -> list:
    spec = pack.spec
    out = [*spec.corpus.sources, *spec.english.sources, *spec.instructions.translate]
    out += spec.instructions.ready_made
    for pset in spec.parallel:
        out += [s for s in (pset.target, pset.english) if hasattr(s, "licence")]
    return out


def test_at_least_15_shipped_including_sw_and_ny() -> None:
    assert len(SHIPPED) >= 15
    assert {"sw", "ny"} <= set(SHIPPED)
    assert len(BACTRIAN_X) == 52


@pytest.mark.parametrize("code", SHIPPED)
def test_shipped_langpack_is_valid_and_documented(code: str) -> None:
    pack = load_langpack(LANGPACKS / code)
    spec = pack.spec
    assert spec.language.flores in flores200_codes()
    assert code in (spec.language.iso639_1, spec.language.iso639_3)
    readme = (LANGPACKS / code / "README.md").read_text(encoding="utf-8")
    assert "## Changelog" in readme and "- v1: initial" in readme
    assert re.search(rf"^- v{spec.version}:", readme, re.M), f"{code}: no changelog line for v{spec.version}"
    for heading in ("## Sources and licences", "## How to build", "## Known limits"):
        assert heading in readme, f"{code}/README.md lacks {heading!r}"
    for source in _sources(pack):
        for licence in source.licence.split(" AND "):
            assert licence in readme, f"{code}/README.md does not name licence {licence!r} of {source.name}"
        if isinstance(source, HubSource):
            assert source.dataset in readme, f"{code}/README.md does not name {source.dataset}"


@pytest.mark.parametrize("code", SHIPPED)
def test_shipped_langpack_passes_the_rules_validate_applies(code: str) -> None:
    """The same rules `ltk langpacks validate` applies to a contribution (TODOs, licences, datasheet)."""
    problems = contribution_problems(load_langpack(LANGPACKS / code))
    assert not problems, "\n".join(p.render() for p in problems)


@pytest.mark.parametrize("code", SHIPPED)
def test_shipped_langpack_has_no_todo_left_from_the_template(code: str) -> None:
    for name in ("langpack.yml", "README.md"):
        text = (LANGPACKS / code / name).read_text(encoding="utf-8")
        assert "TODO" not in text and "__CODE__" not in text, f"{code}/{name} still has template TODOs"


def test_shared_templates_have_no_todo() -> None:
    templates = sorted((LANGPACKS / "_shared").glob("*.yml"))
    assert templates
    for path in templates:
        assert "TODO" not in path.read_text(encoding="utf-8"), f"{path} still has TODOs"


@pytest.mark.parametrize("code", [c for c in SHIPPED if c not in ("ny",)])
def test_bactrian_x_langpacks_use_their_own_config(code: str) -> None:
    """The ready-made set is Bactrian-X's config for the same language, which must be one of its 52."""
    spec = load_langpack(LANGPACKS / code).spec
    bactrian = [s for s in spec.instructions.ready_made if s.dataset == "MBZUAI/Bactrian-X"]
    # A language Bactrian-X has uses its set; one it lacks (am ha ig rw so yo zu) names none.
    assert [s.config for s in bactrian] == ([spec.language.iso639_1] if code in BACTRIAN_X else [])
    assert all(s.licence == "CC-BY-NC-4.0" for s in bactrian)
    fineweb = [s for s in spec.corpus.sources if s.dataset == "HuggingFaceFW/fineweb-2"]
    assert fineweb and all(re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", s.config) for s in fineweb)
    assert all(s.licence == "ODC-By-1.0" for s in fineweb)


def test_registry_lists_every_shipped_pack_and_skips_the_template() -> None:
    registry = load_registry()
    assert not registry.broken
    assert sorted(p.code for p in registry) == SHIPPED
    assert not {"_template", "_shared"} & {p.code for p in registry}
    assert builtin_langpacks_dir().resolve() == LANGPACKS


def test_cli_validate_passes_on_everything_shipped() -> None:
    result = CliRunner().invoke(main, ["langpacks", "validate"])
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} langpack(s) valid." in result.output


def test_cli_list_shows_the_table() -> None:
    result = CliRunner().invoke(main, ["langpacks", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["CODE", "NAME", "FLORES", "SCRIPT", "SOURCES", "TIERS", "MIX", "VERSION"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip() and not line.startswith("\n")}
    assert rows["sw"][1:4] == ["Swahili", "swh_Latn", "Latn"]
    assert rows["ny"][5] == "1k/10k/50k"
    assert f"{len(SHIPPED)} langpacks." in result.output


def test_show_swh_latn_prints_the_same_pack_as_sw() -> None:
    runner = CliRunner()
    by_code = runner.invoke(main, ["langpacks", "show", "sw"])
    assert by_code.exit_code == 0, by_code.output
    assert by_code.output.startswith("Swahili (sw) - langpack version")
    for alias in ("swh_Latn", "swa", "swh", "SW", "swh-Latn", "kiswahili"):
        other = runner.invoke(main, ["langpacks", "show", alias])
        assert other.exit_code == 0, other.output
        assert other.output == by_code.output, alias


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("npi_Deva", "ne"),
        ("nep", "ne"),
        ("khk", "mn"),
        ("fil", "tl"),
        ("tgl_Latn", "tl"),
        ("pbt", "ps"),
        ("nya_Latn", "ny"),
        ("chichewa", "ny"),
        ("xho", "xh"),
        ("ben", "bn"),
    ],
)
def test_individual_and_flores_codes_find_their_pack(typed: str, code: str) -> None:
    assert load_registry().get(typed).code == code
