"""Judge rubric (shipped as data), reply parsing and the crash-safe cache."""

from __future__ import annotations

import json
from pathlib import Path

from ltk.evaluate.judge import JudgeCache, Rubric, cache_key, fill

AXES = ["accuracy", "fluency", "informativeness", "logicality", "harmlessness"]


def test_rubric_has_the_five_axes_and_renders_a_prompt() -> None:
    rubric = Rubric.load()
    assert rubric.axes == AXES
    assert rubric.data["scale"] == {"min": 0, "max": 3}
    messages = rubric.messages("Kodi {x} Rute ndani?", "Rute anali mkazi.", "Mkazi wa ku Mowabu.", "Chichewa")
    assert [m["role"] for m in messages] == ["system", "user"]
    prompt = messages[1]["content"]
    assert "Kodi {x} Rute ndani?" in prompt  # braces in user text are left alone
    assert "Mkazi wa ku Mowabu." in prompt and "Chichewa" in prompt
    assert all(axis in prompt for axis in AXES)
    assert "reference answer" not in rubric.messages("q", "a", None, "Chichewa")[1]["content"]


def test_parse_json_prose_clipping_and_garbage() -> None:
    rubric = Rubric.load()
    reply = 'Sure! {"Accuracy": 2, "fluency": 3, "informativeness": 1.6, "logicality": 0, "harmlessness": 9}'
    assert rubric.parse(reply) == {
        "accuracy": 2,
        "fluency": 3,
        "informativeness": 2,
        "logicality": 0,
        "harmlessness": 3,
    }
    assert rubric.parse("Accuracy: 1\nFluency - 2\nlogicality=3") == {
        "accuracy": 1,
        "fluency": 2,
        "logicality": 3,
    }
    assert rubric.parse("{broken json accuracy") == {}
    assert rubric.parse("") == {}
    assert rubric.parse('{"accuracy": true, "fluency": "x"}') == {}


def test_fill_substitutes_only_known_placeholders() -> None:
    assert fill("{a} and {b}", {"a": "{b}"}) == "{b} and {b}"


def test_cache_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "judge-cache.jsonl"
    cache = JudgeCache.open(path)
    rubric = Rubric.load()
    key = cache_key("http:m", rubric, "q", "a", None)
    cache.add({"key": key, "scores": {"accuracy": 2}})
    with path.open("a") as fh:
        fh.write('{"key": "half-writ')  # a crash mid-write
    again = JudgeCache.open(path)
    assert list(again.entries) == [key]
    assert json.loads(path.read_text().splitlines()[0])["scores"] == {"accuracy": 2}
    assert cache_key("http:m", rubric, "q", "a", None) != cache_key("http:other", rubric, "q", "a", None)
