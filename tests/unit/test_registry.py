"""Discovery and lookup: built-ins, ``ltk.langpacks`` entry points, $LTK_LANGPACK_PATH, --langpack-path."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ltk.cli import main
from ltk.errors import LtkError, UsageError, ValidationError
from ltk.langpack.scaffold import scaffold
from ltk.registry import ENTRY_POINT_GROUP, ENV_VAR, get_langpack, load_registry, search_path

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"


@pytest.fixture(autouse=True)
def _no_extra_langpacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def make_distribution(site: Path, module: str, entry_points: dict[str, str], body: str) -> None:
    """A minimal installed distribution (what pip leaves behind): a module and its .dist-info."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def community_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 'pip-installed' community package declaring two entry points: a function and a path attribute."""
    site = tmp_path / "site"
    module = "ltk_test_community_langpacks"
    make_distribution(
        site,
        module,
        {"yoruba": f"{module}:langpacks_dir", "hausa": f"{module}:HAUSA_DIR"},
        """
        from pathlib import Path

        HAUSA_DIR = str(Path(__file__).parent / "more")


        def langpacks_dir():
            return Path(__file__).parent / "packs"
        """,
    )
    scaffold("yo", site / module / "packs")
    scaffold("hau_Latn", site / module / "more")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(module, None)


def test_builtins_are_found_with_their_origin() -> None:
    registry = load_registry()
    assert len(registry) >= 15
    assert registry.get("sw").origin == "builtin"
    assert search_path()[0] == ("builtin", LANGPACKS)


def test_entry_point_langpacks_are_discovered(community_site: Path) -> None:
    registry = load_registry()
    assert registry.get("yor").origin == "entry-point:yoruba"
    assert registry.get("hau").origin == "entry-point:hausa"
    assert (
        registry.get("yo").root
        == (community_site / "ltk_test_community_langpacks" / "packs" / "yo").resolve()
    )
    assert registry.get("sw").origin == "builtin"
    result = CliRunner().invoke(main, ["langpacks", "list"])
    assert result.exit_code == 0, result.output
    codes = {line.split()[0] for line in result.output.splitlines()[1:] if line.strip()}
    assert {"yo", "ha", "sw", "ny"} <= codes
    shown = CliRunner().invoke(main, ["langpacks", "show", "yor_Latn"])
    assert shown.exit_code == 0 and shown.output.startswith("Yoruba (yo)")
    assert "(entry-point:yoruba)" in shown.output


def test_a_broken_entry_point_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    make_distribution(site, "ltk_test_broken_langpacks", {"broken": "ltk_test_broken_langpacks:missing"}, "")
    monkeypatch.syspath_prepend(str(site))
    try:
        with pytest.raises(LtkError, match="langpack entry point 'broken'.*failed to load"):
            load_registry()
        result = CliRunner().invoke(main, ["langpacks", "list"])
        assert result.exit_code == 1
        assert "error: langpack entry point 'broken'" in result.output
    finally:
        sys.modules.pop("ltk_test_broken_langpacks", None)


def test_env_path_adds_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    scaffold("yo", first)
    shutil.copytree(LANGPACKS / "sw", second / "sw")
    doc = yaml.safe_load((second / "sw" / "langpack.yml").read_text(encoding="utf-8"))
    doc["version"] = 99
    (second / "sw" / "langpack.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, f"{first}:{second}")
    registry = load_registry()
    assert registry.get("yo").origin == "env"
    assert registry.get("swh_Latn").spec.version == 99  # a later place overrides the built-in
    assert registry.get("swh_Latn").origin == "env"
    result = CliRunner().invoke(main, ["langpacks", "show", "yo"])
    assert result.exit_code == 0 and "Yoruba (yo)" in result.output


def test_langpack_path_option_takes_precedence_over_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir, opt_dir = tmp_path / "env", tmp_path / "opt"
    scaffold("yo", env_dir)
    scaffold("yo", opt_dir, name="Yoruba from the option")
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert load_registry([opt_dir]).get("yo").spec.language.name == "Yoruba from the option"
    result = CliRunner().invoke(main, ["langpacks", "list", "--langpack-path", str(opt_dir), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["code"]: row for row in yaml.safe_load(result.output)}
    assert rows["yo"]["origin"] == "path" and rows["yo"]["name"] == "Yoruba from the option"
    # a single langpack folder works as well as a folder of langpacks
    single = CliRunner().invoke(main, ["langpacks", "show", "yo", "--langpack-path", str(env_dir / "yo")])
    assert single.exit_code == 0 and "Yoruba (yo)" in single.output


def test_missing_langpack_path_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["langpacks", "list", "--langpack-path", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such folder" in result.output


def test_broken_pack_on_the_path_is_skipped_with_a_warning(tmp_path: Path) -> None:
    scaffold("wo", tmp_path)  # a language ltk ships no pack for
    (tmp_path / "wo" / "langpack.yml").write_text("version: [\n", encoding="utf-8")
    registry = load_registry([tmp_path])
    assert str(tmp_path / "wo") in registry.broken
    result = CliRunner().invoke(main, ["langpacks", "list", "--langpack-path", str(tmp_path)])
    assert result.exit_code == 0
    assert "warning: skipped invalid langpack" in result.output and "malformed YAML" in result.output
    with pytest.raises(ValidationError, match="malformed YAML"):
        registry.get("wo")  # asking for it by folder name shows why it is broken


@pytest.mark.parametrize("code", ["sw", "swa", "swh", "swh_Latn", "SWH-LATN", " sw ", "kiswahili"])
def test_codes_normalise_to_swahili(code: str) -> None:
    assert load_registry().get(code).code == "sw"


@pytest.mark.parametrize(("typed", "hint"), [("swhh", "sw"), ("swahilli", "sw"), ("chichew", "ny")])
def test_unknown_code_suggests_and_exits_2(typed: str, hint: str) -> None:
    with pytest.raises(UsageError, match=rf"Did you mean: .*\b{hint}\b"):
        load_registry().get(typed)
    result = CliRunner().invoke(main, ["langpacks", "show", typed])
    assert result.exit_code == 2
    assert "Did you mean" in result.output
    assert "`ltk langpacks list`" in result.output and f"`ltk langpacks new {typed}`" in result.output


def test_unknown_code_without_a_close_match_still_says_how_to_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["langpacks", "show", "qqqqqq"])
    assert result.exit_code == 2
    assert "No langpack for 'qqqqqq'. Run `ltk langpacks list`" in result.output


def test_get_langpack_accepts_a_folder_path(tmp_path: Path) -> None:
    folder = scaffold("yo", tmp_path)
    assert get_langpack(str(folder)).spec.language.flores == "yor_Latn"
    assert get_langpack(str(folder / "langpack.yml")).code == "yo"
