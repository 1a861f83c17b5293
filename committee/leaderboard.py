"""Bradley-Terry / Elo leaderboard over all members of all rounds, with bootstrap 95% intervals.

What it does: every member answered the same held-out prompts; on each prompt the reward model (RM)
scored every answer, so each pair of members that both have a score there plays one game (higher RM
score wins, a tie counts half). `score_matrix(samples, members)` lays the scores out as
prompts x members; `win_matrix` sums the games, optionally weighting each prompt (the bootstrap draws
prompts with replacement as integer weights). `fit_bradley_terry(wins)` maximises the Bradley-Terry
log-likelihood `sum_ij W_ij log sigmoid(theta_i - theta_j)` minus an L2 prior `prior/2 * |theta|^2` by
Newton's method: the objective is concave, the prior makes it strictly so, so a member that won (or lost)
every game still gets a finite rating instead of diverging. `elo_ratings(...)` maps theta to the Elo scale
(`1000 + 400/ln 10 * (theta - mean theta)`: 1000 is the average member, +400 means 10:1 odds), and
resamples prompts `n_boot` times for percentile 95% intervals.

What it simplifies: games on one prompt are not independent (the same prompt judges every pair), which
is why the bootstrap resamples whole prompts rather than games. Ratings are relative to the members in
the pool, so adding a round's members shifts earlier members' numbers a little.

Run: `python -m pytest tests/committee/test_leaderboard.py`.
"""
from __future__ import annotations

import math

import numpy as np

ELO_SCALE = 400.0 / math.log(10.0)
ELO_CENTER = 1000.0
DEFAULT_PRIOR = 0.01  # L2 strength on theta: negligible against hundreds of games, enough to stay finite


def score_matrix(samples: list[dict], members: list[str], key: str = "rm_score") -> tuple[list[str], np.ndarray]:
    """(prompt_ids, S) with S[p, m] = the `key` score of member m on prompt p (NaN where missing)."""
    column = {name: i for i, name in enumerate(members)}
    prompt_ids = sorted({s["prompt_id"] for s in samples if s.get("member") in column})
    row = {pid: i for i, pid in enumerate(prompt_ids)}
    scores = np.full((len(prompt_ids), len(members)), np.nan)
    for s in samples:
        value = s.get(key)
        if s.get("member") in column and value is not None:
            scores[row[s["prompt_id"]], column[s["member"]]] = float(value)
    return prompt_ids, scores


def game_outcomes(scores: np.ndarray) -> np.ndarray:
    """O[p, i, j] = 1 if i beat j on prompt p, 0.5 for a tie, 0 for a loss or no game (or i == j)."""
    a, b = scores[:, :, None], scores[:, None, :]
    with np.errstate(invalid="ignore"):
        outcome = np.where(a > b, 1.0, 0.0) + np.where(a == b, 0.5, 0.0)
    outcome[np.isnan(a) | np.isnan(b)] = 0.0  # a missing score plays no game
    idx = np.arange(scores.shape[1])
    outcome[:, idx, idx] = 0.0
    return outcome


def win_matrix(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """W[i, j] = (weighted) games member i won against j: higher score wins, a tie is half a win each."""
    weights = np.ones(scores.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    return np.einsum("p,pij->ij", weights, game_outcomes(scores))


def fit_bradley_terry(wins: np.ndarray, prior: float = DEFAULT_PRIOR, iters: int = 100,
                      tol: float = 1e-10) -> np.ndarray:
    """Strengths theta (mean zero) maximising the BT log-likelihood of `wins` with an L2 prior."""
    wins = np.asarray(wins, dtype=float)
    n = wins.shape[0]
    games = wins + wins.T
    theta = np.zeros(n)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))  # P(i beats j)
        grad = (wins - games * p).sum(axis=1) - prior * theta
        curvature = games * p * (1.0 - p)
        hessian = curvature - np.diag(curvature.sum(axis=1)) - prior * np.eye(n)
        # lstsq, not solve: with prior 0 the Hessian is singular along theta + c (only differences matter)
        step = np.linalg.lstsq(hessian, grad, rcond=None)[0]
        theta = theta - step
        theta -= theta.mean()
        if np.max(np.abs(step)) < tol:
            break
    return theta


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Elo points: 1000 for the average member, 400/ln10 points per unit of theta."""
    return ELO_CENTER + ELO_SCALE * (np.asarray(theta) - np.mean(theta))


def elo_ratings(samples: list[dict], members: list[str], *, n_boot: int = 1000, seed: int = 0,
                prior: float = DEFAULT_PRIOR, key: str = "rm_score") -> dict[str, dict]:
    """{member: {"elo": float, "elo_ci95": [lo, hi], "games": int}} from per-prompt games judged by `key`.

    Members without any scored game get `elo` None. The interval is a percentile bootstrap over prompts.
    """
    _, scores = score_matrix(samples, members, key)
    wins = win_matrix(scores)
    played = (wins + wins.T).sum(axis=1)
    active = [i for i in range(len(members)) if played[i] > 0]
    out = {name: {"elo": None, "elo_ci95": None, "games": 0} for name in members}
    if len(active) < 2:
        return out
    outcomes = game_outcomes(scores[:, active])
    n_prompts = outcomes.shape[0]
    point = to_elo(fit_bradley_terry(outcomes.sum(axis=0), prior))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, len(active)))
    for b in range(n_boot):
        counts = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts))
        draws[b] = to_elo(fit_bradley_terry(np.einsum("p,pij->ij", counts, outcomes), prior))
    low, high = (np.percentile(draws, [2.5, 97.5], axis=0) if n_boot else (point, point))
    for k, i in enumerate(active):
        out[members[i]] = {"elo": round(float(point[k]), 1),
                           "elo_ci95": [round(float(low[k]), 1), round(float(high[k]), 1)],
                           "games": round(float(played[i]))}
    return out
