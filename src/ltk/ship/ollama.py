"""``--format ollama``: the GGUF plus a ``Modelfile`` whose ``TEMPLATE`` (Go text/template, what Ollama
runs) renders a conversation exactly as the model's own Jinja chat template does, and whose ``stop``
parameters are the end-of-turn tokens.

No table of hand-written templates: the Jinja template is rendered on probe conversations whose contents
are unique markers, and the text around each marker gives each role's prefix and suffix, the default
system turn a template adds when none is given (SmolLM2's, Llama 3.1's dated one), and the generation
prompt. Templates that fold the system message into the first user turn (Gemma) are recognised the same
way. The Go template is then built from those pieces (each printed as a quoted string constant, so Go's
whitespace trimming cannot touch them) and checked against the Jinja template on several conversations
before the file is written; a template that does not decompose this way is an error, not a wrong file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ltk.errors import UsageError

MARK = {"system": "\x01SYS\x01", "user": "\x01USR\x01", "assistant": "\x01AST\x01"}
# Conversations the derived template must render exactly like the Jinja one (each ends with a user turn:
# Ollama renders the prompt for the next assistant turn).
CHECK_CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "Moni! Muli bwanji?"}],
    [{"role": "system", "content": "Yankhani m'Chichewa."}, {"role": "user", "content": "What is water?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "ភាសាខ្មែរ?"},
    ],
    [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": "Two\nlines"},
        {"role": "user", "content": "Three"},
    ],
]


@dataclass
class TurnTemplate:
    """A chat template as literal pieces around each message."""

    bos: str  # what the template writes first that the tokenizer adds by itself (BOS)
    default_system: str  # written when the conversation has no system message
    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str  # the assistant prompt after the last turn
    system_in_first_user: str | None = None  # Gemma: system text + this separator start the first user turn

    def render(self, messages: list[dict[str, str]]) -> str:
        """What the Go template renders (the same logic in Python, to check before writing)."""
        out = []
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        if system is None:
            out.append(self.default_system)
        for i, m in enumerate(messages):
            role = m["role"]
            if role == "system" and self.system_in_first_user is not None:
                continue
            out.append(self.prefix[role])
            if self.system_in_first_user is not None and system is not None and i == 1 and role == "user":
                out.append(system + self.system_in_first_user)
            out.append(m["content"] + self.suffix[role])
        return "".join(out) + self.generation

    def go_template(self) -> str:
        def q(text: str) -> str:  # a literal piece; nothing for an empty one
            return f"{{{{ {go_string(text)} }}}}" if text else ""

        roles = [r for r in ("system", "user", "assistant") if r in self.prefix]
        first_is_system = '(and .Messages (eq (index .Messages 0).Role "system"))'
        parts = []
        if self.system_in_first_user is not None:
            parts.append(
                f'{{{{- $system := "" }}}}{{{{- if {first_is_system} }}}}'
                "{{- $system = (index .Messages 0).Content }}{{- end }}"
            )
        if self.default_system:
            parts.append(f"{{{{- if not {first_is_system} }}}}{q(self.default_system)}{{{{- end }}}}")
        branches = []
        for n, role in enumerate(roles):
            keyword = "if" if n == 0 else "else if"
            body = q(self.prefix[role])
            if role == "user" and self.system_in_first_user is not None:
                body += (
                    f"{{{{- if and $system (eq $i 1) }}}}{{{{ $system }}}}{q(self.system_in_first_user)}"
                    "{{- end }}"
                )
            body += f"{{{{ $m.Content }}}}{q(self.suffix[role])}"
            branches.append(f'{{{{- {keyword} eq $m.Role "{role}" }}}}{body}')
        parts.append("{{- range $i, $m := .Messages }}" + "".join(branches) + "{{- end }}{{- end }}")
        parts.append(q(self.generation))
        return "".join(parts)


def go_string(text: str) -> str:
    """A Go string constant (JSON's escapes are valid Go escapes)."""
    return json.dumps(text, ensure_ascii=False)


def _between(text: str, start: str | None, end: str | None) -> str:
    a = 0 if start is None else text.index(start) + len(start)
    b = len(text) if end is None else text.index(end, a)
    return text[a:b]


def _strip_prefix(text: str, prefix: str, what: str) -> str:
    if not text.startswith(prefix):
        raise ValueError(what)
    return text[len(prefix) :]


def _strip_suffix(text: str, suffix: str, what: str) -> str:
    if suffix and not text.endswith(suffix):
        raise ValueError(what)
    return text[: len(text) - len(suffix)] if suffix else text


def derive(render: Any, bos: str | None) -> TurnTemplate:
    """Pieces of the template behind ``render(messages, add_generation_prompt) -> str``."""
    s, u, a = MARK["system"], MARK["user"], MARK["assistant"]

    def msg(role: str, n: str = "") -> dict[str, str]:
        return {"role": role, "content": MARK[role] + n}

    only_user = render([msg("user")], False)
    user_asst = render([msg("user"), msg("assistant")], False)
    full = render([msg("system"), msg("user", "1"), msg("assistant"), msg("user", "2")], True)
    user_suffix = _between(only_user, u, None)
    asst_suffix = _between(user_asst, a, None)
    # From the longer conversation: some templates (Qwen3) mark an assistant turn after the last user
    # message differently from one in the history, and Ollama's history turns are of the second kind.
    asst_prefix = _strip_prefix(_between(full, u + "1", a), user_suffix, "assistant prefix")
    user_prefix = _strip_suffix(_between(full, a, u + "2"), "", "")
    user_prefix = _strip_prefix(user_prefix, asst_suffix, "user prefix after an assistant turn")
    head_user = _between(only_user, None, u)
    lead = bos if bos and head_user.startswith(bos) else ""
    default_system = _strip_suffix(head_user[len(lead) :], user_prefix, "default system turn")
    generation = _strip_prefix(_between(full, u + "2", None), user_suffix, "generation prompt")
    head_full = _strip_prefix(_between(full, None, s), lead, "BOS")
    sys_to_user = _between(full, s, u + "1")
    prefix = {"user": user_prefix, "assistant": asst_prefix}
    suffix = {"user": user_suffix, "assistant": asst_suffix}
    folded = None
    if sys_to_user.endswith(user_prefix):
        prefix["system"] = head_full
        suffix["system"] = sys_to_user[: len(sys_to_user) - len(user_prefix)]
    elif head_full == user_prefix:  # the system text opens the first user turn (Gemma)
        folded = sys_to_user
    else:
        raise ValueError("system turn")
    return TurnTemplate(lead, default_system, prefix, suffix, generation, folded)


def modelfile_template(tokenizer: Any, template: str) -> tuple[TurnTemplate, str]:
    """(pieces, Go template) for the tokenizer's chat template, checked on CHECK_CONVERSATIONS."""

    def render(messages: list[dict[str, str]], generation: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=generation
        )

    # The BOS the template writes is left to the runtime only when the tokenizer adds it by itself
    # (llama.cpp reads add_bos_token from the GGUF); SmolLM2's "BOS" <|im_start|> is written by the template.
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]
    try:
        pieces = derive(render, tokenizer.bos_token if adds_bos else None)
    except (ValueError, Exception) as exc:  # a template error is as much a "cannot express" as a layout
        raise UsageError(
            f"the chat template does not decompose into per-turn pieces Ollama's template can express "
            f"({exc}).\n    fix: export with --format gguf and write the Modelfile's TEMPLATE by hand"
        ) from None
    for conversation in CHECK_CONVERSATIONS:
        want = render(conversation, True)
        got = pieces.bos + pieces.render(conversation)
        if want != got:
            raise UsageError(
                "the chat template renders differently from the Go template ltk derived for it "
                f"(conversation {conversation!r}: {want!r} != {got!r}).\n"
                "    fix: export with --format gguf and write the Modelfile's TEMPLATE by hand"
            )
    return pieces, pieces.go_template()


def modelfile(gguf_name: str, go_template: str, stops: list[str], system: str | None = None) -> str:
    """The Modelfile text (``ollama create NAME -f Modelfile`` in the export folder)."""
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{go_template}"""']
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f"PARAMETER stop {go_string(s)}" for s in stops]
    lines.append("PARAMETER temperature 0")  # greedy, as ltk chat and ltk eval decode
    return "\n".join(lines) + "\n"
