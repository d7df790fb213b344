"""chrF/BLEU are sacrebleu's corpus scores; hypotheses are the first paragraph of the answer."""

from __future__ import annotations

import pytest
import sacrebleu

from ltk.evaluate.translation import first_paragraph, score

HYP = ["Mulungu ndi wabwino kwambiri.", "Ana akusewera mpira kusukulu."]
REF = ["Mulungu ndi wabwino.", "Ana akusewera mpira pasukulu."]


def test_scores_equal_sacrebleu_called_directly() -> None:
    got = score(HYP, REF)
    assert got["chrf"] == sacrebleu.corpus_chrf(HYP, [REF]).score
    assert got["bleu"] == sacrebleu.corpus_bleu(HYP, [REF]).score
    assert 50 < got["chrf"] < 100


def test_identical_text_scores_100() -> None:
    assert score(REF, REF) == {"chrf": pytest.approx(100.0), "bleu": pytest.approx(100.0)}


def test_first_paragraph_drops_notes() -> None:
    assert first_paragraph("\n\nMoni dziko.\n\nNote: this is a literal translation.") == "Moni dziko."
    assert first_paragraph("   ") == ""
