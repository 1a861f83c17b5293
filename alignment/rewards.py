"""The RL reward: the reward-model score plus weighted verifier rewards, all through TRL's signature.

What it does:
- `RewardTerm(name, fn, weight)`: one reward function `fn(prompts, completions, **columns) -> list[float|None]`
  (DESIGN §2) and its weight.
- `reward_terms(rm=..., rm_weight=..., families=..., verifier_weight=...)`: the terms of the AFM-style
  reward: the RM scorer (`reward_model.scorer.RewardScorer` over a saved `MultiHeadRewardModel`, when an RM
  directory is given) plus each synthetic family's verifier reward (`synth.<family>_tasks.reward`, which
  returns None for rows of other domains, so a row is graded by its own family's verifier).
- `combine(terms)`: one function with the same signature: `sum_i w_i * r_i` over the terms that apply
  (not None); None when no term applies. This is exactly how TRL's `RLOOTrainer` combines a list of
  reward functions with `reward_weights` (a weighted nansum; a row where all are None is unscorable and
  gets zero advantage), so the recipe can hand TRL the terms (one logged column each) and rejection
  sampling / evaluation can call `combine(terms)` and get the same number.
- `load_rm(path)`: the RM scorer of a saved RM directory (`import reward_model` registers the Auto classes).

The KL penalty to the reference (`- beta * log pi/pi_ref`) is not part of these functions: the trainer
subtracts it, since it needs the policy's log-probs (afm-spec §4.1).

What it simplifies: one weight for all verifiers (per-family weights: pass your own terms).

Run: `python -c "from alignment.rewards import reward_terms; print([t.name for t in reward_terms()])"`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from afm_align.errors import UserError
from synth.families import FAMILIES, family


@dataclass
class RewardTerm:
    """One weighted reward function of TRL's signature."""

    name: str
    fn: Callable
    weight: float = 1.0


def _named(fn: Callable, name: str) -> Callable:
    """`fn` under its own `__name__` (TRL names each logged reward column after it)."""
    def reward(prompts, completions, **columns):
        return fn(prompts, completions, **columns)

    reward.__name__ = name
    return reward


def load_rm(path: str | Path, batch_size: int = 16):
    """A `RewardScorer` (a TRL reward function) over the multi-head RM saved at `path`, on member_io's device."""
    from reward_model.scorer import RewardScorer, load_reward_model

    return RewardScorer(*load_reward_model(path, stage="rm-scoring"), batch_size=batch_size)


def verifier_terms(families=FAMILIES, weight: float = 1.0) -> list[RewardTerm]:
    """One term per synthetic family given (`synth.families`), each applying to its own domain only."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise UserError(f"unknown verifier families {unknown}; families are: {', '.join(FAMILIES)}.")
    return [RewardTerm(f"verifier_{name}", _named(family(name).reward, f"verifier_{name}"), weight)
            for name in families]


def reward_terms(rm: str | Path | Callable | None = None, rm_weight: float = 1.0, families=FAMILIES,
                 verifier_weight: float = 1.0) -> list[RewardTerm]:
    """The RM score (a directory or a ready scorer; optional) plus weighted verifier rewards."""
    terms = []
    if rm is not None:
        scorer = load_rm(rm) if isinstance(rm, (str, Path)) else rm
        terms.append(RewardTerm("reward_model", scorer, rm_weight))
    if verifier_weight:
        terms += verifier_terms(families, verifier_weight)
    if not terms:
        raise UserError("the reward has no terms: give a reward model or a non-zero verifier weight.")
    return terms


def combine(terms: list[RewardTerm]) -> Callable:
    """One reward function: the weighted sum of the terms that apply; None where none applies."""
    def reward(prompts, completions, **columns) -> list[float | None]:
        total: list[float | None] = [None] * len(completions)
        for term in terms:
            values = term.fn(prompts, completions, **columns)
            if len(values) != len(completions):
                raise ValueError(f"reward term '{term.name}' returned {len(values)} values for {len(completions)} completions.")
            for i, value in enumerate(values):
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                total[i] = (total[i] or 0.0) + term.weight * float(value)
        return total

    reward.__name__ = "reward"
    return reward
