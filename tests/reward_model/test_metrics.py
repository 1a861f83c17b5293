"""RM metrics on hand-made arrays."""
import math

import numpy as np
import pytest

from reward_model.metrics import (
    best_of_n_accuracy,
    confusion_matrix,
    expected_calibration_error,
    grading_metrics,
    length_correlation,
    pairwise_accuracy,
)


def test_pairwise_accuracy_overall_per_level_and_ties():
    rc = [1.0, 0.0, 2.0, 0.5, 3.0]
    rr = [0.0, 1.0, 2.0, 0.0, 1.0]
    levels = [3, 3, 2, 0, 0]
    acc = pairwise_accuracy(rc, rr, levels)
    assert acc["overall"] == pytest.approx((1 + 0 + 0.5 + 1 + 1) / 5)
    assert acc["significantly_better"] == 0.5
    assert acc["better"] == 0.5
    assert acc["negligibly_better"] == 1.0
    assert "slightly_better" not in acc


def test_confusion_and_grading_metrics_with_missing():
    pred = np.array([[0, 1, 2, 2], [2, 1, 2, 2], [2, 0, 1, 2], [1, 1, 2, 0]])
    target = np.array([[0, 1, 2, -100], [2, 1, 0, -100], [2, 1, 0, -100], [2, 1, 2, -100]])
    assert confusion_matrix(pred[:, 0], target[:, 0]).tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 2]]
    m = grading_metrics(pred, target)
    assert m["instruction_following"]["accuracy"] == 0.75
    assert m["instruction_following"]["majority_baseline"] == 0.75  # class 2 is 3 of 4
    assert m["verbosity"]["accuracy"] == 0.75 and m["verbosity"]["majority_baseline"] == 1.0
    assert m["truthfulness"]["confusion"] == [[0, 1, 1], [0, 0, 0], [0, 0, 2]]
    assert m["harmlessness"]["n"] == 0 and math.isnan(m["harmlessness"]["accuracy"])


def test_ece_perfectly_calibrated_and_overconfident():
    # gap log 3 -> q = 0.75 for all 4 pairs; 3 of 4 labelled first-wins -> accuracy 0.75 = confidence
    d = math.log(3)
    assert expected_calibration_error([d] * 4, [0.0] * 4, labels=[1, 1, 1, 0]) == pytest.approx(0.0, abs=1e-9)
    # same confidence but always right -> |1 - 0.75|
    assert expected_calibration_error([d] * 4, [0.0] * 4) == pytest.approx(0.25)
    # two bins: q=0.75 right (|1-.75|) and q=s(-log 9)=0.1 -> conf 0.9, predicts second, wrong (|0-.9|)
    ece = expected_calibration_error([d, -math.log(9)], [0.0, 0.0])
    assert ece == pytest.approx(0.5 * 0.25 + 0.5 * 0.9)


def test_best_of_n_accuracy_skips_small_groups():
    groups = ["a"] * 4 + ["b"] * 5 + ["c"] * 2
    scores = [0.1, 0.9, 0.3, 0.2, 5.0, 1.0, 0.0, 0.0, 0.0, 9.0, 0.0]
    best = [0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0]
    out = best_of_n_accuracy(groups, scores, best)
    assert out["n_prompts"] == 2
    assert out["accuracy"] == 0.5  # a: right, b: wrong; c has only 2 responses
    assert out["random_baseline"] == pytest.approx((1 / 4 + 2 / 5) / 2)
    assert best_of_n_accuracy(["x", "x"], [1, 2], [1, 0])["n_prompts"] == 0


def test_length_correlation():
    assert length_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert length_correlation([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0)
    assert length_correlation([1.0, 0.0, 1.0, 0.0], [1, 1, 2, 2]) == pytest.approx(0.0)
    assert math.isnan(length_correlation([1, 1, 1], [1, 2, 3]))
