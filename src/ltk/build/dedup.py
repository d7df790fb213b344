"""Exact and near-duplicate detection: vectorised MinHash (numpy) + LSH banding.

Why not datasketch per document: its MinHash hashes shingles one by one in Python (about 4 MB/s here).
Here word hashes come from one vectorised pass over the UTF-8 bytes, word n-gram shingles are combined
with numpy, and the ``num_perm`` permutations are one broadcast multiply-add over all shingles of a
document. Signatures are deterministic across processes and machines (no use of Python's ``hash``).

``DedupIndex`` keeps first occurrences in the order documents are offered, so the caller's order decides
which copy survives; it answers exact and near duplicates, and can be queried without inserting (for
the train-vs-held-out check).
"""

from __future__ import annotations

import hashlib

import numpy as np


def exact_key(text: str) -> bytes:
    """Hash of the text with case and whitespace folded: copies that differ only there are exact dups."""
    return hashlib.blake2b(" ".join(text.lower().split()).encode("utf-8"), digest_size=16).digest()


# Per-byte weights of the word hash: powers of the 32-bit FNV prime.
_POW = np.cumprod(np.full(256, 0x01000193, dtype=np.uint32), dtype=np.uint32)


def _word_hashes(text: str) -> np.ndarray:
    """One hash per whitespace-separated word, computed for all words at once with numpy.

    A polynomial hash (mod 2^32) over the UTF-8 bytes of each word, as segment sums with
    ``np.add.reduceat``: no Python loop per word, which is what dominates MinHash written the obvious way.
    Bytes <= 0x20 (space, tab, newline, controls) separate words.
    """
    raw = np.frombuffer(text.lower().encode("utf-8"), dtype=np.uint8)
    space = raw <= 32
    keep = ~space
    if not keep.any():
        return np.zeros(0, dtype=np.uint64)
    prev_space = np.empty_like(space)
    prev_space[0] = True
    prev_space[1:] = space[:-1]
    is_start = (keep & prev_space)[keep]
    vals = raw[keep].astype(np.uint32) + np.uint32(1)
    starts = np.flatnonzero(is_start).astype(np.int32)
    word_of = np.cumsum(is_start, dtype=np.int32) - 1
    pos = np.arange(len(vals), dtype=np.int32) - starts[word_of]
    with np.errstate(over="ignore"):
        return np.add.reduceat(vals * _POW[pos & 255], starts).astype(np.uint64)


class MinHasher:
    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram = num_perm, ngram
        # h_i(x) = a_i * x + b_i (mod 2^32), odd a_i, over well-mixed 32-bit shingle hashes. uint32 halves
        # the memory traffic of the (shingles x permutations) matrix; estimates match a 64-bit family's.
        self.a = (rng.integers(0, 2**31, size=num_perm, dtype=np.uint32) * np.uint32(2)) + np.uint32(1)
        self.b = rng.integers(0, 2**32, size=num_perm, dtype=np.uint32)
        mix = [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5] * 8
        self._mix = np.array(mix, dtype=np.uint64)[:ngram]

    def shingles(self, text: str) -> np.ndarray:
        """32-bit hashes of the word n-grams of ``text`` (lower-cased, whitespace words)."""
        h = _word_hashes(text)
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
        """``num_perm`` uint32 minimum hashes."""
        s = self.shingles(text)
        with np.errstate(over="ignore"):
            if len(s) > 4096:
                sig = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
                for i in range(0, len(s), 4096):
                    part = s[i : i + 4096, None] * self.a[None, :] + self.b[None, :]
                    np.minimum(sig, part.min(axis=0), out=sig)
                return sig
            return (s[:, None] * self.a[None, :] + self.b[None, :]).min(axis=0)

    def signatures(self, texts: list[str]) -> list[np.ndarray]:
        """Signatures of many documents at once, identical to ``signature`` one by one.

        Words of the whole batch are hashed in one pass (documents separated by a sentinel word), shingles
        that would cross a document boundary are masked out, and the per-document minimum is one
        ``np.minimum.reduceat`` over the (shingles x permutations) matrix: numpy's per-call overhead is
        paid once per batch instead of once per document.
        """
        # DEL (removed by normalisation) as a one-byte sentinel word between documents.
        if len(texts) < 2 or any("\x7f" in t for t in texts):
            return [self.signature(t) for t in texts]
        h = _word_hashes(" \x7f ".join(texts) + " \x7f")
        sentinel = _word_hashes("\x7f")[0]
        is_sep = h == sentinel
        n = self.ngram
        m = len(h) - n + 1
        out: list[np.ndarray | None] = [None] * len(texts)
        if m > 0:
            seps = np.concatenate(([0], np.cumsum(is_sep)))
            valid = (seps[n : n + m] - seps[:m]) == 0  # no separator inside the window
            doc_of = seps[:m][valid]  # separators before a window = its document number
            sh = np.zeros(m, dtype=np.uint64)
            with np.errstate(over="ignore"):
                for k in range(n):
                    sh = (sh ^ (h[k : k + m] * self._mix[k])) * np.uint64(0xFF51AFD7ED558CCD)
            sh = (sh[valid] >> np.uint64(32)).astype(np.uint32)
            if len(sh):
                docs, starts = np.unique(doc_of, return_index=True)
                sig = np.empty((len(docs), self.num_perm), dtype=np.uint32)
                step = 4096
                # Chunk the matrix so it stays in cache; chunks are cut at document starts.
                bounds = [*starts.tolist(), len(sh)]
                i = 0
                while i < len(docs):
                    j = i + 1
                    while j < len(docs) and bounds[j + 1] - bounds[i] <= step:
                        j += 1
                    lo, hi = bounds[i], bounds[j]
                    with np.errstate(over="ignore"):
                        # (permutations x shingles): reduceat along the contiguous axis is 4x faster.
                        mat = self.a[:, None] * sh[None, lo:hi] + self.b[:, None]
                    sig[i:j] = np.minimum.reduceat(mat, np.asarray(bounds[i:j]) - lo, axis=1).T
                    i = j
                for d, row in zip(docs.tolist(), sig, strict=True):
                    out[d] = row
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
        r = self.rows
        return [sig[i * r : (i + 1) * r].tobytes() for i in range(self.bands)]

    def query(self, key: bytes, sig: np.ndarray | None) -> str | None:
        """'exact', 'near' or None, against what was inserted so far."""
        if key in self.exact:
            return "exact"
        if self.near and sig is not None:
            seen: set[int] = set()
            for band, bkey in zip(self.buckets, self._band_keys(sig), strict=True):
                j = band.get(bkey)
                if j is not None and j not in seen:
                    seen.add(j)
                    if float(np.mean(self.sigs[j] == sig)) >= self.threshold:
                        return "near"
        return None

    def add(self, key: bytes, sig: np.ndarray | None) -> None:
        self.exact.add(key)
        if self.near and sig is not None:
            j = len(self.sigs)
            self.sigs.append(sig)
            for band, bkey in zip(self.buckets, self._band_keys(sig), strict=True):
                band.setdefault(bkey, j)

    def offer(self, key: bytes, sig: np.ndarray | None) -> str | None:
        """Insert unless a duplicate; returns the duplicate kind or None when inserted."""
        kind = self.query(key, sig)
        if kind is None:
            self.add(key, sig)
        return kind
