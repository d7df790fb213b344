"""SFT in the base model's own chat format, with labels masked by role.

TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers, which the real templates of Llama-3.1,
Qwen3 and Gemma-3 do not have. Like Axolotl's ``chat_template`` strategy (``roles_to_train: [assistant]``,
``train_on_eos: turn``), ltk renders each conversation with the model's own template exactly as
``apply_chat_template`` does, tokenizes it once with character offsets, and trains the tokens that overlap
an assistant turn's content or the end-of-turn marker right after it. Any template works that way, and
the model learns the end-of-turn token it will be stopped on in vLLM, Ollama or transformers.

Template choice (recipe ``chat_template``, Axolotl's names): ``tokenizer_default`` (the base's own, the
default; ChatML when the base has none), ``chatml``, ``llama2``, ``llama3``, ``qwen3``, ``gemma3`` (the
real templates, shipped in ``ltk/data/chat_templates``) or ``jinja`` with ``chat_template_jinja`` (a file
or the template text). Format tokens a named template needs and the vocabulary lacks are added as special
tokens; their embedding rows are trained (see :func:`missing_format_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ltk.errors import UsageError
from ltk.recipe.schema import CHAT_TEMPLATES

SHIPPED_TEMPLATES = tuple(n for n in CHAT_TEMPLATES if n not in ("tokenizer_default", "jinja"))
# Tokens each shipped template writes as markers; a base whose vocabulary lacks them gets them added.
FORMAT_TOKENS: dict[str, tuple[str, ...]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "llama2": (),  # [INST] is plain text; it uses the tokenizer's own bos/eos
    "llama3": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    "qwen3": ("<|im_start|>", "<|im_end|>"),
    "gemma3": ("<start_of_turn>", "<end_of_turn>"),
}
# A probe answer whose end shows what the template writes after an assistant turn.
_PROBE = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong-ltk-probe"}]


@dataclass(frozen=True)
class ChatFormat:
    """The template SFT renders with, the end-of-turn markers it trains, and where both came from."""

    template: str
    name: str  # tokenizer_default | chatml | ... | jinja
    source: str  # in words, for logs and the stage record
    eot_tokens: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"chat_template": self.name, "source": self.source, "eot_tokens": list(self.eot_tokens)}


def shipped_template(name: str) -> str:
    return resources.files("ltk.data").joinpath("chat_templates", f"{name}.jinja").read_text(encoding="utf-8")


def resolve_template(
    tokenizer: Any, name: str | None, jinja: str | None = None, *, base_dir: Path | None = None
) -> tuple[str, str, str]:
    """(template text, name, source) for a recipe's ``chat_template`` / ``chat_template_jinja``."""
    own = getattr(tokenizer, "chat_template", None)
    if name in (None, "tokenizer_default"):
        if own:
            return own, "tokenizer_default", "the base model's own template"
        return shipped_template("chatml"), "chatml", "ChatML (the base model has no template)"
    if name == "jinja":
        if not jinja:
            raise UsageError(
                "chat_template: jinja needs chat_template_jinja\n    fix: set chat_template_jinja to a .jinja "
                "file or the template text"
            )
        path = Path(jinja)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if len(jinja) < 256 and "{" not in jinja:
            if not path.is_file():
                raise UsageError(
                    f"chat_template_jinja: {jinja!r} is not a file\n    fix: give a path or the text"
                )
            return path.read_text(encoding="utf-8"), "jinja", f"the template in {path}"
        return jinja, "jinja", "the recipe's chat_template_jinja"
    return shipped_template(name), name, f"ltk's shipped {name} template"


def missing_format_tokens(tokenizer: Any, name: str, eot_tokens: tuple[str, ...]) -> list[str]:
    """Marker tokens the template writes that the vocabulary lacks as single tokens (to be added)."""
    wanted = list(FORMAT_TOKENS.get(name, ())) + [
        t for t in eot_tokens if t not in FORMAT_TOKENS.get(name, ())
    ]
    vocab = tokenizer.get_vocab()
    return [t for t in wanted if t not in vocab]


def detect_eot(tokenizer: Any, template: str) -> tuple[str, ...]:
    """The special token a template writes right after an assistant turn (``<|eot_id|>``, ``<end_of_turn>``,
    ``<|im_end|>``, ``</s>``...), else the tokenizer's EOS."""
    text = render(tokenizer, template, _PROBE)
    end = text.find(_PROBE[1]["content"]) + len(_PROBE[1]["content"])
    rest = text[end:].lstrip(" ")
    specials = sorted(
        {*tokenizer.all_special_tokens, *(str(t) for t in tokenizer.added_tokens_decoder.values())},
        key=len,
        reverse=True,
    )
    for token in specials:
        if token and rest.startswith(token):
            return (token,)
    return (tokenizer.eos_token,) if tokenizer.eos_token else ()


def render(tokenizer: Any, template: str, messages: list[dict[str, str]], **kwargs: Any) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs)


def assistant_spans(
    tokenizer: Any, fmt: ChatFormat, messages: list[dict[str, str]], text: str
) -> list[tuple[int, int]]:
    """Character spans of each assistant turn's content plus the end-of-turn marker after it."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        # Where the turn starts: after the prompt the template writes for it, when the rendering is
        # prefix-stable (it is for most templates); else after the previous span.
        try:
            prompt = render(tokenizer, fmt.template, messages[:i], add_generation_prompt=True)
        except Exception:  # a template may refuse a prefix (e.g. one that must end with an assistant)
            prompt = ""
        start_at = len(prompt) if prompt and text.startswith(prompt) else cursor
        content = message["content"].strip()
        begin = text.find(content, max(start_at, cursor)) if content else -1
        if begin < 0:
            raise ValueError(f"assistant turn {i} not found verbatim in the rendered text")
        end = begin + len(content)
        rest = text[end:]
        stripped = rest.lstrip(" \n")
        for token in fmt.eot_tokens:
            if stripped.startswith(token):
                end += len(rest) - len(stripped) + len(token)
                break
        spans.append((begin, end))
        cursor = end
    return spans


def tokenize_conversation(
    tokenizer: Any, fmt: ChatFormat, messages: list[dict[str, str]], max_length: int | None = None
) -> dict[str, list[int]]:
    """``input_ids`` of the rendered conversation (what ``apply_chat_template(tokenize=True)`` gives) and
    ``labels`` with -100 everywhere but assistant contents and their end-of-turn token."""
    text = render(tokenizer, fmt.template, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = assistant_spans(tokenizer, fmt, messages, text)
    labels = []
    for token_id, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        trained = any(s < b and e > a for a, b in spans) if e > s else False
        labels.append(token_id if trained else -100)
    ids = list(enc["input_ids"])
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def check_renders(tokenizer: Any, fmt: ChatFormat, conversations: list[list[dict]], file: str) -> None:
    """Render every conversation before training: a template that rejects the data (a role it does not
    support, roles that do not alternate) fails here, naming the example and the fix."""
    for n, messages in enumerate(conversations, 1):
        empty = [i for i, m in enumerate(messages) if m["role"] == "assistant" and not m["content"].strip()]
        if empty:
            # An empty answer would train the model to stop at once; it is a data error, not a template one.
            raise UsageError(
                f"{file}: example {n} has an empty assistant turn (message {empty[0]}): nothing to train on\n"
                "    fix: drop the example or fill in the answer (ltk's own tiers never contain one; check the "
                "dataset's answer column)"
            )
        try:
            text = render(tokenizer, fmt.template, messages)
            spans = assistant_spans(tokenizer, fmt, messages, text)
        except Exception as exc:
            roles = "/".join(m["role"] for m in messages)
            raise UsageError(
                f"{file}: example {n} (roles {roles}) cannot be rendered with {fmt.source} "
                f"(chat_template: {fmt.name}): {exc}\n"
                "    fix: choose a template that accepts these roles (chat_template: chatml, llama3, qwen3...), "
                "or change the data (e.g. fold the system turn into the first user turn)"
            ) from None
        if not spans:
            raise UsageError(f"{file}: example {n} renders no assistant turn with {fmt.source}")


def chat_format(
    tokenizer: Any, name: str | None, jinja: str | None, eot_tokens: list[str] | None
) -> ChatFormat:
    """The recipe's chat format for this tokenizer (template resolved, end-of-turn detected or given)."""
    template, resolved, source = resolve_template(tokenizer, name, jinja)
    eot = tuple(eot_tokens) if eot_tokens else None
    if eot is None:
        if resolved in FORMAT_TOKENS and resolved != "llama2":
            eot = (FORMAT_TOKENS[resolved][-1],)
        else:
            eot = detect_eot(tokenizer, template)
    return ChatFormat(template=template, name=resolved, source=source, eot_tokens=eot)


def add_format_tokens(tokenizer: Any, fmt: ChatFormat) -> list[int]:
    """Add the markers the template needs as special tokens; returns their ids ([] when all exist)."""
    missing = missing_format_tokens(tokenizer, fmt.name, fmt.eot_tokens)
    if not missing:
        return []
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    return [tokenizer.convert_tokens_to_ids(t) for t in missing]


def eot_token_ids(tokenizer: Any, fmt: ChatFormat) -> list[int]:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in fmt.eot_tokens]
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]
