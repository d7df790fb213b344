"""Evaluation: bits per byte in both languages, code-switching, translation chrF/BLEU, tokenizer premium,
an LLM judge, lm-evaluation-harness tasks, training callbacks and reports.

Run folder layout (shared with training)::

    runs/<name>/<stage>/          training outputs of a stage (stage: cpt | sft), written by ``ltk train``
    runs/<name>/eval/<stage>.json one evaluation of a stage (stage: base | cpt | sft | <stage>-step<N>)
    runs/<name>/eval/<stage>.samples.jsonl  generated answers/translations behind the numbers
    runs/<name>/eval/judge-cache.jsonl      completed judge verdicts (kept across crashes, reused)

Every eval JSON holds ``metrics`` (one entry per metric, each with its values and a ``method`` block
saying how it was measured) and ``meta`` (model, build folder, language, library versions).
"""

from __future__ import annotations

STAGE_ORDER = ("base", "cpt", "sft", "pref")
ALL_METRICS = ("bpb", "codeswitch", "chrf", "premium", "judge", "harness")
# What `ltk eval` runs when --metrics is not given: everything that needs no external service.
DEFAULT_METRICS = ("bpb", "codeswitch", "chrf", "premium")
