"""Translation quality: chrF and BLEU (sacrebleu) of the model's own translations of the parallel eval
pairs, in both directions, asked through the model's chat template."""

from __future__ import annotations

from typing import Any

PROMPT = "Translate the following text from {src} to {tgt}. Reply with the translation only.\n\n{text}"


def first_paragraph(answer: str) -> str:
    """Chat models often add a note after the translation: keep the first non-empty paragraph."""
    for block in answer.strip().split("\n\n"):
        if block.strip():
            return block.strip()
    return ""


def metrics() -> dict[str, Any]:
    """sacrebleu's chrF (chrF2, char order 6) and BLEU (13a tokenisation), with their defaults."""
    from sacrebleu.metrics import BLEU, CHRF

    return {"chrf": CHRF(), "bleu": BLEU()}


def score(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus-level chrF (chrF2, sacrebleu defaults) and BLEU (13a tokenisation)."""
    return {name: m.corpus_score(hypotheses, [references]).score for name, m in metrics().items()}


def _compact(row: list[float]) -> list[float | int]:
    return [int(x) if float(x).is_integer() else x for x in row]


def score_with_items(
    hypotheses: list[str], references: list[str], ids: list[str]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Corpus chrF/BLEU and each segment's sufficient statistics (summed, they give the corpus score;
    resampled, its interval; paired with another system's, the difference's)."""
    from ltk.evaluate import uncertainty as u

    found = metrics()
    stats = {name: u.segment_stats(m, hypotheses, references) for name, m in found.items()}
    scores = {
        name: m.corpus_score(hypotheses, [references]).score if hypotheses else 0.0
        for name, m in found.items()
    }
    items = [{"id": i, **{name: _compact(stats[name][k]) for name in found}} for k, i in enumerate(ids)]
    return scores, items


def translation_intervals(items_by_set: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """chrF and BLEU intervals by bootstrap over segments (sacrebleu's resampling of sufficient
    statistics). Over several sets the headline is the mean of set scores, so each set is resampled
    on its own and the resampled set scores are averaged."""
    from ltk.evaluate import uncertainty as u

    n = sum(len(items) for items in items_by_set)
    out: dict[str, Any] = {}
    for name, metric in metrics().items():
        dists = [
            u.bootstrap_distribution([i[name] for i in items], u.sacrebleu_statistic(metric))
            for items in items_by_set
            if len(items) >= 2
        ]
        ci = (
            u.percentile_interval(sum(dists) / len(dists))
            if dists and len(dists) == len(items_by_set)
            else None
        )
        out[name] = u.record(ci, method="bootstrap percentile", unit="segments", n=n)
    return out


def translation_eval(
    model: Any,
    tokenizer: Any,
    pairs_by_set: dict[str, list[Any]],
    language_name: str,
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score both directions on every parallel set. Returns (metric, samples)."""
    import sacrebleu

    from ltk.evaluate.generation import generate

    sets: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    for name, pairs in pairs_by_set.items():
        per_direction: dict[str, Any] = {}
        for direction, src_name, tgt_name, src_key, tgt_key in (
            ("to_target", "English", language_name, "english", "target"),
            ("to_english", language_name, "English", "target", "english"),
        ):
            conversations = [
                [
                    {
                        "role": "user",
                        "content": PROMPT.format(src=src_name, tgt=tgt_name, text=getattr(p, src_key)),
                    }
                ]
                for p in pairs
            ]
            answers = generate(
                model,
                tokenizer,
                conversations,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                desc=f"translate {name} {direction}",
            )
            hypotheses = [first_paragraph(a) for a in answers]
            references = [getattr(p, tgt_key) for p in pairs]
            scores, items = score_with_items(hypotheses, references, [p.id for p in pairs])
            per_direction[direction] = {
                **scores,
                "pairs": len(pairs),
                "intervals": translation_intervals([items]),
                "items": items,
            }
            samples.extend(
                {
                    "set": name,
                    "direction": direction,
                    "id": p.id,
                    "source": getattr(p, src_key),
                    "hypothesis": h,
                    "reference": r,
                }
                for p, h, r in zip(pairs, hypotheses, references, strict=True)
            )
        sets[name] = per_direction
    # Headline numbers: the mean over sets, per direction.
    summary = {
        direction: {
            **{
                metric: sum(s[direction][metric] for s in sets.values()) / len(sets)
                for metric in ("chrf", "bleu")
            },
            "intervals": translation_intervals([s[direction]["items"] for s in sets.values()]),
        }
        for direction in ("to_target", "to_english")
    }
    result = {
        **summary,
        "sets": sets,
        "method": {
            "prompt": PROMPT,
            "decoding": "greedy",
            "max_new_tokens": max_new_tokens,
            "hypothesis": "first non-empty paragraph of the answer",
            "chrf": "sacrebleu corpus_chrf defaults (chrF2, char order 6)",
            "bleu": "sacrebleu corpus_bleu defaults (13a tokenisation)",
            "sacrebleu": sacrebleu.__version__,
            "intervals": "95% percentile bootstrap over segments (sacrebleu sufficient statistics)",
        },
    }
    return result, samples
