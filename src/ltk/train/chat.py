"""A training-compatible chat template. Loss on assistant turns only (TRL's ``assistant_only_loss``) needs
``{% generation %}`` markers around what the assistant says; SmolLM2's ChatML template has none, and TRL
patches only templates it knows. This one renders exactly like SmolLM2's (same default system turn) and
marks each assistant turn's content and its closing ``<|im_end|>``."""

from __future__ import annotations

from typing import Any

CHATML_SYSTEM_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + CHATML_SYSTEM_DEFAULT + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def ensure_training_template(tokenizer: Any) -> str:
    """Give ``tokenizer`` a template with generation markers if it lacks one. Returns what was done."""
    current = getattr(tokenizer, "chat_template", None) or ""
    if "{% generation %}" in current or "{%- generation %}" in current:
        return "kept (already has generation markers)"
    # A tokenizer with no ChatML tokens still works: the markers are then spelt with ordinary pieces.
    tokenizer.chat_template = CHATML_TRAINING_TEMPLATE
    return "replaced by ltk's ChatML training template (SmolLM2's had no generation markers)"
