"""English replay: choose English documents so that English is ``ratio`` of the training TOKENS.

Deterministic for a seed: candidates are visited in a seeded order and taken greedily while they fit
under the target (a document that would overshoot is skipped, a smaller one may still fit), so the
achieved share lands within a small tolerance of the request. When there is not enough English, the
target side is trimmed instead (reported), so the ratio still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = 0.005  # aim well inside the ±1% promise


@dataclass
class MixResult:
    target: list[int]  # positions (into the caller's target list) kept
    english: list[int]  # positions (into the caller's english list) kept
    target_tokens: int
    english_tokens: int
    trimmed_target: bool

    @property
    def ratio(self) -> float:
        total = self.target_tokens + self.english_tokens
        return self.english_tokens / total if total else 0.0


def seeded_order(n: int, seed: int, salt: int) -> list[int]:
    return np.random.default_rng([seed, salt]).permutation(n).tolist()


def take_budget(tokens: list[int], budget: int | None) -> list[int]:
    """Positions, in order, until the budget is reached (the last document may cross it)."""
    out, total = [], 0
    for i, n in enumerate(tokens):
        if budget is not None and total >= budget:
            break
        out.append(i)
        total += n
    return out


def _fill(tokens: list[int], want: float) -> tuple[list[int], int]:
    chosen, total = [], 0
    upper = want * (1 + TOLERANCE)
    for i, n in enumerate(tokens):
        if total >= want * (1 - TOLERANCE):
            break
        if n <= 0 or total + n > upper:
            continue
        chosen.append(i)
        total += n
    return chosen, total


def mix_english(target_tokens: list[int], english_tokens: list[int], ratio: float) -> MixResult:
    """Inputs are token counts in the order documents should be preferred (already shuffled/budgeted)."""
    t_total = sum(target_tokens)
    all_t = list(range(len(target_tokens)))
    if ratio <= 0 or t_total == 0:
        return MixResult(all_t, [], t_total, 0, False)
    want = t_total * ratio / (1 - ratio)
    english, e_total = list(range(len(english_tokens))), sum(english_tokens)
    if e_total >= want * (1 - TOLERANCE):
        chosen, chosen_total = _fill(english_tokens, want)
        if abs(chosen_total / (t_total + chosen_total) - ratio) <= TOLERANCE * 2:
            return MixResult(all_t, chosen, t_total, chosen_total, False)
        if chosen_total:
            # English documents too large to land on the share (a small corpus): keep the English that
            # fits under it and trim the target side to match, rather than overshoot with all of it.
            english, e_total = chosen, chosen_total
    # Not enough English: take all English there is and trim the target side to the matching size.
    want_t = e_total * (1 - ratio) / ratio
    kept, t_sum = _fill(target_tokens, want_t)
    return MixResult(kept, english, t_sum, e_total, True)
