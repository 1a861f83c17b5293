"""Pure loss and advantage functions of online RL: leave-one-out advantages, MDLOO, PPO-clip (the RLOO baseline).

What it does (afm-spec §4; every function is tensor in, tensor out, no model, no trainer):
- `loo_advantages(rewards[n, K])`: the leave-one-out advantage of §4.2,
  `A_ij = R_ij - mean_{j' != j} R_ij'` = `K/(K-1) * (R_ij - mean_j R_ij)`; no std normalisation (AFM).
- `kl_to_old(logp_new, logp_old, mask, estimator)`: per-sample estimate of `KL(pi_theta || pi_old)` from
  samples of `pi_old`, with the estimator `f(rho) = rho log rho - rho + 1` (`rho = pi_theta / pi_old`).
  Under `pi_old`, `E[rho log rho] = KL(pi_theta || pi_old)` and `E[rho - 1] = 0`, so `f` is unbiased; unlike the
  bare `rho log rho` of afm-spec §4.3(a) it is never negative and its gradient vanishes at `rho = 1` *per
  sample* (`f'(rho) = log rho`), which is what makes the first inner step's gradient exactly RLOO's [DER].
  Two estimators (a dict literal, `KL_ESTIMATORS`):
    * `"token"` (default): `f` of the per-token ratio at every prefix of the sampled response, summed over
      the response. This is MDPO's per-state KL on the states the old policy visited (afm-spec §4.3(b),
      with a one-sample estimate instead of the exact sum over the vocabulary, which would need the old
      policy's full logits: batch x length x vocabulary floats kept between inner steps). It never
      exponentiates a whole-sequence log-ratio, so it stays finite on long responses.
    * `"sequence"`: `f` of the sequence-level ratio (afm-spec §4.3(a) plus the zero-mean control variate).
- `mdloo_loss(...)`: `L = -(1/nK) sum_ij rho_ij A_ij + (1/t_k) (1/nK) sum_ij KL_ij` with the sequence-level
  ratio `rho_ij = exp(log pi_theta(y_ij|x_i) - log pi_old(y_ij|x_i))` (bandit view: the whole response is one
  action, as RLOO). `(1/nK) sum_ij KL_ij` equals the spec's `(1/n) sum_i KL_i` with `KL_i` averaged over K.
- `ppo_clip_loss(...)`: TRL's RLOO loss, `-min(rho A, clip(rho, 1-eps_low, 1+eps_high) A)` on the same
  sequence-level ratio: the baseline MDLOO replaces.
- `t_schedule(kind, t0, k, n)`: the mirror-descent step size `t_k`, `"constant"` or MDPO's `"linear"`
  anneal `t_k = t0 * (1 - k/N)` (k counted from 0, so the KL weight `1/t_k` grows from 1/t0 to N/t0).

What it simplifies: log-ratios are clamped to +-`MAX_LOG_RATIO` before exponentiating, so a runaway
sequence ratio gives no gradient instead of inf/NaN (the KL term still pulls the policy back).

Run: `python -m pytest tests/alignment/test_losses.py`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from afm_align.errors import UserError

MAX_LOG_RATIO = 20.0  # exp(20) ~ 5e8: far outside any trust region, still finite in float32


class PolicyLoss(NamedTuple):
    """A policy loss and what the trainer logs about it (all but `loss` are detached scalars)."""

    loss: torch.Tensor
    kl_old: torch.Tensor  # mean estimated KL(pi_theta || pi_old) per response
    ratio: torch.Tensor  # mean sequence-level ratio pi_theta / pi_old
    clipped: torch.Tensor  # fraction of responses whose ratio was clipped (0 for MDLOO)


def loo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Leave-one-out advantages [n_prompts, K]: each reward minus the mean of the other K-1 rewards [LIN]."""
    if rewards.dim() != 2 or rewards.size(1) < 2:
        raise ValueError(f"loo_advantages needs rewards of shape [n_prompts, K] with K >= 2, got {tuple(rewards.shape)}.")
    k = rewards.size(1)
    baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    return rewards - baseline


def _f(log_ratio: torch.Tensor) -> torch.Tensor:
    """rho log rho - rho + 1 from log rho (>= 0, zero with zero gradient at rho = 1)."""
    log_ratio = log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.exp(log_ratio) * (log_ratio - 1.0) + 1.0


def _token_kl(logp_new: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (_f(logp_new - logp_old) * mask).sum(dim=-1)


def _sequence_kl(logp_new: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _f(((logp_new - logp_old) * mask).sum(dim=-1))


KL_ESTIMATORS = {"token": _token_kl, "sequence": _sequence_kl}


def kl_to_old(logp_new: torch.Tensor, logp_old: torch.Tensor, mask: torch.Tensor,
              estimator: str = "token") -> torch.Tensor:
    """Per-response estimate [B] of KL(pi_theta || pi_old) from per-token log-probs [B, T] of old samples."""
    if estimator not in KL_ESTIMATORS:
        raise UserError(f"unknown kl_estimator '{estimator}'; choose one of: {', '.join(KL_ESTIMATORS)}.")
    return KL_ESTIMATORS[estimator](logp_new, logp_old, mask.to(logp_new.dtype))


def _sequence_log_ratio(logp_new, logp_old, mask) -> torch.Tensor:
    log_ratio = ((logp_new - logp_old) * mask.to(logp_new.dtype)).sum(dim=-1)
    return log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)


def mdloo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
               t_k: float, kl_estimator: str = "token") -> PolicyLoss:
    """MDLOO (afm-spec §4.3): -mean(rho * A) + (1/t_k) * mean(KL(pi_theta || pi_old)).

    `logp_new`, `logp_old`: per-token log-probs [B, T] of the sampled responses under the policy being
    trained and under the sampling snapshot pi_old; `advantages` [B] (frozen, e.g. `loo_advantages`);
    `mask` [B, T] marks response tokens; `t_k` > 0 is the mirror-descent step size.
    """
    if t_k <= 0:
        raise ValueError(f"the mirror-descent step size t_k must be positive, got {t_k}.")
    ratio = torch.exp(_sequence_log_ratio(logp_new, logp_old, mask))
    kl = kl_to_old(logp_new, logp_old, mask, kl_estimator)
    loss = -(ratio * advantages).mean() + kl.mean() / t_k
    return PolicyLoss(loss, kl.mean().detach(), ratio.mean().detach(), torch.zeros((), device=loss.device))


def ppo_clip_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  epsilon: float = 0.2, epsilon_high: float | None = None) -> PolicyLoss:
    """RLOO with PPO clipping, as TRL's RLOOTrainer: -mean(min(rho A, clip(rho, 1-eps, 1+eps_high) A))."""
    high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(_sequence_log_ratio(logp_new, logp_old, mask))
    clipped_ratio = ratio.clamp(1.0 - epsilon, 1.0 + high)
    loss = -torch.min(ratio * advantages, clipped_ratio * advantages).mean()
    was_clipped = ((ratio < 1.0 - epsilon) & (advantages < 0)) | ((ratio > 1.0 + high) & (advantages > 0))
    kl = kl_to_old(logp_new.detach(), logp_old, mask, "token")  # logged only, for comparing with MDLOO
    return PolicyLoss(loss, kl.mean(), ratio.mean().detach(), was_clipped.float().mean())


def _constant(t0: float, k: int, n: int) -> float:
    return t0


def _linear(t0: float, k: int, n: int) -> float:
    return t0 * (1.0 - min(k, n - 1) / max(n, 1))  # k = 0..N-1 -> t0 .. t0/N, never 0


T_SCHEDULES = {"constant": _constant, "linear": _linear}


def t_schedule(kind: str, t0: float, k: int, n: int) -> float:
    """The step size t_k of outer iteration k (from 0) of n: constant, or MDPO's linear anneal [MDPO]."""
    if kind not in T_SCHEDULES:
        raise UserError(f"unknown t_schedule '{kind}'; choose one of: {', '.join(T_SCHEDULES)}.")
    if t0 <= 0:
        raise UserError(f"t0 (the initial mirror-descent step size) must be positive, got {t0}.")
    return T_SCHEDULES[kind](t0, k, n)
