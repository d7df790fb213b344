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


def score(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus-level chrF (chrF2, sacrebleu defaults) and BLEU (13a tokenisation)."""
    import sacrebleu

    return {
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
    }


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
            per_direction[direction] = {**score(hypotheses, references), "pairs": len(pairs)}
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
            metric: sum(s[direction][metric] for s in sets.values()) / len(sets)
            for metric in ("chrf", "bleu")
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
        },
    }
    return result, samples
