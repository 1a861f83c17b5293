"""The `afm-align rm {train,eval,score}` handlers: thin glue between the CLI and the RM recipe/scorer.

A trained RM is loaded with `reward_model.scorer.load_reward_model`, on the device `afm_align.member_io`
gives the stage (`rm-eval` for eval, `rm-scoring` for score).

Run: `afm-align rm eval --model DIR --data DIR [--json FILE]`, `afm-align rm score --model DIR --data DIR --out DIR`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.errors import UserError


def _rm_dir(path: str) -> str:
    """`--model PATH` when it holds a trained RM, else a one-line UserError naming the flag (a path with no
    config.json at all is refused earlier, in `afm_align.cli`, before torch loads)."""
    from reward_model.model import check_rm_dir

    return str(check_rm_dir(path, "--model"))


def cmd_train(args) -> int:
    from afm_align.store import check_out
    from reward_model import recipe

    check_out(args.out, marker="meta.json", what="reward model", overwrite=args.overwrite)
    overrides = [*args.overrides, f"data={args.data}", f"out={args.out}"]
    if args.base:  # the flag keeps its name for users; the config key is the shared `from_checkpoint`
        overrides.append(f"from_checkpoint={args.base}")
    if args.run:
        overrides.append(f"run={args.run}")
    recipe.main(recipe.load(args.preset, args.config, overrides))
    return 0


def cmd_eval(args) -> int:
    model_dir = _rm_dir(args.model)
    from afm_align.store import read_rows
    from reward_model.evaluate import evaluate_preferences
    from reward_model.recipe import print_table, summary, to_dataset
    from reward_model.scorer import RewardScorer, load_reward_model

    rows = read_rows(args.data, "preference")
    model, tokenizer = load_reward_model(model_dir, stage="rm-eval")
    scorer = RewardScorer(model, tokenizer, batch_size=64, stage="rm-eval")
    metrics = evaluate_preferences(scorer, to_dataset(rows))
    headline = summary(metrics)
    print_table(headline)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**headline, "all": metrics}, indent=2))
    return 0


def cmd_score(args) -> int:
    from afm_align.store import MANIFEST_FILE, check_out, read_manifest, read_rows, write_dataset

    model_dir = _rm_dir(args.model)
    check_out(args.out, marker=MANIFEST_FILE, what="response dataset", overwrite=args.overwrite,
              same_kind=lambda p: read_manifest(p).kind == "response")
    from reward_model.scorer import RewardScorer, load_reward_model

    manifest_kind = read_manifest(args.data).kind if Path(args.data).is_dir() else None
    if manifest_kind not in ("response", "sft"):
        raise UserError(f"--data {args.data}: needs a response or sft dataset folder (found {manifest_kind})")
    rows = read_rows(args.data, manifest_kind)
    if any("prompt" not in r or "completion" not in r for r in rows):
        raise UserError(f"--data {args.data}: every row needs 'prompt' and 'completion' to be scored")
    model, tokenizer = load_reward_model(model_dir)
    result = RewardScorer(model, tokenizer, batch_size=64).score([r["prompt"] for r in rows],
                                                                  [r["completion"] for r in rows])
    out_rows = [{"id": r["id"], "prompt_id": r.get("prompt_id", r["id"]), "member": r.get("member", "unknown"),
                 "round": r.get("round", 0), "prompt": r["prompt"], "completion": r["completion"],
                 "rm_score": reward, "rm_grades": grades}
                for r, reward, grades in zip(rows, result.rewards, result.grades)]
    manifest = write_dataset(out_rows, "response", args.out, producer="reward_model.score",
                             config={"model": str(args.model)})
    print(f"rm score: scored {manifest.rows} responses -> {args.out}")
    return 0


HANDLERS = {"train": cmd_train, "eval": cmd_eval, "score": cmd_score}


def run(args) -> int:
    return HANDLERS[args.rm_command](args)
