"""OPUS-MT (Marian): one model per direction, found from a template such as
``Helsinki-NLP/opus-mt-{src}-{tgt}`` (or a local ``/models/opus-mt-{src}-{tgt}``) with ISO codes.

Each direction loads its own :class:`~ltk.translation.engines.TransformersEngine` (family ``marian``) the
first time it is used; a direction with no model is a configuration error naming every place looked at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ltk.errors import LtkError, UsageError
from ltk.translation.engines import GenerationSettings, TransformersEngine
from ltk.translation.families import LICENCES, MarianPair

DEFAULT_TEMPLATE = "Helsinki-NLP/opus-mt-{src}-{tgt}"


class MarianEngine:
    """One OPUS-MT model per direction behind the engine interface (transformers backend)."""

    backend = "transformers"
    family = "marian"
    licence = LICENCES["marian"]

    def __init__(
        self,
        template: str,
        *,
        settings: GenerationSettings | None = None,
        device: str | None = None,
        dtype: str = "auto",
        revision: str | None = None,
        languages: Sequence[str] = (),
    ):
        self.name = template
        self.pairs = MarianPair(template)
        self.settings = settings or GenerationSettings()
        self.device, self.dtype, self.revision = device, dtype, revision
        self.engines: dict[tuple[str, str], TransformersEngine] = {}
        self._calls_before = 0
        # Both directions are loaded now (the round trip needs the reverse one): a missing pair is an error
        # before any work, not after hours of translating the forward direction.
        codes = list(languages)
        for src, tgt in [(a, b) for a in codes for b in codes if a != b]:
            self.pair(src, tgt)
        keys = sorted(f"{s}>{t}={e.model_key}" for (s, t), e in self.engines.items())
        self.model_key = "marian:" + hashlib.sha256("|".join(keys or [template]).encode()).hexdigest()[:24]
        self.precision = next(iter(self.engines.values())).precision if self.engines else dtype

    @property
    def generate_calls(self) -> int:
        return sum(e.generate_calls for e in self.engines.values())

    def pair(self, src: str, tgt: str) -> TransformersEngine:
        """The engine for one direction (loaded once)."""
        if (src, tgt) in self.engines:
            return self.engines[(src, tgt)]
        tried = []
        for candidate in self.pairs.candidates(src, tgt):
            tried.append(candidate)
            if "/" in candidate and not Path(candidate).exists() and _offline():
                continue  # a hub id while offline: cannot be there
            if candidate.startswith((".", "/")) and not Path(candidate).exists():
                continue
            try:
                engine = TransformersEngine(
                    candidate,
                    family="marian",
                    settings=self.settings,
                    device=self.device,
                    dtype=self.dtype,
                    revision=self.revision,
                )
            except LtkError:
                continue
            if engine.supported_languages():  # a multi-target model: it must know the target
                engine.code(tgt)
            self.engines[(src, tgt)] = engine
            return engine
        raise UsageError(
            f"no OPUS-MT model for {src} -> {tgt}: looked for {', '.join(repr(t) for t in tried)}"
            + (" (the hub is offline)" if _offline() else "")
            + "\n    fix: point instructions.model / --model at a folder or template that has this pair, "
            "or choose another engine (nllb, m2m100, madlad) that covers the language"
        )

    def supported_languages(self) -> list[str]:
        return sorted({c for pair in self.engines for c in pair})

    def code(self, flores: str) -> str:
        return flores

    def encode(self, texts: Sequence[str], src: str, tgt: str | None = None) -> list[list[int]]:
        if tgt is None:
            raise LtkError("OPUS-MT needs the direction (src and tgt) to encode: each has its own model")
        self._last = self.pair(src, tgt)
        return self._last.encode(texts, src, tgt)

    def generate(self, batch: Sequence[Sequence[int]], tgt: str, limits: Sequence[int]) -> list[list[int]]:
        # translate_segments encodes a whole shard, then generates and decodes it batch by batch: the
        # direction (and so the model) is always the one encoded last.
        return self._last.generate(batch, tgt, limits)

    def decode(self, ids: Sequence[int]) -> str:
        return self._last.decode(ids)


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE") == "1"
