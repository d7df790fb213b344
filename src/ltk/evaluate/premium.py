"""Tokenizer premium: how many more tokens the target language needs than English for the same content,
measured on parallel text, and the vocabulary advice that follows from it.

Zhao et al. 2024 found that extending the vocabulary did not help at modest training budgets; Petrov et
al. measured LLaMA-2 premiums of about 1.9x for Swahili/Hausa and 4-11x for non-Latin scripts. So: keep
the vocabulary unless the premium is high.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ltk.errors import UsageError

KEEP_BELOW = 2.5  # near 2x (Latin-script languages) rarely justifies a new vocabulary
EXTEND_ABOVE = 4.0  # Hindi, Thai, Amharic, Khmer: every sequence costs 4x+ compute and context


def advice(premium: float) -> dict[str, str]:
    if premium < KEEP_BELOW:
        return {
            "policy": "keep",
            "text": f"Keep the vocabulary: the target needs {premium:.2f}x the tokens of English, below "
            f"{KEEP_BELOW}x, where the study found extension not worth its cost at modest budgets.",
        }
    if premium <= EXTEND_ABOVE:
        return {
            "policy": "keep-or-extend",
            "text": f"Premium {premium:.2f}x: keep the vocabulary for small budgets; consider "
            "`tokenizer.policy: extend` only with well over 0.5B target tokens, and compare both runs.",
        }
    return {
        "policy": "extend",
        "text": f"Premium {premium:.2f}x is high: sequences cost over {EXTEND_ABOVE:g}x the compute and "
        "context of English. Try `tokenizer.policy: extend` and compare bits per byte with a keep run.",
    }


def tokenizer_premium(tokenizer: Any, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Tokens per byte and per word, target vs English, over (target, english) text pairs."""
    from ltk.evaluate.codeswitch import words

    if not pairs:
        raise UsageError("no parallel pairs to measure the tokenizer premium on")
    from ltk.evaluate import uncertainty as u

    stats = {}
    per_pair: dict[str, list[int]] = {}
    for side, idx in (("target", 0), ("english", 1)):
        texts = [p[idx] for p in pairs]
        per_pair[side] = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        tokens = sum(per_pair[side])
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        n_words = sum(len(words(t)) for t in texts)
        stats[side] = {
            "tokens": tokens,
            "bytes": n_bytes,
            "words": n_words,
            "tokens_per_byte": tokens / n_bytes if n_bytes else None,
            "tokens_per_word": tokens / n_words if n_words else None,
        }
    premium = stats["target"]["tokens"] / max(1, stats["english"]["tokens"])
    # Bootstrap over pairs: the tokenizer is fixed, the sample of text is what varies.
    ci = u.bootstrap_interval(
        list(zip(per_pair["target"], per_pair["english"], strict=True)), u.ratio_statistic
    )
    return {
        **stats,
        "premium": premium,
        "intervals": {"premium": u.record(ci, method="bootstrap percentile", unit="pairs", n=len(pairs))},
        "advice": advice(premium),
        "pairs": len(pairs),
        "method": {
            "premium": "target tokens / English tokens over the same parallel pairs (no special tokens)",
            "words": "runs of letters (\\p{L}), apostrophes inside words allowed",
        },
    }


def pairs_from_build(build_dir: Path, max_pairs: int | None) -> list[tuple[str, str]]:
    from ltk.evaluate.data import parallel_names, read_parallel

    pairs: list[tuple[str, str]] = []
    for name in parallel_names(build_dir):
        for pair in read_parallel(build_dir, name):
            pairs.append((pair.target, pair.english))
            if max_pairs is not None and len(pairs) >= max_pairs:
                return pairs
    return pairs


def pairs_from_langpack(pack: Any, max_pairs: int | None) -> list[tuple[str, str]]:
    """Read the langpack's first parallel set straight from its sources (no build needed)."""
    try:
        from ltk.corpus.sources import iter_records
    except ImportError:
        return []
    if not pack.spec.parallel:
        return []
    pset = pack.spec.parallel[0]
    named = {s.name: s for s in [*pack.spec.corpus.sources, *pack.spec.english.sources]}
    for p in pack.spec.parallel:
        for side in (p.target, p.english):
            if getattr(side, "name", None):
                named[side.name] = side

    def records(side: Any) -> list[dict[str, Any]]:
        source = named.get(side.source) if getattr(side, "kind", "") == "ref" else side
        # Read a margin beyond max_pairs: ids of the two sides may not line up one to one.
        limit = max_pairs * 2 if max_pairs is not None else None
        return [dict(rec) for rec in iter_records(source, pack, limit=limit)]

    target, english = records(pset.target), records(pset.english)
    if pset.align == "id":
        by_id = {r["id"]: r["text"] for r in english}
        pairs = [(r["text"], by_id[r["id"]]) for r in target if r["id"] in by_id]
    else:
        pairs = [(t["text"], e["text"]) for t, e in zip(target, english, strict=False)]
    pairs = [p for p in pairs if p[0] and p[1]]
    return pairs[:max_pairs] if max_pairs is not None else pairs


def analyze(code: str, model: str, *, build_dir: Path | None = None, max_pairs: int = 1000) -> dict[str, Any]:
    """`ltk tokenizer analyze CODE --model M`: works before any training, from the language build
    folder's parallel sets (default ``build/CODE``) or, when the langpack is not built yet, from its
    parallel sources directly."""
    from transformers import AutoTokenizer

    from ltk.assets import resolve_model
    from ltk.registry import get_langpack

    pack = get_langpack(code)
    build_dir = Path(build_dir) if build_dir is not None else Path("build") / pack.code
    pairs = pairs_from_build(build_dir, max_pairs) if (build_dir / "parallel").is_dir() else []
    origin = f"{build_dir}/parallel"
    if not pairs:
        pairs = pairs_from_langpack(pack, max_pairs)
        origin = f"langpack {pack.code} parallel set sources"
    if not pairs:
        raise UsageError(
            f"no parallel text for {pack.code}: {build_dir / 'parallel'} has none and the langpack's "
            "parallel sources could not be read; run `ltk build-langpack "
            f"{pack.code} --stage corpus` first, or check `parallel:` in {pack.file}"
        )
    resolved = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load the tokenizer of {resolved!r}: {str(exc).splitlines()[0]}") from None
    result = tokenizer_premium(tokenizer, pairs)
    result.update(model=resolved, language=pack.spec.language.name, code=pack.code, data=origin)
    return result


def render(result: dict[str, Any]) -> str:
    t, e = result["target"], result["english"]
    lines = [
        f"Tokenizer of {result['model']} on {result['pairs']} {result['language']}/English pairs "
        f"({result.get('data', '')})",
        "",
        f"{'':10} {'tokens':>10} {'bytes':>10} {'words':>9} {'tok/byte':>9} {'tok/word':>9}",
    ]
    for name, s in ((result["language"][:10], t), ("English", e)):
        lines.append(
            f"{name:10} {s['tokens']:>10} {s['bytes']:>10} {s['words']:>9} "
            f"{s['tokens_per_byte']:>9.3f} {s['tokens_per_word']:>9.2f}"
        )
    lines += ["", f"premium: {result['premium']:.2f}x the tokens of English", result["advice"]["text"]]
    return "\n".join(lines)
