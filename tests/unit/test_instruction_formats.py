"""alpaca / sharegpt / messages records -> chat messages, with field_map and counted bad records."""

from __future__ import annotations

import pytest

from ltk.instructions.formats import BadRecord, detect_kind, to_messages


def test_alpaca_with_input_and_field_map() -> None:
    record = {"question": "Summarise", "context": "A long text.", "response": "Short.", "sys": "Be brief."}
    fm = {"instruction": "question", "input": "context", "output": "response", "system": "sys"}
    assert to_messages(record, "alpaca", fm) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise\n\nA long text."},
        {"role": "assistant", "content": "Short."},
    ]


def test_sharegpt_roles_and_system_field() -> None:
    record = {
        "conversations": [{"from": "human", "value": " Hi "}, {"from": "gpt", "value": "Hello"}],
        "system": "You are kind.",
    }
    assert to_messages(record, "sharegpt") == [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_messages_with_mapped_column() -> None:
    record = {"chat": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert to_messages(record, "messages", {"messages": "chat"})[1] == {"role": "assistant", "content": "b"}
    assert detect_kind(record, {"messages": "chat"}) == "messages"


@pytest.mark.parametrize(
    ("record", "kind", "reason"),
    [
        ({"instruction": "", "output": ""}, "alpaca", "empty"),
        ({"instruction": 5, "output": "x"}, "alpaca", "malformed"),
        ({"instruction": "Do it", "output": ""}, "alpaca", "empty"),
        ({"conversations": "oops"}, "sharegpt", "malformed"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "malformed"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "messages", "malformed"),
        ({"messages": []}, "messages", "empty"),
        (["not", "a", "dict"], "messages", "malformed"),
    ],
)
def test_bad_records_have_a_reason(record: object, kind: str, reason: str) -> None:
    with pytest.raises(BadRecord) as err:
        to_messages(record, kind)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_detect_kind() -> None:
    assert detect_kind({"instruction": "x"}) == "alpaca"
    assert detect_kind({"conversations": []}) == "sharegpt"
    with pytest.raises(BadRecord):
        detect_kind({"text": "plain"})
