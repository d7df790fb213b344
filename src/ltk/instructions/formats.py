"""Instruction records in the common formats, normalised to chat ``messages``.

alpaca: ``instruction`` / ``input`` / ``output`` (+ optional ``system``); sharegpt: ``conversations`` as
``[{from: human|gpt|system, value}]``; messages: ``[{role, content}]``. A source's ``field_map`` renames
columns onto those canonical names (``{instruction: question, output: response}``). A record that cannot
be read raises :class:`BadRecord` with a short reason, which callers count instead of crashing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

InstructionKind = Literal["alpaca", "sharegpt", "messages"]
ROLES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
}


class BadRecord(ValueError):
    """A record that is skipped; ``reason`` is one of: empty, malformed."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _field(record: Mapping[str, Any], name: str, field_map: Mapping[str, str]) -> Any:
    column = field_map.get(name, name)
    return record.get(column)


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRecord("malformed", f"{what} is {type(value).__name__}, not text")
    return value.strip()


def detect_kind(record: Mapping[str, Any], field_map: Mapping[str, str] | None = None) -> InstructionKind:
    """Guess the format of one record (used by `ltk translate` on files of unknown format)."""
    fm = field_map or {}
    if _field(record, "messages", fm) is not None:
        return "messages"
    if _field(record, "conversations", fm) is not None:
        return "sharegpt"
    if _field(record, "instruction", fm) is not None:
        return "alpaca"
    raise BadRecord("malformed", "no messages, conversations or instruction field")


def to_messages(
    record: Mapping[str, Any], kind: InstructionKind, field_map: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """The record as ``[{role, content}, ...]`` with at least one user and one assistant turn."""
    fm = field_map or {}
    if not isinstance(record, Mapping):
        raise BadRecord("malformed", f"record is {type(record).__name__}, not an object")
    if kind == "alpaca":
        messages = _from_alpaca(record, fm)
    elif kind == "sharegpt":
        messages = _from_turns(_field(record, "conversations", fm), "from", "value")
    elif kind == "messages":
        messages = _from_turns(_field(record, "messages", fm), "role", "content")
    else:
        raise ValueError(f"unknown instruction format {kind!r}")
    system = _text(_field(record, "system", fm), "system") if kind != "alpaca" else ""
    if system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    roles = {m["role"] for m in messages}
    if not messages or all(not m["content"] for m in messages):
        raise BadRecord("empty", "no text in any turn")
    if "user" not in roles or "assistant" not in roles:
        raise BadRecord("malformed", "needs at least one user and one assistant turn")
    if any(not m["content"] for m in messages if m["role"] != "system"):
        raise BadRecord("empty", "a user or assistant turn is empty")
    return messages


def _from_alpaca(record: Mapping[str, Any], fm: Mapping[str, str]) -> list[dict[str, str]]:
    instruction = _text(_field(record, "instruction", fm), "instruction")
    extra = _text(_field(record, "input", fm), "input")
    output = _text(_field(record, "output", fm), "output")
    system = _text(_field(record, "system", fm), "system")
    if not instruction and not output:
        raise BadRecord("empty", "instruction and output are empty")
    user = f"{instruction}\n\n{extra}" if extra else instruction
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _from_turns(turns: Any, role_key: str, content_key: str) -> list[dict[str, str]]:
    if turns is None:
        raise BadRecord("empty", "no turns")
    if isinstance(turns, (str, bytes)) or not hasattr(turns, "__iter__"):
        raise BadRecord("malformed", f"turns are {type(turns).__name__}, not a list")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise BadRecord("malformed", f"turn {i} is not an object")
        raw_role = turn.get(role_key, turn.get("role", turn.get("from")))
        role = ROLES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise BadRecord("malformed", f"turn {i} has unknown role {raw_role!r}")
        content = turn.get(content_key, turn.get("content", turn.get("value")))
        messages.append({"role": role, "content": _text(content, f"turn {i}")})
    return messages
