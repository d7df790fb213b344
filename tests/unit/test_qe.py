"""Quality estimation: each drop reason triggers on the failure it names and is counted."""

from __future__ import annotations

from ltk.langpack.schema import Quality
from ltk.translation.qe import DROP_REASONS, QualityReport, distribution, judge, repeated_ngram_fraction

EN = "God created the heaven and the earth, and the earth was without form and void."
NY = "Pachiyambi Mulungu analenga kumwamba ndi dziko lapansi. Ndipo dziko lapansi linali lopanda maonekedwe."
T = Quality()


def test_good_translation_kept_with_scores() -> None:
    verdict = judge(EN, NY, thresholds=T, target_iso="ny", roundtrip=EN.replace("void", "empty"))
    assert verdict.keep, verdict
    assert verdict.scores["langid"] > 0.9 and verdict.scores["roundtrip_chrf"] > 80
    assert 0.4 < verdict.scores["length_ratio"] < 3


def test_each_reason() -> None:
    cases = {
        "empty_translation": judge(EN, "   ", thresholds=T, target_iso="ny"),
        "protected_span_lost": judge(EN, NY, thresholds=T, target_iso="ny", lost_spans=1),
        "untranslated_copy": judge(EN, EN.upper() + " ", thresholds=T, target_iso="ny"),
        "repetition_loop": judge(EN, "dziko lapansi linali " * 12, thresholds=T, target_iso="ny"),
        "length_ratio": judge(EN, "Mulungu analenga.", thresholds=T, target_iso="ny"),
        "wrong_language": judge(
            EN,
            "Dieu créa le ciel et la terre, et la terre était informe et vide.",
            thresholds=T,
            target_iso="ny",
        ),
        "roundtrip_chrf": judge(EN, NY, thresholds=T, target_iso="ny", roundtrip="Cats like fish very much."),
    }
    assert set(cases) == set(DROP_REASONS)
    for reason, verdict in cases.items():
        assert (verdict.keep, verdict.reason) == (False, reason)


def test_report_counts_and_distributions() -> None:
    report = QualityReport()
    report.add(judge(EN, NY, thresholds=T, target_iso="ny"))
    report.add(judge(EN, "   ", thresholds=T, target_iso="ny"))
    report.add(judge(EN, "dziko lapansi linali " * 12, thresholds=T, target_iso="ny"))
    d = report.as_dict()
    assert d["checked"] == 3 and d["kept"] == 1
    assert d["dropped"]["empty_translation"] == 1 and d["dropped"]["repetition_loop"] == 1
    assert d["scores"]["repetition"]["n"] == 2
    assert sum(d["scores"]["repetition"]["histogram"]["counts"]) == 2


def test_thresholds_from_langpack() -> None:

    strict = Quality(min_roundtrip_chrf=95)
    assert not judge(EN, NY, thresholds=strict, target_iso="ny", roundtrip=EN.replace("void", "empty")).keep


def test_repetition_and_distribution_helpers() -> None:
    assert repeated_ngram_fraction("a b c d e f g h i j k") == 0
    assert repeated_ngram_fraction("na " * 30) > 0.9
    d = distribution([1.0, 2.0, 3.0, 4.0])
    assert d["quantiles"]["min"] == 1.0 and d["quantiles"]["max"] == 4.0 and d["n"] == 4
    assert distribution([]) == {"n": 0}
