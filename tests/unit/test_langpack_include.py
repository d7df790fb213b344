"""``include:``: templates merged under a pack's own keys, never read from outside the langpacks folder,
never looping, and failing fast on deep or wide include bombs (hypothesis over random include graphs)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltk.cli import main
from ltk.errors import ValidationError
from ltk.langpack.include import MAX_DEPTH, MAX_FILES, resolve_includes
from ltk.langpack.load import load_langpack

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
SW = yaml.safe_load((LANGPACKS / "sw" / "langpack.yml").read_text(encoding="utf-8"))
TEMPLATED_PACKS = sorted(
    p.parent.name
    for p in LANGPACKS.glob("*/langpack.yml")
    if "include: _shared/fineweb-2.yml" in p.read_text(encoding="utf-8")
)


@pytest.fixture(autouse=True)
def _no_extra_langpacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTK_LANGPACK_PATH", raising=False)


def write(path: Path, doc: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def split_sw(root: Path) -> Path:
    """The Swahili pack cut in two: filters, eval and tokenizer in a template, the rest in the pack."""
    shared = {k: copy.deepcopy(SW[k]) for k in ("filters", "eval", "tokenizer", "english") if k in SW}
    own = {k: copy.deepcopy(v) for k, v in SW.items() if k not in shared}
    write(root / "_shared" / "base.yml", shared)
    return write(root / "xx" / "langpack.yml", {"include": "_shared/base.yml", **own})


def test_included_keys_are_merged_under_the_packs_own(tmp_path: Path) -> None:
    pack_file = split_sw(tmp_path)
    doc = yaml.safe_load(pack_file.read_text())
    doc["filters"] = {"min_chars": 123}  # overrides one key of a mapping the template sets
    doc["eval"] = {"parallel": []}  # a list is replaced whole, not appended to
    write(pack_file, doc)
    resolved = resolve_includes(pack_file)
    assert resolved.includes == ["_shared/base.yml"]
    assert resolved.data["filters"] == {**SW["filters"], "min_chars": 123}
    assert resolved.data["eval"]["parallel"] == []
    assert resolved.data["tokenizer"] == SW["tokenizer"]
    assert "include" not in resolved.data
    assert resolved.file_of("filters.min_chars", "?") == str(pack_file)
    assert resolved.file_of("filters.max_symbol_ratio", "?") == str(tmp_path / "_shared" / "base.yml")
    pack = load_langpack(pack_file.parent)
    assert pack.spec.filters.min_chars == 123 and pack.includes == ("_shared/base.yml",)


def test_a_bad_value_in_a_template_names_the_template(tmp_path: Path) -> None:
    pack_file = split_sw(tmp_path)
    template = tmp_path / "_shared" / "base.yml"
    shared = yaml.safe_load(template.read_text())
    shared["filters"]["max_symbol_ratio"] = 2
    shared["tokenizer"]["polcy"] = "keep"
    write(template, shared)
    result = CliRunner().invoke(main, ["langpacks", "validate", str(pack_file.parent)])
    assert result.exit_code == 2, result.output
    assert f"{template} (included by {pack_file}): filters.max_symbol_ratio" in result.output
    assert f"{template} (included by {pack_file}): tokenizer.polcy: unknown key" in result.output
    assert "did you mean 'policy'?" in result.output


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("../outside.yml", "escapes the langpacks folder"),
        ("/etc/passwd.yml", "must be a relative .yml path"),
        ("_shared/base.txt", "must be a relative .yml path"),
        ("_shared/missing.yml", "included file not found"),
        ("xx/langpack.yml", "cycle: langpack.yml -> langpack.yml"),
        (["_shared/base.yml", 3], "must be a path or a list of paths"),
        ([], "must be a path or a list of paths"),
    ],
)
def test_bad_includes_exit_2_naming_file_and_entry(tmp_path: Path, entry: object, words: str) -> None:
    root = tmp_path / "packs"
    pack_file = split_sw(root)
    write(tmp_path / "outside.yml", {"description": "read from outside"})
    doc = yaml.safe_load(pack_file.read_text())
    doc["include"] = entry
    write(pack_file, doc)
    result = CliRunner().invoke(main, ["langpacks", "validate", str(pack_file.parent)])
    assert result.exit_code == 2, result.output
    assert f"{pack_file}: include: {words}" in result.output
    assert "Traceback" not in result.output


def test_a_symlink_out_of_the_folder_is_an_escape(tmp_path: Path) -> None:
    root = tmp_path / "packs"
    pack_file = split_sw(root)
    write(tmp_path / "secret.yml", {"description": "outside"})
    (root / "_shared" / "link.yml").symlink_to(tmp_path / "secret.yml")
    doc = yaml.safe_load(pack_file.read_text())
    doc["include"] = "_shared/link.yml"
    write(pack_file, doc)
    with pytest.raises(ValidationError, match="escapes the langpacks folder"):
        load_langpack(pack_file.parent)


def test_a_cycle_between_templates_is_named(tmp_path: Path) -> None:
    pack_file = split_sw(tmp_path)
    write(tmp_path / "_shared" / "a.yml", {"include": "_shared/b.yml"})
    write(tmp_path / "_shared" / "b.yml", {"include": "_shared/a.yml"})
    doc = yaml.safe_load(pack_file.read_text())
    doc["include"] = "_shared/a.yml"
    write(pack_file, doc)
    with pytest.raises(ValidationError, match=r"cycle: langpack.yml -> a.yml -> b.yml -> a.yml"):
        resolve_includes(pack_file)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    graph=st.lists(
        st.lists(
            st.integers(0, 7) | st.sampled_from(["../x.yml", "/x.yml", "nope.yml", "t0.txt"]), max_size=6
        ),
        min_size=1,
        max_size=8,
    )
)
def test_random_include_graphs_resolve_or_fail_fast(tmp_path: Path, graph: list[list]) -> None:
    """Templates t0..t7 include each other at random (cycles, diamonds, escapes, repeats): the pack
    either resolves or raises ValidationError, in well under a second, never anything else."""
    root = tmp_path / f"g{abs(hash(str(graph)))}"
    for i, edges in enumerate(graph):
        entries = [f"_t/t{e}.yml" if isinstance(e, int) else e for e in edges]
        write(root / "_t" / f"t{i}.yml", {"include": entries, "description": f"t{i}"} if entries else {})
    pack_file = write(root / "xx" / "langpack.yml", {"include": "_t/t0.yml", "version": 1})
    start = time.perf_counter()
    try:
        resolved = resolve_includes(pack_file)
    except ValidationError as err:
        assert all(p.key == "include" or p.key.startswith("line") for p in err.problems)
    else:
        assert resolved.data["version"] == 1
        assert len(resolved.includes) <= MAX_FILES
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_include_bombs_fail_fast_with_exit_2(tmp_path: Path, shape: str) -> None:
    pack_file = split_sw(tmp_path)
    levels = 40 if shape == "deep" else 3
    width = 1 if shape == "deep" else 10  # 10 + 100 + 1000 reads if nothing stopped it
    for level in range(levels):
        write(tmp_path / "_b" / f"l{level}.yml", {"include": [f"_b/l{level + 1}.yml"] * width})
    write(tmp_path / "_b" / f"l{levels}.yml", {"description": "bottom"})
    doc = yaml.safe_load(pack_file.read_text())
    doc["include"] = "_b/l0.yml"
    write(pack_file, doc)
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["langpacks", "validate", str(pack_file.parent)])
    assert time.perf_counter() - start < 2.0
    assert result.exit_code == 2, result.output
    expected = f"more than {MAX_DEPTH} levels" if shape == "deep" else f"more than {MAX_FILES} included files"
    assert expected in result.output


def test_shipped_fineweb_2_packs_share_one_template() -> None:
    assert len(TEMPLATED_PACKS) >= 24
    template = yaml.safe_load((LANGPACKS / "_shared" / "fineweb-2.yml").read_text(encoding="utf-8"))
    for code in TEMPLATED_PACKS:
        pack = load_langpack(LANGPACKS / code)
        assert pack.includes == ("_shared/fineweb-2.yml",)
        dumped = pack.spec.model_dump(mode="json")
        assert dumped["english"]["sources"][0]["dataset"] == template["english"]["sources"][0]["dataset"]
        assert [s["name"] for s in dumped["instructions"]["translate"]] == [
            "alpaca-cleaned",
            "dolly-15k",
            "openorca",
        ]
        for ready in dumped["instructions"]["ready_made"]:  # Bactrian-X's config for the same language
            assert ready["config"] == pack.spec.language.iso639_1


def test_show_prints_the_resolved_pack() -> None:
    result = CliRunner().invoke(main, ["langpacks", "show", "km"])
    assert result.exit_code == 0, result.output
    assert "includes: _shared/fineweb-2.yml" in result.output
    shown = yaml.safe_load("version:" + result.output.split("\nversion:", 1)[1])  # after the header
    assert shown["english"]["ratio"] == 0.25 and shown["tokenizer"]["policy"] == "keep"  # from the template
    assert shown["corpus"]["sources"][0]["config"] == "khm_Khmr"  # from the pack
    assert "include" not in shown
