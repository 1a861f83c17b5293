"""Committee distillation: the verifier gates, the RM reranks what passed; earlier rounds' data accumulates."""
from alignment.rejection_sampling import score_samples
from committee.candidates import accumulated_rows


def rs_score(verifier, rm, rm_weight, verifier_min):
    return score_samples([verifier], [rm], rm_weight, verifier_min)[0]


def test_rs_score_drops_answers_the_verifier_failed_whatever_the_rm_says():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=1.0) is None
    assert rs_score(1.0, -0.2, rm_weight=1.0, verifier_min=1.0) == 0.8
    assert rs_score(None, 0.7, rm_weight=0.5, verifier_min=1.0) == 0.35  # no verifier: the RM alone


def test_rs_score_without_the_gate_adds_verifier_and_rm():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=0.0) == 9.0


def test_accumulated_rows_keep_every_round_once_in_order():
    r1 = [{"id": "rs-r1-a", "round": 1}, {"id": "rs-r1-b", "round": 1}]
    r2 = [*r1, {"id": "rs-r2-c", "round": 2}]  # round 2 accumulated round 1's rows already
    r3 = [{"id": "rs-r3-a", "round": 3}]
    assert [r["id"] for r in accumulated_rows(r1 + r2, r3)] == ["rs-r1-a", "rs-r1-b", "rs-r2-c", "rs-r3-a"]
    assert accumulated_rows([], r3) == r3
