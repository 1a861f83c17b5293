"""The `afm-align train RECIPE` handler: one command for every policy recipe of the recipe table.

`afm-align train RECIPE --from CHECKPOINT --data DIR --out DIR [--rm DIR] [--preset tiny]
[--config FILE] [key=value ...]` resolves the recipe's config (preset YAML, then the file, then the flags
and overrides; `alignment.recipes.load`) and calls the recipe's `main(cfg)`, which writes a member
directory (weights, tokenizer, meta.json, resolved config, metrics.jsonl). The recipes and their configs
come from `alignment.recipes.RECIPES`; every policy config speaks one vocabulary, so the flags map to the
same keys for every recipe (`from_checkpoint`, `data`, `out`, `reward_model`).
"""
from __future__ import annotations

import dataclasses

from afm_align.errors import UserError
from alignment import recipes


def resolve(recipe: str, args):
    """The resolved config of a recipe from the CLI arguments."""
    flags = [f"from_checkpoint={args.from_checkpoint}", f"data={args.data}", f"out={args.out}"]
    if args.rm:
        if "reward_model" not in {f.name for f in dataclasses.fields(recipes.config_class(recipe))}:
            raise UserError(f"train {recipe} takes no reward model (--rm); it trains on labelled data only")
        flags.append(f"reward_model={args.rm}")
    return recipes.load(recipe, preset=args.preset, config_file=args.config, overrides=[*flags, *args.overrides])


def run(args) -> int:
    from afm_align.store import check_out

    cfg = resolve(args.recipe, args)
    check_out(cfg.out, marker="meta.json", what="model", overwrite=args.overwrite)
    result = recipes.main_of(args.recipe)(cfg)
    print(f"train {args.recipe}: wrote member {args.out}")
    if isinstance(result, dict):
        shown = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        print("  " + ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:8]))
    return 0
