"""Bradley-Terry / Elo: hand-worked ratios, symmetry, the prior keeps ratings finite, bootstrap intervals."""
import math

import numpy as np
import pytest

from committee.leaderboard import (
    ELO_SCALE,
    elo_ratings,
    fit_bradley_terry,
    score_matrix,
    to_elo,
    win_matrix,
)


def test_three_wins_one_loss_gives_odds_three():
    # P(a beats b) = 3/4 at the maximum likelihood, so theta_a - theta_b = ln 3 and Elo differs by 400 log10 3.
    theta = fit_bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]), prior=0.0)
    assert theta[0] - theta[1] == pytest.approx(math.log(3), abs=1e-8)
    assert theta.sum() == pytest.approx(0.0, abs=1e-12)
    elo = to_elo(theta)
    assert elo[0] - elo[1] == pytest.approx(400 * math.log10(3), abs=1e-6)  # 190.85 points
    assert elo.mean() == pytest.approx(1000.0)
    assert ELO_SCALE == pytest.approx(173.7177927613007)


def test_symmetry_swapping_players_negates_strengths():
    wins = np.array([[0.0, 5.0, 2.0], [3.0, 0.0, 4.0], [1.0, 2.0, 0.0]])
    theta = fit_bradley_terry(wins)
    perm = [2, 0, 1]
    permuted = fit_bradley_terry(wins[np.ix_(perm, perm)])
    assert permuted == pytest.approx(theta[perm], abs=1e-8)
    assert fit_bradley_terry(wins.T) == pytest.approx(-theta, abs=1e-8)
    even = fit_bradley_terry(np.array([[0.0, 4.0], [4.0, 0.0]]))
    assert even == pytest.approx([0.0, 0.0], abs=1e-12)


def test_prior_keeps_a_perfect_record_finite_and_shrinks():
    wins = np.array([[0.0, 10.0], [0.0, 0.0]])
    weak, strong = fit_bradley_terry(wins, prior=1.0), fit_bradley_terry(wins, prior=0.01)
    assert np.all(np.isfinite(strong)) and strong[0] > weak[0] > 0
    # stationarity of the penalised likelihood: 10 (1 - p) = prior * theta_a, with theta_b = -theta_a
    p = 1 / (1 + math.exp(-2 * weak[0]))
    assert 10 * (1 - p) == pytest.approx(1.0 * weak[0], abs=1e-8)


def test_win_matrix_counts_ties_half_and_skips_missing_scores():
    scores = np.array([[1.0, 0.0, np.nan], [0.5, 0.5, 2.0], [0.0, 1.0, 1.0]])
    wins = win_matrix(scores)
    assert wins[0, 1] == pytest.approx(1 + 0.5 + 0) and wins[1, 0] == pytest.approx(0 + 0.5 + 1)
    assert wins[0, 2] == pytest.approx(0 + 0 + 0) and wins[2, 0] == pytest.approx(1 + 1)
    assert wins[1, 2] == pytest.approx(0.5) and np.all(np.diag(wins) == 0)
    assert win_matrix(scores, weights=np.array([2.0, 0.0, 0.0]))[0, 1] == pytest.approx(2.0)


def _samples(strengths: dict[str, float], n_prompts: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"prompt_id": f"p{p}", "member": m, "rm_score": float(s + rng.normal())}
            for p in range(n_prompts) for m, s in strengths.items()]


def test_elo_ratings_order_members_and_intervals_contain_the_point():
    samples = _samples({"r0-sft": 0.0, "r1-dpo": 0.7, "r1-mdloo": 1.5}, 120)
    samples.append({"prompt_id": "p0", "member": "r1-ipo", "rm_score": None})  # no game played
    members = ["r0-sft", "r1-dpo", "r1-mdloo", "r1-ipo"]
    out = elo_ratings(samples, members, n_boot=200, seed=1)
    assert out["r1-mdloo"]["elo"] > out["r1-dpo"]["elo"] > out["r0-sft"]["elo"]
    assert sum(out[m]["elo"] for m in members[:3]) / 3 == pytest.approx(1000, abs=0.2)
    for name in members[:3]:
        low, high = out[name]["elo_ci95"]
        assert low <= out[name]["elo"] <= high and high - low > 0
        assert out[name]["games"] == 240
    assert out["r1-ipo"] == {"elo": None, "elo_ci95": None, "games": 0}
    assert elo_ratings(samples, members, n_boot=200, seed=1) == out  # seeded


def test_score_matrix_lays_out_prompts_by_members():
    ids, scores = score_matrix([{"prompt_id": "b", "member": "x", "rm_score": 1.0},
                                {"prompt_id": "a", "member": "y", "rm_score": 2.0},
                                {"prompt_id": "a", "member": "z", "rm_score": 3.0}], ["x", "y"])
    assert ids == ["a", "b"]
    assert np.isnan(scores[0, 0]) and scores[0, 1] == 2.0 and scores[1, 0] == 1.0 and np.isnan(scores[1, 1])
