"""Exact and near-duplicate detection: vectorised MinHash (numpy) + LSH banding.

Why not datasketch per document: its MinHash hashes shingles one by one in Python (about 4 MB/s here).
Here word hashes come from one vectorised pass over the UTF-8 bytes, word n-gram shingles are combined
with numpy, and signatures use one-permutation hashing (one hash per shingle instead of ``num_perm``).
Signatures are deterministic across processes and machines (no use of Python's ``hash``).

``DedupIndex`` keeps first occurrences in the order documents are offered, so the caller's order decides
which copy survives; it answers exact and near duplicates, and can be queried without inserting (for
the train-vs-held-out check).
"""

from __future__ import annotations

import hashlib

import numpy as np

# The characters str.split() splits ASCII text on, each mapped to a space.
_ASCII_WHITESPACE = bytes(c for c in range(128) if chr(c).isspace())
_TO_SPACE = bytes.maketrans(_ASCII_WHITESPACE, b" " * len(_ASCII_WHITESPACE))


def exact_key(text: str) -> bytes:
    """Hash of the text with case and whitespace folded: copies that differ only there are exact dups.

    The key hashes ``" ".join(text.lower().split())``. For ASCII text the same bytes are built without
    splitting into word objects (the slow part): whitespace mapped to spaces in one C pass, runs collapsed.
    """
    if text.isascii():
        folded = text.lower().encode("ascii").translate(_TO_SPACE)
        while b"  " in folded:
            folded = folded.replace(b"  ", b" ")
        folded = folded.strip(b" ")
    else:
        folded = " ".join(text.lower().split()).encode("utf-8")
    return hashlib.blake2b(folded, digest_size=16).digest()


_FNV_PRIME = 0x01000193
_FNV_PRIME_INV = pow(_FNV_PRIME, -1, 2**32)  # odd, so invertible mod 2^32


class _Powers:
    """P^i and P^-i (mod 2^32) for i < n, grown on demand and shared by every call in the process."""

    def __init__(self) -> None:
        self.size = 0
        self.forward = self.backward = np.ones(0, dtype=np.uint32)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n > self.size:
            size = max(n, 2 * self.size, 1 << 16)
            self.forward = _cumulative_powers(_FNV_PRIME, size)
            self.backward = _cumulative_powers(_FNV_PRIME_INV, size)
            self.size = size
        return self.forward[:n], self.backward


def _cumulative_powers(base: int, n: int) -> np.ndarray:
    steps = np.full(n, base, dtype=np.uint32)
    steps[0] = 1
    return np.cumprod(steps, dtype=np.uint32)


_POWERS = _Powers()


def _word_hashes(text: str) -> np.ndarray:
    """One hash per whitespace-separated word, computed for all words at once with numpy.

    A polynomial hash (mod 2^32) over the UTF-8 bytes of each word: every byte is weighted by P^i for its
    position i in the whole text (whitespace weighs 0), one ``np.add.reduceat`` sums each word's run, and
    multiplying by P^-start makes the hash independent of where the word sits. No Python loop per word
    (what dominates MinHash written the obvious way) and no pass that compacts the text.
    Bytes <= 0x20 (space, tab, newline, controls) separate words.
    """
    raw = np.frombuffer(text.lower().encode("utf-8"), dtype=np.uint8)
    space = raw <= 32
    if len(raw) == 0 or space.all():
        return np.zeros(0, dtype=np.uint64)
    starts = np.flatnonzero(space[:-1] & ~space[1:]) + 1
    if not space[0]:
        starts = np.concatenate(([0], starts))
    forward, backward = _POWERS.get(len(raw))
    vals = raw.astype(np.uint32) + np.uint32(1)
    vals[space] = 0
    with np.errstate(over="ignore"):
        vals *= forward
        return (np.add.reduceat(vals, starts, dtype=np.uint32) * backward[starts]).astype(np.uint64)


def _char_hashes(text: str) -> np.ndarray:
    """One value per character, spaces and control characters left out: the units of character
    shingles, for scripts written without spaces between words (Khmer, Myanmar, Thai, Lao...), where a
    whitespace "word" is a whole phrase and word shingles would find almost nothing in common."""
    points = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
    return points[points > 32].astype(np.uint64) + np.uint64(1)


class MinHasher:
    """MinHash signatures by one-permutation hashing (OPH) with optimal densification.

    Why not ``num_perm`` independent hash functions (datasketch, the classic scheme): that costs
    shingles x ``num_perm`` multiply-add-min operations and was most of the corpus stage's time. OPH hashes
    each shingle once, sends it to one of ``num_perm`` bins by its top bits and keeps the minimum per bin
    (Li, Owen & Zhang 2012): shingles x 1 work. Bins a short document leaves empty borrow the value of the
    first non-empty bin on a fixed probe sequence shared by all documents (Shrivastava 2017), so the
    fraction of equal positions between two signatures still estimates their Jaccard similarity and LSH
    banding works unchanged.
    """

    _PROBES = 32  # probe steps per empty bin before falling back to the next non-empty bin on the right

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1, unit: str = "words"):
        if unit not in ("words", "characters"):
            raise ValueError(f"unit must be 'words' or 'characters', not {unit!r}")
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram, self.unit = num_perm, ngram, unit
        self._units = _word_hashes if unit == "words" else _char_hashes
        # One bijective re-keying of the 32-bit shingle hashes (odd multiplier): the seed picks the family.
        self.a = np.uint32(int(rng.integers(0, 2**31)) * 2 + 1)
        self.b = np.uint32(int(rng.integers(0, 2**32)))
        self._probe = rng.integers(0, num_perm, size=(num_perm, self._PROBES), dtype=np.int64)
        mix = [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5] * 8
        self._mix = np.array(mix, dtype=np.uint64)[:ngram]

    def shingles(self, text: str) -> np.ndarray:
        """32-bit hashes of the n-grams of ``text`` (lower-cased whitespace words, or characters)."""
        h = self._units(text)
        if len(h) == 0:
            return np.zeros(1, dtype=np.uint32)
        n = min(self.ngram, len(h))
        m = len(h) - n + 1
        out = np.zeros(m, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(n):
                out = (out ^ (h[k : k + m] * self._mix[k])) * np.uint64(0xFF51AFD7ED558CCD)
        return (out >> np.uint64(32)).astype(np.uint32)

    def signature(self, text: str) -> np.ndarray:
        """``num_perm`` uint32 values."""
        s = self.shingles(text)
        return self._oph(s, np.zeros(len(s), dtype=np.int64), 1)[0]

    def _oph(self, shingles: np.ndarray, doc_of: np.ndarray, ndocs: int) -> np.ndarray:
        """(ndocs, num_perm) signatures of shingle hashes labelled with their document (0..ndocs-1)."""
        k = self.num_perm
        with np.errstate(over="ignore"):
            v = shingles * self.a + self.b
        bins = ((v.astype(np.uint64) * np.uint64(k)) >> np.uint64(32)).astype(np.int64)
        flat = doc_of * k + bins
        sig = np.full(ndocs * k, np.iinfo(np.uint32).max, dtype=np.uint32)
        np.minimum.at(sig, flat, v)  # unbuffered scatter-min: one pass over the shingles
        filled = np.zeros(ndocs * k, dtype=bool)
        filled[flat] = True
        sig, filled = sig.reshape(ndocs, k), filled.reshape(ndocs, k)
        any_filled = filled.any(axis=1)  # rows without shingles here: callers hash those one by one
        for d in np.flatnonzero(any_filled & ~filled.all(axis=1)).tolist():  # short documents only
            sig[d] = self._densify(sig[d], filled[d])
        return sig

    def _densify(self, sig: np.ndarray, filled: np.ndarray) -> np.ndarray:
        empty = np.flatnonzero(~filled)
        probes = self._probe[empty]
        hit = filled[probes]
        src = probes[np.arange(len(empty)), hit.argmax(axis=1)]
        missed = ~hit.any(axis=1)
        if missed.any():
            # Rare (a document with a handful of shingles): the next non-empty bin, circularly.
            full = np.flatnonzero(filled)
            after = np.searchsorted(full, empty[missed]) % len(full)
            src[missed] = full[after]
        out = sig.copy()
        out[empty] = sig[src]
        return out

    def signatures(self, texts: list[str]) -> list[np.ndarray]:
        """Signatures of many documents at once, identical to ``signature`` one by one.

        Words of the whole batch are hashed in one pass (documents separated by a sentinel word), shingles
        that would cross a document boundary are masked out, and every shingle of the batch goes through
        one scatter-min: numpy's per-call overhead is paid once per batch instead of once per document.
        """
        # DEL (removed by normalisation) as a one-byte sentinel word between documents.
        if len(texts) < 2 or any("\x7f" in t for t in texts):
            return [self.signature(t) for t in texts]
        h = self._units(" \x7f ".join(texts) + " \x7f")
        sentinel = self._units("\x7f")[0]
        is_sep = h == sentinel
        n = self.ngram
        m = len(h) - n + 1
        out: list[np.ndarray | None] = [None] * len(texts)
        if m > 0:
            seps = np.concatenate(([0], np.cumsum(is_sep)))
            valid = (seps[n : n + m] - seps[:m]) == 0  # no separator inside the window
            doc_of = seps[:m][valid].astype(np.int64)  # separators before a window = its document number
            sh = np.zeros(m, dtype=np.uint64)
            with np.errstate(over="ignore"):
                for k in range(n):
                    sh = (sh ^ (h[k : k + m] * self._mix[k])) * np.uint64(0xFF51AFD7ED558CCD)
            sh = (sh[valid] >> np.uint64(32)).astype(np.uint32)
            if len(sh):
                sig = self._oph(sh, doc_of, len(texts))
                present = np.zeros(len(texts), dtype=bool)
                present[doc_of] = True
                for d in np.flatnonzero(present).tolist():
                    out[d] = sig[d]
        # Documents shorter than n words have no full window: the one-by-one path handles them.
        return [o if o is not None else self.signature(t) for o, t in zip(out, texts, strict=True)]


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positive + false negative probability mass (as datasketch does)."""

    def area(f, a: float, b: float) -> float:
        xs = np.linspace(a, b, 201)
        return float(np.trapezoid(f(xs), xs)) if hasattr(np, "trapezoid") else float(np.trapz(f(xs), xs))

    best, best_err = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        if rows == 0:
            break
        fp = area(lambda s, r=rows, b=bands: 1 - (1 - s**r) ** b, 0.0, threshold)
        fn = area(lambda s, r=rows, b=bands: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)
        if fp + fn < best_err:
            best, best_err = (bands, rows), fp + fn
    return best


class DedupIndex:
    """First-come index of exact keys and MinHash LSH buckets."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, near: bool = True):
        self.threshold, self.near = threshold, near
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.exact: set[bytes] = set()
        self.buckets: list[dict[bytes, int]] = [{} for _ in range(self.bands)]
        self.sigs: list[np.ndarray] = []

    def _band_keys(self, sig: np.ndarray) -> list[bytes]:
        # Slicing one bytes object is several times cheaper than slicing the array and converting each band.
        raw, width = sig.tobytes(), sig.itemsize * self.rows
        return [raw[i * width : (i + 1) * width] for i in range(self.bands)]

    def query(self, key: bytes, sig: np.ndarray | None, bkeys: list[bytes] | None = None) -> str | None:
        """'exact', 'near' or None, against what was inserted so far (``bkeys``: the band keys of ``sig``,
        when the caller has them already)."""
        if key in self.exact:
            return "exact"
        if self.near and sig is not None:
            seen: set[int] = set()
            for band, bkey in zip(self.buckets, bkeys or self._band_keys(sig), strict=True):
                j = band.get(bkey)
                if j is not None and j not in seen:
                    seen.add(j)
                    if np.count_nonzero(self.sigs[j] == sig) >= self.threshold * len(sig):
                        return "near"
        return None

    def add(self, key: bytes, sig: np.ndarray | None, bkeys: list[bytes] | None = None) -> None:
        self.exact.add(key)
        if self.near and sig is not None:
            j = len(self.sigs)
            self.sigs.append(sig)
            for band, bkey in zip(self.buckets, bkeys or self._band_keys(sig), strict=True):
                band.setdefault(bkey, j)

    def offer(self, key: bytes, sig: np.ndarray | None) -> str | None:
        """Insert unless a duplicate; returns the duplicate kind or None when inserted."""
        bkeys = self._band_keys(sig) if self.near and sig is not None else None  # once for query and add
        kind = self.query(key, sig, bkeys)
        if kind is None:
            self.add(key, sig, bkeys)
        return kind
