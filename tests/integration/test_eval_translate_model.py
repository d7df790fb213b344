"""Translation metric end to end: the tiny model's own translations, scored in both directions; the
reported chrF/BLEU equal sacrebleu run directly on the saved hypotheses and references."""

from __future__ import annotations

from pathlib import Path

import pytest
import sacrebleu
from _eval_build import make_build

from ltk.evaluate.data import read_parallel
from ltk.evaluate.translation import PROMPT, translation_eval


def test_chrf_matches_sacrebleu_on_model_translations(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build = make_build(tmp_path)
    pairs = read_parallel(build, "bible-verses-heldout", max_pairs=4)
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    result, samples = translation_eval(
        model, tok, {"heldout": pairs}, "Chichewa", max_new_tokens=10, batch_size=3
    )
    for direction in ("to_target", "to_english"):
        rows = [s for s in samples if s["direction"] == direction]
        assert [r["id"] for r in rows] == [p.id for p in pairs]
        hyps, refs = [r["hypothesis"] for r in rows], [r["reference"] for r in rows]
        assert refs == [p.target if direction == "to_target" else p.english for p in pairs]
        assert result[direction]["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
        assert result[direction]["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
        assert result["sets"]["heldout"][direction]["pairs"] == 4
    assert "from English to Chichewa" in PROMPT.format(src="English", tgt="Chichewa", text="x")
