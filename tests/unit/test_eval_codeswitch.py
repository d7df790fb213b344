"""Code-switch rates of hand-made mixed texts equal what a person counts (counts written out below)."""

from __future__ import annotations

import pytest
from _eval_build_path import chichewa_chapter, kjv_chapter

from ltk.evaluate.codeswitch import (
    CodeSwitchDetector,
    Lexicon,
    common_english_words,
    words,
)

SWAHILI_CORPUS = (
    "Habari za asubuhi. Mimi ninakwenda sokoni leo. Watoto wanacheza mpira shuleni. Chakula hiki ni kitamu "
    "sana. Tafadhali nisaidie kupika chakula. Nina furaha kubwa leo. Mimi ninapenda kusoma vitabu."
)


def swahili_detector() -> CodeSwitchDetector:
    return CodeSwitchDetector(
        target_lexicon=Lexicon.learn([SWAHILI_CORPUS]),
        english_lexicon=Lexicon.learn([" ".join(common_english_words())]),
        target_codes=frozenset({"sw", "swa", "swh"}),
    )


def test_swahili_english_counts_match_a_person() -> None:
    answers = [
        # 4 Swahili words / 6 English words / 5 Swahili + 2 English ("really delicious")
        "Mimi ninakwenda sokoni leo.\nI want to buy some food.\nChakula hiki ni kitamu sana, really delicious!",
        "Sorry, I cannot answer that.",  # 5 English words
        "Nina furaha kubwa leo.",  # 4 Swahili words
        "",  # empty: counted apart
    ]
    result = swahili_detector().analyze(answers)
    # By hand: words 17 + 5 + 4 = 26, of which 6 + 2 + 5 = 13 English. Lines: 5, of which 2 mostly English
    # ("I want ..." and "Sorry, ..."). Answers: 3 non-empty, 1 mostly English, 2 with any English.
    assert result["counts"] == {
        "words": 26,
        "non_target_words": 13,
        "lines": 5,
        "non_target_lines": 2,
        "answers": 3,
        "non_target_answers": 1,
        "mixed_answers": 2,
        "empty_answers": 1,
    }
    assert result["word_rate"] == pytest.approx(13 / 26)
    assert result["line_rate"] == pytest.approx(2 / 5)
    assert result["answer_rate"] == pytest.approx(1 / 3)
    assert result["answer_mixed_rate"] == pytest.approx(2 / 3)
    assert result["examples"][0]["non_target"] == ["I", "want", "to", "buy", "some", "food"]


def test_word_labels_of_a_mixed_line() -> None:
    labelled = swahili_detector().label_line("Chakula hiki ni kitamu sana, really delicious!")
    assert labelled == [
        ("Chakula", "target"),
        ("hiki", "target"),
        ("ni", "target"),
        ("kitamu", "target"),
        ("sana", "target"),
        ("really", "english"),
        ("delicious", "english"),  # in no lexicon: its clause's other word is English
    ]


def test_chichewa_with_lexicons_learnt_from_real_bibles() -> None:
    """Lexicons from Genesis (Chichewa Bible vs King James) as the build learns them from its corpus."""
    target = Lexicon.learn([" ".join(chichewa_chapter(1, c)) for c in range(1, 11)], min_count=2)
    english = Lexicon.learn(
        [*(" ".join(kjv_chapter(1, c)) for c in range(1, 4)), " ".join(common_english_words())]
    )
    detector = CodeSwitchDetector(target, english, frozenset({"ny", "nya"}))
    text = (
        "Ndipo Mulungu anati, Kuyenera kuwala.\n"  # 5 Chichewa words
        "But the people did not listen to him.\n"  # 8 English words
        "Ndipo anapita ku dziko la Mowabu, because there was a famine."  # 6 Chichewa + 5 English
    )
    result = detector.analyze([text])
    assert result["counts"]["words"] == 5 + 8 + 11
    assert result["counts"]["non_target_words"] == 8 + 5
    assert result["counts"]["non_target_lines"] == 1
    assert result["counts"]["non_target_answers"] == 1  # 13 of 24 words are English
    assert result["word_rate"] == pytest.approx(13 / 24)


def test_non_latin_target_uses_the_script() -> None:
    detector = CodeSwitchDetector(
        Lexicon(), Lexicon.learn(["this is"]), frozenset({"am"}), target_script_latin=False
    )
    labels = [lab for _, lab in detector.label_line("ሰላም ነው። this is Amharic")]
    assert labels == ["target", "target", "english", "english", "other"]


def test_words_keep_apostrophes_and_skip_digits() -> None:
    assert words("Ndipo m'dziko 2024, don't!") == ["Ndipo", "m'dziko", "don't"]
