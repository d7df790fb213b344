"""Code-switch rate: the share of answers, lines and words that are not in the target language.

Word-level language ID is hard for Latin-script languages (Swahili and English share an alphabet), so
each word is labelled in three steps:

1. script: for a non-Latin target, a Latin-script word is not target language;
2. lexicons: a word far more frequent in the target corpus than in English text is ``target``, and the
   reverse is ``english`` (relative frequencies, so a few English words inside the target corpus do not
   make "the" a target word);
3. the span (a sentence or clause, split at punctuation) decides the rest: pycld2's answer when it is reliable, otherwise the
   majority of the span's lexicon-labelled words, otherwise ``target`` (the benefit of the doubt).

Rates: ``word_rate`` = non-target words / words; ``line_rate`` = lines whose words are mostly non-target
/ lines; ``answer_rate`` = answers mostly non-target / answers; ``answer_mixed_rate`` = answers with any
non-target word / answers. Empty answers are counted apart and left out of the rates.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import regex

WORD_RE = regex.compile(r"\p{L}[\p{L}\p{M}]*(?:['’]\p{L}[\p{L}\p{M}]*)*")
SPAN_SPLIT_RE = regex.compile(r"(?<=[.!?;:,。！？،፡።])\s+|\n")
LATIN_RE = regex.compile(r"^\p{Script=Latin}+$")
# A word must be this many times more frequent in one language's text than in the other's to be
# labelled by the lexicon alone.
DOMINANCE = 4.0
TARGET, ENGLISH, OTHER = "target", "english", "other"
NON_TARGET = (ENGLISH, OTHER)


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)


def common_english_words() -> list[str]:
    """A shipped list of frequent English words: a fallback when no English corpus is at hand."""
    text = importlib.resources.files("ltk.data").joinpath("english_common_words.txt").read_text("utf-8")
    return [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]


@dataclass
class Lexicon:
    """Relative word frequencies of one language, learnt from text."""

    counts: Counter = field(default_factory=Counter)
    total: int = 0

    @classmethod
    def learn(cls, texts: Iterable[str], min_count: int = 1) -> Lexicon:
        counts: Counter = Counter()
        for text in texts:
            counts.update(w.lower() for w in words(text))
        if min_count > 1:
            counts = Counter({w: c for w, c in counts.items() if c >= min_count})
        return cls(counts=counts, total=sum(counts.values()))

    def freq(self, word: str) -> float:
        return self.counts.get(word, 0) / self.total if self.total else 0.0

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    def __len__(self) -> int:
        return len(self.counts)


def cld2_language(text: str) -> str | None:
    """pycld2's reliable language code for a span, or None (unreliable, unknown, or pycld2 missing)."""
    try:
        import pycld2
    except ImportError:
        return None
    try:
        reliable, _, details = pycld2.detect(text)
    except pycld2.error:  # invalid UTF-8 and similar
        return None
    code = details[0][1] if details else "un"
    return code if reliable and code not in ("un", "xx") else None


@dataclass
class CodeSwitchDetector:
    """Labels words as target / english / other. ``target_codes`` are pycld2's codes for the language."""

    target_lexicon: Lexicon
    english_lexicon: Lexicon
    target_codes: frozenset[str] = frozenset()
    target_script_latin: bool = True
    use_cld2: bool = True

    def lexicon_label(self, word: str) -> str | None:
        lower = word.lower()
        if not self.target_script_latin:
            # The script alone tells a Latin-script word apart from a non-Latin target language.
            if LATIN_RE.match(word):
                return ENGLISH if lower in self.english_lexicon else OTHER
            return TARGET
        pt, pe = self.target_lexicon.freq(lower), self.english_lexicon.freq(lower)
        if pt > 0 and pt >= DOMINANCE * pe:
            return TARGET
        if pe > 0 and pe >= DOMINANCE * pt:
            return ENGLISH
        return None  # in neither lexicon, or common in both: the span decides

    def span_label(self, span: str, known: list[str]) -> str:
        if self.use_cld2:
            code = cld2_language(span)
            if code is not None and len(words(span)) >= 3:  # one or two words are too few for cld2
                if code in self.target_codes:
                    return TARGET
                return ENGLISH if code == "en" else OTHER
        votes = Counter(known)
        if votes:
            (best, n), *rest = votes.most_common()
            if not rest or n > rest[0][1]:
                return best
        return TARGET

    def label_line(self, line: str) -> list[tuple[str, str]]:
        """(word, label) for every word of a line."""
        labelled: list[tuple[str, str]] = []
        for span in SPAN_SPLIT_RE.split(line):
            span_words = words(span)
            if not span_words:
                continue
            first = [self.lexicon_label(w) for w in span_words]
            fallback = None
            for word, label in zip(span_words, first, strict=True):
                if label is None:
                    if fallback is None:
                        fallback = self.span_label(span, [x for x in first if x is not None])
                    label = fallback
                labelled.append((word, label))
        return labelled

    def analyze(
        self, answers: list[str], max_examples: int = 10, ids: list[str] | None = None
    ) -> dict[str, Any]:
        items: list[dict[str, Any]] = []  # one per answer: what the intervals resample
        examples: list[dict[str, Any]] = []
        for index, answer in enumerate(answers):
            item = {"id": ids[index] if ids else str(index), "words": 0, "non_target_words": 0}
            item.update(lines=0, non_target_lines=0)
            for line in answer.splitlines():
                labelled = self.label_line(line)
                if not labelled:
                    continue
                switched = sum(label in NON_TARGET for _, label in labelled)
                item["lines"] += 1
                item["non_target_lines"] += switched * 2 > len(labelled)
                item["words"] += len(labelled)
                item["non_target_words"] += switched
                if switched and len(examples) < max_examples:
                    examples.append(
                        {"line": line[:300], "non_target": [w for w, lab in labelled if lab in NON_TARGET]}
                    )
            # None for an empty answer: counted apart and left out of the rates.
            item["switched"] = item["non_target_words"] * 2 > item["words"] if item["words"] else None
            item["mixed"] = item["non_target_words"] > 0 if item["words"] else None
            items.append(item)
        scored = [i for i in items if i["switched"] is not None]
        n_words = sum(i["words"] for i in items)
        n_switched_words = sum(i["non_target_words"] for i in items)
        n_lines = sum(i["lines"] for i in items)
        n_switched_lines = sum(i["non_target_lines"] for i in items)
        n_answers = len(scored)
        n_switched_answers = sum(i["switched"] for i in scored)
        n_mixed = sum(i["mixed"] for i in scored)
        return {
            "word_rate": n_switched_words / n_words if n_words else None,
            "line_rate": n_switched_lines / n_lines if n_lines else None,
            "answer_rate": n_switched_answers / n_answers if n_answers else None,
            "answer_mixed_rate": n_mixed / n_answers if n_answers else None,
            "counts": {
                "words": n_words,
                "non_target_words": n_switched_words,
                "lines": n_lines,
                "non_target_lines": n_switched_lines,
                "answers": n_answers,
                "non_target_answers": n_switched_answers,
                "mixed_answers": n_mixed,
                "empty_answers": len(items) - n_answers,
            },
            "intervals": codeswitch_intervals(scored),
            "examples": examples,
            "items": items,
        }


def codeswitch_intervals(scored: list[dict[str, Any]]) -> dict[str, Any]:
    """Answer rates are proportions of answers (Wilson); word and line rates are ratios whose words
    cluster in answers, so they are bootstrapped over answers, not over words."""
    from ltk.evaluate import uncertainty as u

    n = len(scored)
    out: dict[str, Any] = {}
    for key, flag in (("answer_rate", "switched"), ("answer_mixed_rate", "mixed")):
        ci = u.wilson_interval(sum(i[flag] for i in scored), n)
        out[key] = u.record(ci, method="wilson", unit="answers", n=n)
    for key, num, den in (
        ("word_rate", "non_target_words", "words"),
        ("line_rate", "non_target_lines", "lines"),
    ):
        ci = u.bootstrap_interval([[i[num], i[den]] for i in scored], u.ratio_statistic)
        out[key] = u.record(ci, method="bootstrap percentile", unit="answers", n=n)
    return out


def cld2_codes_for(info: dict[str, Any]) -> frozenset[str]:
    """pycld2 reports ISO 639-1 codes where one exists (``sw``, ``ny``), else 639-2/3 ones."""
    codes = {c for c in (info.get("iso639_1"), info.get("iso639_3"), info.get("code")) if c}
    flores = info.get("flores")
    if flores:
        codes.add(flores.split("_")[0])
    return frozenset(codes)


def detector_for_build(build_dir: Any, info: dict[str, Any], max_docs: int = 2000) -> CodeSwitchDetector:
    """Lexicons learnt from the build's training corpus (target rows, English rows), plus the shipped
    list of frequent English words so English stays recognisable when the corpus has little English."""
    from pathlib import Path

    from ltk.errors import UsageError
    from ltk.evaluate.data import read_corpus_texts

    build_dir = Path(build_dir)
    target_texts = read_corpus_texts(build_dir, "target", max_docs)
    if not target_texts:
        raise UsageError(
            f"no target-language rows (lang == 'target') in {build_dir / 'corpus' / 'train'}: "
            "cannot learn the target lexicon for code-switch detection"
        )
    english_texts = read_corpus_texts(build_dir, "english", max_docs)
    english = Lexicon.learn([*english_texts, " ".join(common_english_words())])
    return CodeSwitchDetector(
        target_lexicon=Lexicon.learn(target_texts, min_count=2),
        english_lexicon=english,
        target_codes=cld2_codes_for(info),
        target_script_latin=(info.get("script") or "Latn") == "Latn",
    )


def codeswitch_eval(
    model: Any,
    tokenizer: Any,
    prompts: list[Any],
    detector: CodeSwitchDetector,
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate answers to held-out target prompts and measure code-switching. Returns (metric, samples)."""
    from ltk.evaluate.generation import generate

    answers = generate(
        model,
        tokenizer,
        [p.messages for p in prompts],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        desc="code-switch answers",
    )
    result = detector.analyze(answers, ids=[p.id for p in prompts])
    result["method"] = {
        "prompts": len(prompts),
        "decoding": "greedy",
        "max_new_tokens": max_new_tokens,
        "word_labels": "script, then target/English corpus lexicons (relative frequency x"
        f"{DOMINANCE:g}), then the span's pycld2 language or lexicon majority",
        "target_lexicon_words": len(detector.target_lexicon),
        "english_lexicon_words": len(detector.english_lexicon),
        "target_cld2_codes": sorted(detector.target_codes),
    }
    samples = [
        {"id": p.id, "prompt": p.messages[-1]["content"], "answer": a, "reference": p.reference}
        for p, a in zip(prompts, answers, strict=True)
    ]
    return result, samples
