"""Engine families at the edge: langpack ``instructions.engine`` settings (today's files stay valid) and
the FLORES -> family code mapping, for Latin and other scripts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from ltk.errors import UsageError, ValidationError
from ltk.langpack.load import validate_document
from ltk.translation.families import MarianPair, family_code, iso_codes, language_name

FILE = Path("langpacks/yo/langpack.yml")
BASE = {
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


def _with(**instructions) -> dict:
    doc = copy.deepcopy(BASE)
    doc["instructions"].update(instructions)
    return doc


def test_engine_defaults_and_models() -> None:
    assert (
        validate_document(_with(), FILE).instructions.translation_model == "facebook/nllb-200-distilled-600M"
    )
    spec = validate_document(_with(engine="madlad"), FILE).instructions
    assert spec.engine == "madlad" and spec.translation_model == "google/madlad400-3b-mt"
    spec = validate_document(_with(engine="marian"), FILE).instructions
    assert spec.translation_model == "Helsinki-NLP/opus-mt-{src}-{tgt}"
    llm = _with(
        engine="llm", model="qwen3-8b", endpoint="http://127.0.0.1:8000/v1", model_licence="Apache-2.0"
    )
    assert validate_document(llm, FILE).instructions.endpoint == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("instructions", "message"),
    [
        ({"engine": "llm", "model": "m"}, "engine llm needs model"),
        ({"engine": "nllb", "endpoint": "https://api.example.org/v1"}, "endpoint applies to engine llm only"),
        (
            {"engine": "llm", "model": "m", "model_licence": "MIT", "endpoint": "http://10.0.0.5:8000/v1"},
            "endpoint must be https://, or http:// on this machine",
        ),
        ({"engine": "google-translate"}, "instructions.engine"),
    ],
)
def test_bad_engine_settings_are_validation_errors(instructions: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate_document(_with(**instructions), FILE)
    assert message in str(err.value) and str(FILE) in str(err.value)


def test_family_codes_from_flores() -> None:
    assert iso_codes("swh_Latn")[:2] == ["sw", "swa"]
    assert iso_codes("khm_Khmr")[0] == "km" and "tl" in iso_codes("tgl_Latn")  # M2M-100 says tl
    assert family_code("m2m100", "khm_Khmr", ["en", "km", "sw"]) == "km"
    assert family_code("m2m100", "pbt_Arab", ["en", "ps"]) == "ps"  # Southern Pashto: M2M-100's Pashto
    assert family_code("madlad", "pbt_Arab", ["pbt", "ps"]) == "pbt"  # the specific code first
    assert family_code("madlad", "swh_Latn", ["sw", "en"]) == "sw"
    assert family_code("nllb", "swh_Latn", ["swh_Latn"]) == "swh_Latn"
    with pytest.raises(UsageError, match=r"does not support nya_Latn \(tried ny, nya, nya_Latn\)"):
        family_code("m2m100", "nya_Latn", ["en", "sw"], "facebook/m2m100_418M")
    assert language_name("swh_Latn") == "Swahili" and language_name("khm_Khmr") == "Khmer"
    assert MarianPair("Helsinki-NLP/opus-mt-{src}-{tgt}").candidates("eng_Latn", "swh_Latn")[0] == (
        "Helsinki-NLP/opus-mt-en-sw"
    )
    assert MarianPair("/models/one").candidates("eng_Latn", "swh_Latn") == ["/models/one"]
