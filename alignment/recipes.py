"""The recipe table: every policy recipe of afm-align, one row each, and everything derived from it.

A row names where the recipe lives (module, config class; `main(cfg)` is always the recipe's entry point),
its preset YAML (`configs/<preset>/<preset_name>.yaml`) and what an iTeC round hands it:
- `round_data`: the round's dataset it trains on (`sft_data`: the round's prompts with reference answers,
  `prompts`: the round's prompt rows, `preferences`: the round's labelled pairs), or None when the recipe is
  not a round candidate;
- `round_reward_model`: the round passes its refreshed RM as the config's `reward_model`;
- `default_member`: the recipe is a candidate of every round unless `members` says otherwise.
The round fills the shared config vocabulary (`from_checkpoint, data, out, member, round, seed`,
`reward_model`) from these; a recipe that sits a round out (nothing to train on) raises
`afm_align.errors.NothingToTrain`. Only rejection sampling has a round adapter of its own
(`committee.candidates.candidate_rs`: it reuses the committee's answers instead of sampling again).

Derived from the table, nowhere written again: the choices of `afm-align train`, its dispatch
(`alignment.cli_handlers`), the round's candidates, default members and per-recipe overrides
(`recipes: {name: [key=value, ...]}`, checked against `OVERRIDE_TARGETS`), and the tests' recipe lists.
Recipe modules are imported only when a recipe runs, so `afm-align --help` stays instant.

Adding a recipe: one module with a config dataclass and `main(cfg)`, one row here, and its preset YAMLs
(`configs/tiny/<name>.yaml`, `configs/small/<name>.yaml`); see docs/ARCHITECTURE.md.

Run: `python -c "from alignment.recipes import RECIPES; print(list(RECIPES))"`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from afm_align.config import load_config
from afm_align.errors import UserError


@dataclass(frozen=True)
class Recipe:
    """One row of the table."""

    module: str  # the module that owns the recipe; its `main(cfg)` trains and writes a member
    config: str  # the name of its config dataclass in that module
    preset_name: str  # its YAML under configs/<preset>/ (several recipes may share a module, e.g. dpo and ipo)
    summary: str  # one line for --help and the docs
    round_data: str | None = None  # the round dataset it trains on (None: not a round candidate)
    round_reward_model: bool = False  # the round passes its RM as `reward_model`
    default_member: bool = False  # a candidate of every round by default


ROUND_DATA = ("sft_data", "prompts", "preferences")  # what a round can hand a recipe as `data`

RECIPES: dict[str, Recipe] = {
    "sft": Recipe("alignment.sft", "SFTRecipeConfig", "sft",
                  "SFT on reference answers (a round: its fresh prompts with the families' references)",
                  round_data="sft_data", default_member=True),
    "rs": Recipe("alignment.rejection_sampling", "RSConfig", "rs",
                 "rejection sampling: the committee's samples scored verifier + RM, the best per prompt kept, SFT",
                 round_data="prompts", round_reward_model=True, default_member=True),
    "dpo": Recipe("alignment.preference", "PreferenceConfig", "dpo", "DPO on labelled preference pairs",
                  round_data="preferences", default_member=True),
    "ipo": Recipe("alignment.preference", "PreferenceConfig", "ipo", "IPO on labelled preference pairs",
                  round_data="preferences", default_member=True),
    "mdloo": Recipe("alignment.mdloo", "MDLOOConfig", "mdloo",
                    "MDLOO online RL (leave-one-out advantage, mirror-descent KL step) on the RM + verifiers",
                    round_data="prompts", round_reward_model=True, default_member=True),
    "rloo": Recipe("alignment.mdloo", "MDLOOConfig", "rloo",
                   "RLOO with PPO clipping (the MDLOO baseline) on the RM + verifiers",
                   round_data="prompts", round_reward_model=True),
    "online_dpo": Recipe("alignment.online_dpo", "OnlineDPOConfig", "online_dpo",
                         "Qwen2's online DPO: the policy's samples, the RM's best vs worst per prompt, DPO steps",
                         round_data="prompts", round_reward_model=True),
    # the on-device track (committee.on_device): not round candidates
    "prune": Recipe("alignment.pruning", "PruneConfig", "prune",
                    "structured pruning of a larger member (heads, hidden and MLP widths by importance) into a student"),
    "distill": Recipe("alignment.distill", "DistillConfig", "distill",
                      "token-level distillation from a teacher (AFM 0.9 top-1 + 0.1 label mix, or KL; none = plain CE)"),
    "quantize": Recipe("alignment.quantize", "QuantizeConfig", "quantize",
                       "palettise a member: k-means look-up tables at 4, 2 or mixed bits, 8-bit embeddings"),
    "adapter": Recipe("alignment.adapters", "AdapterConfig", "adapter",
                      "a LoRA adapter on a frozen (palettised) base: accuracy recovery or a task adapter"),
    # model merging (Llama 3.1 / Gemma 2 / WARP): not a round candidate
    "merge": Recipe("alignment.merge", "MergeConfig", "merge",
                    "merge members of one architecture: average, weighted, EMA, SLERP of task vectors, LITI, WARP"),
}

ROUND_CANDIDATES = tuple(name for name, r in RECIPES.items() if r.round_data)
DEFAULT_MEMBERS = tuple(name for name, r in RECIPES.items() if r.default_member)
# what a round's `recipes:` overrides may name: every round candidate, the base model's `init`, round 0's
# SFT member `sft0` (recipe sft), the reward model `rm`, the recipes only a system's named candidates use
# (`merge`, `distill`) and the run's `teacher` (SFT keys over sft0's for the grown teacher; committee.systems)
OVERRIDE_TARGETS = (*ROUND_CANDIDATES, "merge", "distill", "init", "sft0", "rm", "teacher")


def recipe(name: str) -> Recipe:
    """The row of `name`; an unknown name is a one-line UserError listing the recipes."""
    if name not in RECIPES:
        raise UserError(f"unknown recipe '{name}'; recipes are: {', '.join(RECIPES)}")
    return RECIPES[name]


def config_class(name: str) -> type:
    """The config dataclass of recipe `name` (imports its module)."""
    row = recipe(name)
    return getattr(importlib.import_module(row.module), row.config)


def main_of(name: str) -> Callable[[Any], Any]:
    """The `main(cfg)` of recipe `name` (imports its module)."""
    return getattr(importlib.import_module(recipe(name).module), "main")


def load(name: str, *, preset: str = "tiny", config_file: str | None = None, overrides=(), **fields) -> Any:
    """The resolved config of recipe `name`: defaults, its preset YAML, a config file, overrides, then `fields`."""
    from dataclasses import replace

    cfg = load_config(config_class(name), preset=preset, recipe=recipe(name).preset_name, config_file=config_file,
                      overrides=list(overrides))
    return replace(cfg, **fields) if fields else cfg


def check_overrides(recipes: dict) -> dict:
    """A round's `recipes:` mapping, checked: known targets, each a list of `key=value` strings."""
    for name, items in recipes.items():
        if name not in OVERRIDE_TARGETS:
            raise UserError(f"recipes.{name}: not a recipe of a round; choose from: {', '.join(OVERRIDE_TARGETS)}")
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) and "=" in i for i in items):
            raise UserError(f"recipes.{name} must be a list of key=value strings (got {items!r})")
    return recipes
