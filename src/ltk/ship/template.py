"""The chat template and end-of-turn tokens an exported model carries.

Training may give the tokenizer a template with ``{% generation %}`` markers (TRL's assistant-only loss
needs them). They are a transformers extension that renders nothing; llama.cpp's and Ollama's template
engines do not know them, so exports carry the template without them (it renders the same text).
"""

from __future__ import annotations

import re
from typing import Any

GENERATION_MARKER_RE = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def plain_template(template: str | None) -> str | None:
    """``template`` without generation markers (same rendering), or None."""
    return GENERATION_MARKER_RE.sub("", template) if template else None


def tokenizer_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one is what chat uses
        template = template.get("default") or next(iter(template.values()), None)
    return plain_template(template)


def eot_tokens(tokenizer: Any, ids: list[int]) -> list[str]:
    """The end-of-turn ids as token strings (what Ollama's ``stop`` parameters name)."""
    return [t for t in tokenizer.convert_ids_to_tokens(list(ids)) if t]
