"""Model merging math, as pure functions on state dicts: averaging, EMA, SLERP of task vectors and LITI.

The post-training systems of our sources merge models (afm-spec §§10-12): Llama 3.1 averages the RM, SFT and
DPO models of runs with other data or hyper-parameters; Gemma 2 averages the models of its phases and runs;
WARP (Ramé et al.) keeps an exponential-moving-average anchor inside RL, merges independently RL-tuned
policies by per-tensor spherical interpolation (SLERP) of their task vectors `delta_m = theta_m - theta_init`,
and interpolates the result back toward the initialisation (LITI):
    theta_slerp = theta_init + sin((1-l) W) / sin W * delta_1 + sin(l W) / sin W * delta_2,  W = angle(delta_1, delta_2)
    theta_eta   = (1 - eta) * theta_init + eta * theta_slerp
Every function here takes and returns `{name: tensor}` mappings (a model's `state_dict()`), never a model, so
each formula is checked by hand in `tests/alignment/test_merging.py`. Merging is done in float32 and cast back
to each tensor's dtype; integer buffers are taken from the first model. Models of different architectures
(other parameter names or shapes) are a one-line `UserError`.

This module is the math only: the `merge` recipe (`alignment.merge`) calls it.

Run: `python -m pytest tests/alignment/test_merging.py`.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from afm_align.errors import UserError

State = Mapping[str, torch.Tensor]
PARALLEL_EPS = 1e-6  # below this angle (radians) two task vectors are parallel: SLERP is linear interpolation


def check_same_architecture(states: Sequence[State], names: Sequence[str] | None = None) -> None:
    """One line when the states do not hold the same parameter names with the same shapes."""
    if len(states) < 1:
        raise UserError("merging needs at least one model")
    names = list(names or [f"model {i}" for i in range(len(states))])
    first = states[0]
    for name, state in zip(names[1:], states[1:]):
        missing = sorted(set(first) ^ set(state))
        if missing:
            raise UserError(f"cannot merge {names[0]} and {name}: different architectures "
                            f"(parameter '{missing[0]}' is in only one of them)")
        for key, tensor in first.items():
            if tuple(tensor.shape) != tuple(state[key].shape):
                raise UserError(f"cannot merge {names[0]} and {name}: different architectures "
                                f"('{key}' is {tuple(tensor.shape)} in one, {tuple(state[key].shape)} in the other)")


def _mergeable(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point()


def weighted_average(states: Sequence[State], weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """sum_m w_m theta_m with the weights normalised to sum to 1 (uniform when none are given)."""
    check_same_architecture(states)
    weights = [1.0] * len(states) if weights is None else [float(w) for w in weights]
    if len(weights) != len(states) or any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise UserError(f"merge weights must be {len(states)} non-negative numbers with a positive sum (got {weights})")
    total = sum(weights)
    out = {}
    for key, first in states[0].items():
        if not _mergeable(first):
            out[key] = first.clone()
            continue
        acc = sum(w / total * s[key].to(torch.float32) for w, s in zip(weights, states))
        out[key] = acc.to(first.dtype)
    return out


def ema_update(anchor: State, current: State, decay: float) -> dict[str, torch.Tensor]:
    """WARP's anchor step: decay * anchor + (1 - decay) * current (decay in [0, 1])."""
    if not 0.0 <= decay <= 1.0:
        raise UserError(f"EMA decay must be in [0, 1] (got {decay})")
    if decay in (0.0, 1.0):
        check_same_architecture([anchor, current], ["the anchor", "the policy"])
        return {k: (anchor if decay == 1.0 else current)[k].clone() for k in anchor}
    return weighted_average([anchor, current], [decay, 1.0 - decay])


def slerp_tensor(delta_1: torch.Tensor, delta_2: torch.Tensor, lam: float) -> torch.Tensor:
    """Spherical interpolation of two task vectors of one tensor (linear when they are parallel or zero)."""
    a, b = delta_1.to(torch.float32), delta_2.to(torch.float32)
    norms = a.norm() * b.norm()
    if norms == 0:
        return (1 - lam) * a + lam * b
    cosine = torch.clamp((a.flatten() @ b.flatten()) / norms, -1.0, 1.0)
    omega = torch.arccos(cosine)
    if omega < PARALLEL_EPS:
        return (1 - lam) * a + lam * b
    sin_omega = torch.sin(omega)
    return torch.sin((1 - lam) * omega) / sin_omega * a + torch.sin(lam * omega) / sin_omega * b


def slerp(init: State, model_1: State, model_2: State, lam: float = 0.5) -> dict[str, torch.Tensor]:
    """WARP's merge of two fine-tuned models: per tensor, theta_init + SLERP(delta_1, delta_2; lam).

    At lam = 0 and lam = 1 the endpoints are returned exactly (no `init + (theta - init)` rounding).
    """
    if not 0.0 <= lam <= 1.0:
        raise UserError(f"SLERP lambda must be in [0, 1] (got {lam})")
    check_same_architecture([init, model_1, model_2], ["the initialisation", "model 1", "model 2"])
    if lam in (0.0, 1.0):
        return {k: (model_1 if lam == 0.0 else model_2)[k].clone() for k in model_1}
    out = {}
    for key, start in init.items():
        if not _mergeable(start):
            out[key] = model_1[key].clone()
            continue
        base = start.to(torch.float32)
        merged = base + slerp_tensor(model_1[key].to(torch.float32) - base, model_2[key].to(torch.float32) - base, lam)
        out[key] = merged.to(model_1[key].dtype)
    return out


def liti(init: State, merged: State, eta: float = 0.3) -> dict[str, torch.Tensor]:
    """WARP's linear interpolation toward the initialisation: (1 - eta) * theta_init + eta * theta_merged."""
    if not 0.0 <= eta <= 1.0:
        raise UserError(f"LITI eta must be in [0, 1] (got {eta})")
    check_same_architecture([init, merged], ["the initialisation", "the merged model"])
    if eta in (0.0, 1.0):
        return {k: (init if eta == 0.0 else merged)[k].clone() for k in init}
    return weighted_average([init, merged], [1.0 - eta, eta])
