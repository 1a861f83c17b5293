"""Agreement statistics on hand-worked numbers and on a published example."""
import pytest

from afm_align.schema import GRADE_DIMENSIONS
from ui.agreement import agreement_report, annotator_stats, cohen_kappa, krippendorff_alpha


def test_cohen_kappa_hand_worked():
    # po = 3/4; pe = 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa = (0.75 - 0.5) / 0.5
    assert cohen_kappa("aabb", "abbb") == pytest.approx(0.5)
    assert cohen_kappa("abab", "abab") == pytest.approx(1.0)
    assert cohen_kappa("ab", "ba") == pytest.approx(-1.0)
    assert cohen_kappa("aaa", "aaa") is None          # no variation: undefined
    with pytest.raises(ValueError):
        cohen_kappa("ab", "a")


def test_krippendorff_alpha_hand_worked():
    # Coincidences: o00=2, o01=o10=1, o12=o21=1, o22=2; n0=3, n1=2, n2=3, n=8.
    units = [[0, 0], [0, 1], [1, 2], [2, 2]]
    # nominal: 1 - 7 * 4 / (2 * (6 + 6 + 9))
    assert krippendorff_alpha(units, "nominal") == pytest.approx(1 - 28 / 42)
    # ordinal: d2(0,1) = d2(1,2) = (5 - 2.5)^2 = 6.25, d2(0,2) = (8 - 3)^2 = 25
    # sum o d2 = 4 * 6.25 = 25; sum n n d2 = 2 * (6 * 6.25 + 6 * 6.25 + 9 * 25) = 600
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(1 - 7 * 25 / 600)
    assert krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha([[1], [2, None]]) is None   # nothing pairable


def test_krippendorff_alpha_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, nominal 0.743.
    n = None
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
              [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    units = [list(u) for u in zip(*coders)]
    assert krippendorff_alpha(units, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)


def _label(pair, user, better, level, grade, seconds=10.0):
    g = dict.fromkeys(GRADE_DIMENSIONS, grade)
    return {"pair_id": pair, "user": user, "better": better, "level": level, "grades_a": g, "grades_b": g,
            "seconds": seconds}


def test_report_per_dimension_and_annotator_pair():
    labels = [_label("p1", "x", "a", 3, 2), _label("p1", "y", "a", 3, 2), _label("p1", "z", "b", 0, 0),
              _label("p2", "x", "b", 1, 1), _label("p2", "y", "b", 1, 1), _label("p2", "z", "b", 1, 1)]
    report = agreement_report(labels)
    assert set(report["alpha"]) == {"choice", "level"} | {f"grade:{d}" for d in GRADE_DIMENSIONS}
    assert report["kappa"]["choice"]["x|y"] == pytest.approx(1.0)
    assert report["kappa"]["choice"]["x|z"] == pytest.approx(0.0)   # po = 1/2, pe = 1/2
    assert report["units"]["choice"] == 2 and report["units"]["grade:verbosity"] == 4
    # choice units (a, a, b) and (b, b, b), each ordered pair weighted 1 / (m - 1) = 1/2:
    # o_aa = 1, o_ab = o_ba = 1, o_bb = 3; n_a = 2, n_b = 4, n = 6; alpha = 1 - 5 * 2 / (2 * 2 * 4)
    assert report["alpha"]["choice"] == pytest.approx(0.375)


def test_annotator_stats_majority_and_gold():
    labels = [_label("p1", "x", "a", 3, 2, 4.0), _label("p1", "y", "a", 3, 2), _label("p1", "z", "b", 0, 0),
              _label("p2", "x", "b", 1, 1, 8.0), _label("p2", "y", "b", 1, 1), _label("p2", "z", "b", 1, 1)]
    stats = {row["annotator"]: row for row in annotator_stats(labels, {"p1": {"gold": "a"}, "p2": {}})}
    assert stats["z"]["majority_agreement"] == pytest.approx(0.5) and stats["z"]["majority_n"] == 2
    assert stats["x"]["majority_n"] == 1           # on p1 the others (y, z) are tied: no majority
    assert stats["x"]["majority_agreement"] == pytest.approx(1.0)
    assert stats["x"]["median_seconds"] == pytest.approx(6.0)
    assert (stats["z"]["gold_accuracy"], stats["z"]["gold_n"]) == (0.0, 1)
    assert stats["y"]["gold_accuracy"] == 1.0
