"""Sentence segmentation with protected spans, and exact reassembly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ltk.translation.segment import restore, segment_text, sentencex_language

TEXT = """Visit https://example.com/a.b for details. It costs $5 and weighs 3.5 kg. Use {name} and %s here.

- First item. Second sentence.
- Run `pip install ltk` now.
1. Step one is <b>bold</b>.

```python
print("hi. there")  # not translated
```
Done!"""


def test_sentences_and_protected_spans() -> None:
    seg = segment_text(TEXT)
    assert seg.segments() == [
        "Visit [[0]] for details.",
        "It costs [[0]] and weighs [[1]].",
        "Use [[0]] and [[1]] here.",
        "First item.",
        "Second sentence.",
        "Run [[0]] now.",
        "Step one is [[0]]bold[[1]].",
        "Done!",
    ]
    assert not any("print" in s for s in seg.segments())  # code block kept whole


def test_identity_translation_reassembles_exactly() -> None:
    seg = segment_text(TEXT)
    text, lost = seg.reassemble({s: s for s in seg.segments()})
    assert text == TEXT and lost == 0


def test_reassembly_keeps_structure_and_restores_spans() -> None:
    seg = segment_text(TEXT)
    text, lost = seg.reassemble({s: s.upper() for s in seg.segments()})
    assert lost == 0
    assert "VISIT https://example.com/a.b FOR DETAILS." in text
    assert (
        "\n- FIRST ITEM. SECOND SENTENCE.\n- RUN `pip install ltk` NOW.\n1. STEP ONE IS <b>BOLD</b>." in text
    )
    assert '```python\nprint("hi. there")  # not translated\n```\n' in text
    assert text.count("\n\n") == TEXT.count("\n\n")


def test_lost_mask_is_counted() -> None:
    assert restore("Tembelerani [[0]] tsopano.", ("https://x.org",)) == (
        "Tembelerani https://x.org tsopano.",
        0,
    )
    assert restore("Tembelerani [ [0] ] .", ("`x`", "{y}")) == ("Tembelerani `x` .", 1)


def test_repeated_boilerplate_dedupes_across_urls() -> None:
    a = segment_text("See https://a.org/x for more.").segments()
    b = segment_text("See https://b.net/y for more.").segments()
    assert a == b == ["See [[0]] for more."]


def test_nothing_to_translate() -> None:
    assert segment_text("```\ncode\n```\n").segments() == []
    assert segment_text("42 kg, https://x.org").segments() == []


def test_language_codes_for_sentencex() -> None:
    assert [sentencex_language(c) for c in ("nya_Latn", "swh_Latn", "eng_Latn")] == ["ny", "sw", "en"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_identity_round_trip_on_any_text(text: str) -> None:
    seg = segment_text(text)
    out, lost = seg.reassemble({s: s for s in seg.segments()})
    assert lost == 0
    assert out == text
