"""The `afm-align train RECIPE` handler: one command for every policy recipe.

`afm-align train {sft,rs,dpo,ipo,mdloo,rloo} --from CHECKPOINT --data DIR --out DIR [--rm DIR]
[--preset tiny] [--config FILE] [key=value ...]` resolves the recipe's config (preset YAML, then the file,
then the flags and overrides) and calls the recipe's `main(cfg)`, which writes a member directory
(weights, tokenizer, meta.json, resolved config, metrics.jsonl).
"""
from __future__ import annotations

import importlib

# recipe -> (module, config class name, preset recipe name)
RECIPES = {
    "sft": ("alignment.sft", "SFTRecipeConfig", "sft"),
    "rs": ("alignment.rejection_sampling", "RSConfig", "rs"),
    "dpo": ("alignment.preference", "PreferenceConfig", "dpo"),
    "ipo": ("alignment.preference", "PreferenceConfig", "ipo"),
    "mdloo": ("alignment.mdloo", "MDLOOConfig", "mdloo"),
    "rloo": ("alignment.mdloo", "MDLOOConfig", "rloo"),
}


def resolve(recipe: str, args):
    """(module, resolved config) of a recipe from the CLI arguments."""
    from afm_align.config import load_config

    module_name, class_name, preset_recipe = RECIPES[recipe]
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    flags = [f"from_checkpoint={args.from_checkpoint}", f"data={args.data}", f"out={args.out}"]
    if args.rm:
        rm_field = "reward_model" if "reward_model" in cls.__dataclass_fields__ else "rm"
        flags.append(f"{rm_field}={args.rm}")
    cfg = load_config(cls, preset=args.preset, recipe=preset_recipe, config_file=args.config,
                      overrides=[*flags, *args.overrides])
    return module, cfg


def run(args) -> int:
    module, cfg = resolve(args.recipe, args)
    result = module.main(cfg)
    print(f"train {args.recipe}: wrote member {args.out}")
    if isinstance(result, dict):
        shown = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        print("  " + ", ".join(f"{k}={v:.4g}" for k, v in list(shown.items())[:8]))
    return 0
