"""Committee distillation's score: the verifier gates, the RM reranks what passed."""
from committee.candidates import rs_score


def test_rs_score_drops_answers_the_verifier_failed_whatever_the_rm_says():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=1.0) is None
    assert rs_score(1.0, -0.2, rm_weight=1.0, verifier_min=1.0) == 0.8
    assert rs_score(None, 0.7, rm_weight=0.5, verifier_min=1.0) == 0.35  # no verifier: the RM alone


def test_rs_score_without_the_gate_adds_verifier_and_rm():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=0.0) == 9.0
