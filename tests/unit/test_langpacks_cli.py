"""Bad langpacks through the real CLI: exit 2, a message naming the key and the fix, and nothing written."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ltk.cli import main
from ltk.langpack.load import load_langpack

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
SW = yaml.safe_load((LANGPACKS / "sw" / "langpack.yml").read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _no_extra_langpacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTK_LANGPACK_PATH", raising=False)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with a hash of its bytes (or the link target), to prove nothing was written."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def write_pack(root: Path, doc: dict | None = None, text: str | None = None, name: str = "xx") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    body = text if text is not None else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    (folder / "langpack.yml").write_text(body, encoding="utf-8")
    # Swahili's datasheet, so that only the change a test makes is a problem.
    (folder / "README.md").write_bytes((LANGPACKS / "sw" / "README.md").read_bytes())
    return folder


def validate(folder: Path) -> tuple[int, str]:
    before = snapshot(folder.parent)
    result = CliRunner().invoke(main, ["langpacks", "validate", str(folder)])
    assert snapshot(folder.parent) == before, "validate must not write anything"
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def mutated(change: Callable[[dict], None]) -> dict:
    doc = copy.deepcopy(SW)
    change(doc)
    return doc


def test_the_unmodified_copy_is_valid(tmp_path: Path) -> None:
    code, out = validate(write_pack(tmp_path, SW))
    assert code == 0, out
    assert "ok  xx (version 2)" in out


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[int(last) if last.isdigit() else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _rename(path: str, new: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[new] = node.pop(last)

    return change


def _add_source(source: dict) -> Callable[[dict], None]:
    return lambda doc: doc["corpus"]["sources"].append(source)


def _duplicate_first_source(doc: dict) -> None:
    again = dict(doc["corpus"]["sources"][0], name="fineweb-again")
    again.pop("share")
    doc["corpus"]["sources"].append(again)


BAD_DOCUMENTS = [
    # (id, change, key the message must name, words it must contain)
    ("unknown top-level key", _rename("tokenizer", "tokeniser"), "tokeniser", ["did you mean 'tokenizer'"]),
    (
        "unknown nested key",
        _rename("filters.langid_min_confidence", "langid_min_confidense"),
        "filters.langid_min_confidense",
        ["did you mean 'langid_min_confidence'"],
    ),
    (
        "unknown source key",
        _rename("corpus.sources.0.licence", "license"),
        "corpus.sources[0].license",
        ["did you mean 'licence'"],
    ),
    (
        "wrong type: int",
        _set("corpus.token_budget", "lots"),
        "corpus.token_budget",
        ["'lots'", "whole number"],
    ),
    ("wrong type: list", _set("instructions.tiers", "1000"), "instructions.tiers", ["'1000'", "YAML list"]),
    ("wrong type: mapping", _set("filters", [1, 2]), "filters", ["mapping"]),
    (
        "unknown flores code",
        _set("language.flores", "xyz_Latn"),
        "language.flores",
        ["'xyz_Latn'", "ltk langpacks codes"],
    ),
    ("malformed flores code", _set("language.flores", "swahili"), "language.flores", ["'swahili'", "fix:"]),
    ("script differs from flores", _set("language.script", "Arab"), "language", ["differs", "fix:"]),
    ("ratio above 1", _set("english.ratio", 1.5), "english.ratio", ["1.5", "smaller"]),
    ("ratio below 0", _set("filters.max_digit_ratio", -0.1), "filters.max_digit_ratio", ["-0.1", "larger"]),
    ("share above 1", _set("corpus.sources.0.share", 2), "corpus.sources[0].share", ["2", "fix:"]),
    (
        "tiers not increasing",
        _set("instructions.tiers", [1000, 500, 950000]),
        "instructions.tiers",
        ["increasing", "[1000, 500, 950000]"],
    ),
    ("tiers repeated", _set("instructions.tiers", [1000, 1000]), "instructions.tiers", ["increasing"]),
    (
        "duplicate source",
        _duplicate_first_source,
        "corpus.sources[2]",
        ["duplicate source", "corpus.sources[0]"],
    ),
    (
        "duplicate source name",
        lambda d: d["english"]["sources"][0].update(name="fineweb-2-swh"),
        "english.sources[0].name",
        ["duplicate source name", "unique name"],
    ),
    (
        "path escaping with ../",
        _add_source({"name": "escape", "kind": "local", "path": "../secret.txt", "licence": "MIT"}),
        "corpus.sources[2].path",
        ["'../secret.txt'", "inside the langpack folder"],
    ),
    (
        "absolute path",
        _add_source({"name": "abs", "kind": "local", "path": "/etc/passwd.txt", "licence": "MIT"}),
        "corpus.sources[2].path",
        ["'/etc/passwd.txt'", "relative path"],
    ),
    (
        "plain-http url",
        _set("corpus.sources.0.url", "http://huggingface.co/datasets/HuggingFaceFW/fineweb-2"),
        "corpus.sources[0].url",
        ["https", "'http://huggingface.co"],
    ),
    (
        "plain-http download source",
        _add_source(
            {
                "name": "dl",
                "kind": "url",
                "url": "http://example.org/a.txt",
                "file_format": "txt",
                "licence": "MIT",
            }
        ),
        "corpus.sources[2].url",
        ["https"],
    ),
    (
        "missing licence",
        _set("corpus.sources.0.licence", KeyError),
        "corpus.sources[0].licence",
        ["Field required", "add this key"],
    ),
    ("empty licence", _set("corpus.sources.0.licence", ""), "corpus.sources[0].licence", ["non-empty"]),
    (
        "unknown source kind",
        _set("corpus.sources.0.kind", "ftp"),
        "corpus.sources[0]",
        ["'ftp'", "hf, local, url, package"],
    ),
    ("missing version", _set("version", KeyError), "version", ["Field required"]),
]


@pytest.mark.parametrize(
    ("change", "key", "words"), [b[1:] for b in BAD_DOCUMENTS], ids=[b[0] for b in BAD_DOCUMENTS]
)
def test_bad_document_exits_2_naming_key_value_and_fix(
    tmp_path: Path, change: Callable[[dict], None], key: str, words: list[str]
) -> None:
    folder = write_pack(tmp_path, mutated(change))
    code, out = validate(folder)
    assert code == 2, out
    assert f"{folder / 'langpack.yml'}: {key}:" in out, out
    assert "fix:" in out, out
    for word in words:
        assert word in out, out


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("version: 1\nlanguage: [unclosed\n", "line 3, column 1", ["malformed YAML"]),
        (
            "version: 1\nlanguage:\n  name: Swahili\n  name: Kiswahili\n",
            "line 4, column 3",
            ["duplicate key 'name'"],
        ),
        ("version: 1\n\tlanguage: x\n", "line 2", ["malformed YAML"]),
        ("created: 2001-02-30\n", "", ["malformed YAML value", "quote the value"]),
        ("- just\n- a list\n", "(top level)", ["must be a YAML mapping"]),
        ("", "(top level)", ["must be a YAML mapping"]),
        (
            "x: !!python/object/apply:os.system ['echo pwned']\n",
            "line 1",
            ["could not determine a constructor"],
        ),
    ],
    ids=["malformed", "duplicate-key", "tab-indent", "bad-date", "not-a-mapping", "empty", "python-tag"],
)
def test_bad_yaml_exits_2_naming_the_place(tmp_path: Path, text: str, where: str, words: list[str]) -> None:
    folder = write_pack(tmp_path, text=text)
    code, out = validate(folder)
    assert code == 2, out
    assert f"{folder / 'langpack.yml'}: {where}" in out
    assert "fix:" in out
    for word in words:
        assert word in out, out


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def change(doc: dict) -> None:
        doc["english"]["ratio"] = 2
        doc["instructions"]["tiers"] = [5, 1]
        doc["tokeniser"] = doc.pop("tokenizer")
        del doc["corpus"]["sources"][1]["licence"]

    code, out = validate(write_pack(tmp_path, mutated(change)))
    assert code == 2
    assert "4 problems found:" in out
    for key in ("english.ratio", "instructions.tiers", "tokeniser", "corpus.sources[1].licence"):
        assert f": {key}:" in out


def test_symlink_escaping_the_folder_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n", encoding="utf-8")
    doc = mutated(
        _add_source({"name": "linked", "kind": "local", "path": "data/secret.txt", "licence": "MIT"})
    )
    folder = write_pack(tmp_path / "packs", doc)
    (folder / "data").symlink_to(outside, target_is_directory=True)
    code, out = validate(folder)
    assert code == 2, out
    assert "corpus.sources[2].path: path escapes the langpack folder (got 'data/secret.txt')" in out
    # the same data through a link that stays inside is fine
    (folder / "data").unlink()
    (folder / "real").mkdir()
    (folder / "data").symlink_to(folder / "real", target_is_directory=True)
    code, out = validate(folder)
    assert code == 0, out


def test_validate_reports_a_folder_without_langpack(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["langpacks", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "no langpack.yml here" in result.output


def test_validate_with_no_argument_reports_broken_packs_on_the_path(tmp_path: Path) -> None:
    write_pack(tmp_path, mutated(_set("english.ratio", 3)), name="zz")
    result = CliRunner().invoke(main, ["langpacks", "validate", "--langpack-path", str(tmp_path)])
    assert result.exit_code == 2
    assert "zz/langpack.yml: english.ratio" in result.output


# ------------------------------------------------------------------------------------------------- new
def test_new_scaffolds_a_loadable_pack_that_validate_rejects_until_todos_are_gone(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["langpacks", "new", "yor_Latn", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "yo"
    assert f"created {folder}/" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data", "langpack.yml"]
    text = (folder / "langpack.yml").read_text(encoding="utf-8")
    assert "TODO" in text and "__" not in text.replace("__init__", "")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Yoruba (yo) langpack: datasheet")
    assert "## Contribution checklist" in readme and "- v1: initial" in readme
    pack = load_langpack(folder)
    lang = pack.spec.language
    assert (lang.name, lang.iso639_1, lang.iso639_3, lang.script, lang.flores) == (
        "Yoruba",
        "yo",
        "yor",
        "Latn",
        "yor_Latn",
    )
    assert pack.spec.corpus.sources[0].path == "data/corpus.txt"
    assert (folder / "data" / "corpus.txt").read_text(encoding="utf-8").startswith("TODO")
    assert [p.name for p in tmp_path.iterdir()] == ["yo"], "no temporary folder may be left behind"
    # It loads, but validation applies CI's rules: every line still marked is listed, with its number.
    validated = CliRunner().invoke(main, ["langpacks", "validate", str(folder)])
    assert validated.exit_code == 2, validated.output
    marked = [
        f"{folder / name}: line {number}: left from the template"
        for name in ("langpack.yml", "README.md")
        for number, line in enumerate((folder / name).read_text(encoding="utf-8").splitlines(), 1)
        if "TODO" in line
    ]
    assert len(marked) >= 15
    for where in [*marked, f"{folder / 'data' / 'corpus.txt'}: line 1: left from the template"]:
        assert where in validated.output
    assert "corpus.sources[0].licence: unknown licence: not an SPDX id or expression" in validated.output
    assert validated.output.count("left from the template") == len(marked) + 1


@pytest.mark.parametrize(
    ("typed", "folder", "flores", "iso3"),
    [
        ("sw", "sw", "swh_Latn", "swa"),
        ("swh", "sw", "swh_Latn", "swa"),
        ("Swahili", "sw", "swh_Latn", "swa"),
        ("am", "am", "amh_Ethi", "amh"),
        ("ha", "ha", "hau_Latn", "hau"),
        ("ar", "ar", "arb_Arab", "ara"),
        ("khk", "mn", "khk_Cyrl", "mon"),
        ("tl", "tl", "tgl_Latn", "fil"),
        ("ZUL", "zu", "zul_Latn", "zul"),
    ],
)
def test_new_normalises_codes(tmp_path: Path, typed: str, folder: str, flores: str, iso3: str) -> None:
    result = CliRunner().invoke(main, ["langpacks", "new", typed, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lang = load_langpack(tmp_path / folder).spec.language
    assert (lang.flores, lang.iso639_3, lang.script) == (flores, iso3, flores.split("_")[1])


def test_new_takes_a_name_that_needs_quoting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["langpacks", "new", "yo", "--name", "Yorùbá: standard", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert load_langpack(tmp_path / "yo").spec.language.name == "Yorùbá: standard"


def test_new_refuses_an_existing_folder_and_leaves_it_untouched(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, {"hand": "written"}, name="sw")
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = snapshot(tmp_path)
    for typed in ("sw", "swh_Latn", "swa"):
        result = CliRunner().invoke(main, ["langpacks", "new", typed, "--out", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert f"{folder} already exists; nothing was written" in result.output
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("zz", ["Unknown language code 'zz'"]),
        ("xyz_Latn", ["not a FLORES-200", "ltk langpacks codes"]),
        ("swh_Cyrl", ["not a FLORES-200", "swh_Latn"]),
        ("en-US!", ["not a language code"]),
        ("Klingon", ["has no FLORES-200 / NLLB code", "xxx_Scrp"]),
        ("Notalanguage", ["Unknown language code"]),
    ],
)
def test_new_rejects_unknown_codes_and_writes_nothing(tmp_path: Path, typed: str, words: list[str]) -> None:
    out = tmp_path / "packs"
    result = CliRunner().invoke(main, ["langpacks", "new", typed, "--out", str(out)])
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output
    assert not out.exists()


def test_new_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(main, ["langpacks", "new", "yo", "--out", str(target)])
    assert result.exit_code == 2
    assert target.read_text(encoding="utf-8") == "x"


# ------------------------------------------------------------------------------ CI's rules in validate
def test_unknown_and_undocumented_licences_are_errors_with_their_line(tmp_path: Path) -> None:
    doc = mutated(_add_source({"name": "extra", "kind": "local", "path": "x.txt", "licence": "CC-BY-FOO"}))
    doc["english"]["sources"][0]["licence"] = "ODbL-1.0"  # a real SPDX id the datasheet does not name
    folder = write_pack(tmp_path, doc)
    (folder / "x.txt").write_text("maandishi\n", encoding="utf-8")
    code, out = validate(folder)
    assert code == 2, out
    text = (folder / "langpack.yml").read_text(encoding="utf-8").splitlines()
    line = next(i for i, t in enumerate(text, 1) if "CC-BY-FOO" in t)
    assert (
        f"{folder / 'langpack.yml'}: line {line}: corpus.sources[2].licence: unknown licence: not an SPDX id "
        "or expression (got 'CC-BY-FOO')"
    ) in out
    assert f"{folder / 'README.md'}: english.sources[0].licence: licence not named in the datasheet" in out
    assert "ODbL-1.0" in out and "ODbL-1.0: unknown" not in out


def test_a_datasheet_without_sections_or_changelog_line_is_rejected(tmp_path: Path) -> None:
    folder = write_pack(tmp_path, mutated(_set("version", 7)))
    readme = folder / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("## Known limits", "## Limits"))
    code, out = validate(folder)
    assert code == 2, out
    assert f"{readme}: ## Known limits: datasheet section missing" in out
    assert f"{readme}: ## Changelog: no changelog line for version 7" in out


def test_a_translating_pack_states_its_engine_and_why(tmp_path: Path) -> None:
    """A pack that translates instructions has a '## Translation engine' section stating the engine in use;
    switching engines without revisiting it is an error; a pack that translates nothing needs none."""
    folder = write_pack(tmp_path, mutated(lambda doc: None))
    assert validate(folder)[0] == 0
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("## Translation engine", "## Engine"), encoding="utf-8")
    code, out = validate(folder)
    assert code == 2 and f"{readme}: ## Translation engine: datasheet section missing" in out
    assert "`instructions.engine: nllb`" in out and "ltk translate --compare nllb" in out

    switched = write_pack(tmp_path, mutated(_set("instructions.engine", "m2m100")), name="yy")
    code, out = validate(switched)
    assert code == 2, out
    assert "the translation engine section does not state the engine in use" in out
    assert "instructions.engine: m2m100" in out

    def no_translation(doc: dict) -> None:
        doc["instructions"]["translate"] = []

    quiet = write_pack(tmp_path, mutated(no_translation), name="zz")
    (quiet / "README.md").write_text(text.replace("## Translation engine", "## Engine"), encoding="utf-8")
    assert validate(quiet)[0] == 0, validate(quiet)[1]


def test_a_finished_scaffold_validates(tmp_path: Path) -> None:
    """Replace every marked line of a fresh scaffold: validate then passes (the rule is not a wall)."""
    assert CliRunner().invoke(main, ["langpacks", "new", "ha", "--out", str(tmp_path)]).exit_code == 0
    folder = tmp_path / "ha"
    for name in ("langpack.yml", "README.md"):
        path = folder / name
        lines = path.read_text(encoding="utf-8").splitlines()
        fixed = []
        for line in lines:
            if "licence: TODO-licence-of-your-text" in line:
                line = "      licence: CC0-1.0"
            elif "TODO" in line:
                line = line.split("TODO")[0].rstrip() or ("#" if name.endswith(".yml") else "")
                line = {"description: >-": line, 'maintainers: ["': 'maintainers: ["ltk tests"]'}.get(
                    line, line
                )
                if line.lstrip().startswith("|") and not line.endswith("|"):
                    line += " checked |"
                elif line.strip() == "" and name.endswith(".yml"):
                    line = "#"
            fixed.append(line)
        path.write_text("\n".join(fixed) + "\n", encoding="utf-8")
    (folder / "data" / "corpus.txt").write_text("Ọmọ eniyan ni gbogbo wa.\n", encoding="utf-8")
    readme = folder / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nCorpus licence: CC0-1.0\n", encoding="utf-8")
    code, out = validate(folder)
    assert code == 0, out
