"""The `afm-align rm {train,eval,score}` handlers: thin glue between the CLI and the RM recipe/scorer.

Run: `afm-align rm eval --model DIR --data DIR [--json FILE]`, `afm-align rm score --model DIR --data DIR --out DIR`.
"""
from __future__ import annotations

import json
from pathlib import Path


def load_rm(path: str):
    """(model, tokenizer) of a trained RM directory; a wrong path is a one-line ValueError."""
    from transformers import AutoModel, AutoTokenizer

    import reward_model  # noqa: F401  (registers the Auto classes)

    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"--model {path}: not a trained reward-model directory")
    model = AutoModel.from_pretrained(path, local_files_only=True)
    if getattr(model.config, "model_type", "") != "afm_multihead_rm":
        raise ValueError(f"--model {path}: holds a '{model.config.model_type}' model, not an afm-align RM")
    return model.eval(), AutoTokenizer.from_pretrained(path, local_files_only=True)


def cmd_train(args) -> int:
    from reward_model import recipe

    overrides = [*args.overrides, f"data={args.data}", f"output_dir={args.out}"]
    if args.base:
        overrides.append(f"base={args.base}")
    if args.run:
        overrides.append(f"run={args.run}")
    recipe.main(recipe.load(args.preset, args.config, overrides))
    return 0


def cmd_eval(args) -> int:
    from afm_align.store import read_rows
    from reward_model.evaluate import evaluate_preferences
    from reward_model.recipe import print_table, summary, to_dataset
    from reward_model.scorer import RewardScorer

    rows = read_rows(args.data, "preference")
    model, tokenizer = load_rm(args.model)
    metrics = evaluate_preferences(RewardScorer(model, tokenizer, batch_size=64), to_dataset(rows))
    headline = summary(metrics)
    print_table(headline)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**headline, "all": metrics}, indent=2))
    return 0


def cmd_score(args) -> int:
    from afm_align.store import read_rows, write_dataset
    from reward_model.scorer import RewardScorer

    manifest_kind = json.loads((Path(args.data) / "manifest.json").read_text())["kind"] \
        if (Path(args.data) / "manifest.json").is_file() else None
    if manifest_kind not in ("response", "sft"):
        raise ValueError(f"--data {args.data}: needs a response or sft dataset folder (found {manifest_kind})")
    rows = read_rows(args.data, manifest_kind)
    if any("prompt" not in r or "completion" not in r for r in rows):
        raise ValueError(f"--data {args.data}: every row needs 'prompt' and 'completion' to be scored")
    model, tokenizer = load_rm(args.model)
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
