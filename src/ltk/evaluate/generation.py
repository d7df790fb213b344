"""Greedy, batched chat generation shared by code-switch, translation and the local judge."""

from __future__ import annotations

from typing import Any

from ltk.log import progress


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The model's own chat template when it has one; a plain User/Assistant layout otherwise."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def generate(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    max_prompt_tokens: int = 1024,
    desc: str = "generating",
) -> list[str]:
    """Greedy answers (deterministic), one per conversation, in order."""
    return [
        text
        for text, _ in generate_with_counts(
            model,
            tokenizer,
            conversations,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            max_prompt_tokens=max_prompt_tokens,
            desc=desc,
        )
    ]


def _generated_length(row: list[int], stop_ids: set[int]) -> int:
    """Tokens the model produced: up to and including its first stop token (the rest is padding)."""
    for i, token in enumerate(row):
        if token in stop_ids:
            return i + 1
    return len(row)


def generate_with_counts(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    max_prompt_tokens: int = 1024,
    desc: str = "generating",
) -> list[tuple[str, int]]:
    """(answer, number of generated tokens) per conversation: greedy, in order."""
    import torch

    device = next(model.parameters()).device
    was_training = getattr(model, "training", False)
    model.eval()
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = {t for t in (tokenizer.eos_token_id, pad_id) if t is not None}
    answers: list[tuple[str, int]] = []
    try:
        for start in progress(range(0, len(conversations), batch_size), desc=desc, unit="batch"):
            prompts = [render_prompt(tokenizer, c) for c in conversations[start : start + batch_size]]
            enc = tokenizer(
                prompts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_prompt_tokens,
                add_special_tokens=not getattr(tokenizer, "chat_template", None),
            ).to(device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=pad_id,
                )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            lengths = [_generated_length(row, stop_ids) for row in new_tokens.tolist()]
            answers.extend((t.strip(), n) for t, n in zip(texts, lengths, strict=True))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return answers
