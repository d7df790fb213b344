"""Language identification with a pluggable backend.

The default backend is pycld2 (ships its model; best of the offline libraries measured for ltk's
languages). GlotLID (or any fastText LID model) plugs in where its model file is available:
``LTK_GLOTLID_MODEL=/path/model.bin`` and ``pip install fasttext-wheel``. A backend predicts
``(code, confidence)`` per text; ``LanguageMatcher`` decides whether a code is the expected language.
"""

from __future__ import annotations

import os
from typing import Protocol

from ltk.errors import UsageError


class LangIdBackend(Protocol):
    name: str

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """Most likely language code and a confidence in [0, 1] for each text."""
        ...


class Pycld2Backend:
    """CLD2: ISO 639-1 codes where one exists (``ny``, ``sw``, ``en``), else ISO 639-3/other CLD2 codes.

    Long documents are identified on a sample (head, middle and tail, ``sample_chars`` in all): a few KB
    decide the language as well as the whole text, at a fraction of the cost.
    """

    name = "pycld2"
    sample_chars = 3000

    def __init__(self) -> None:
        try:
            import pycld2
        except ImportError:
            raise UsageError("language ID backend 'pycld2' needs: pip install pycld2") from None
        self._cld2 = pycld2

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        out = []
        detect, error = self._cld2.detect, self._cld2.error
        k = self.sample_chars // 3
        for text in texts:
            if len(text) > self.sample_chars:
                mid = len(text) // 2
                text = "\n".join((text[:k], text[mid - k // 2 : mid + k // 2], text[-k:]))
            try:
                _reliable, _bytes, details = detect(text)
            except error:
                # CLD2 rejects some invalid UTF-8 sequences: retry on the printable characters only.
                try:
                    _reliable, _bytes, details = detect("".join(c for c in text if c.isprintable()))
                except error:
                    out.append(("un", 0.0))
                    continue
            code, percent = details[0][1], details[0][2]
            out.append((code, percent / 100.0))
        return out


class FastTextBackend:
    """GlotLID / fastText LID models: labels like ``__label__nya_Latn`` (GlotLID) or ``__label__en``."""

    name = "glotlid"

    def __init__(self, model_path: str | None = None) -> None:
        path = model_path or os.environ.get("LTK_GLOTLID_MODEL")
        if not path or not os.path.exists(path):
            raise UsageError(
                "language ID backend 'glotlid' needs its model file: download model.bin from the "
                "cis-lmu/glotlid repository on a machine with hub access and set LTK_GLOTLID_MODEL=/path/model.bin"
                f" (got {path!r}), or use langid_backend: pycld2"
            )
        try:
            import fasttext
        except ImportError:
            raise UsageError("language ID backend 'glotlid' needs: pip install fasttext-wheel") from None
        self._model = fasttext.load_model(path)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        labels, probs = self._model.predict([t.replace("\n", " ") for t in texts], k=1)
        return [(lab[0].removeprefix("__label__"), float(p[0])) for lab, p in zip(labels, probs, strict=True)]


class NoBackend:
    """``langid_backend: none``: every text is accepted as the expected language."""

    name = "none"

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        return [("*", 1.0) for _ in texts]


def make_backend(name: str) -> LangIdBackend:
    if name == "pycld2":
        return Pycld2Backend()
    if name == "glotlid":
        return FastTextBackend()
    if name == "none":
        return NoBackend()
    raise UsageError(f"unknown langid_backend {name!r}; use pycld2, glotlid or none")


def expected_codes(iso639_1: str | None, iso639_3: str, flores: str) -> frozenset[str]:
    """Every code a backend may answer for a language: ``ny``, ``nya``, ``nya_Latn``."""
    codes = {iso639_3, flores, flores.split("_")[0]}
    if iso639_1:
        codes.add(iso639_1)
    if iso639_3 in ("swa", "swh"):
        codes.update({"sw", "swa", "swh"})
    return frozenset(codes | {"*"})


ENGLISH_CODES = expected_codes("en", "eng", "eng_Latn")
