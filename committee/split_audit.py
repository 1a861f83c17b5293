"""Audit of the splits: build every dataset a run trains on and check it against the run's dev and test sets.

What it does: `audit(cfg, rounds)` builds, without training anything, what `afm-align iterate --round R`
would train on: the base model's pre-training corpus (`synth.corpus.corpus_items`) and arithmetic drill
(`afm_align.init_base.drill_lines`), round 0's reference SFT data and synthetic RM pairs, and each round's
fresh prompts (the `sft`/`rs`/`dpo`/`ipo`/`mdloo` candidates' data come from them) and synthetic RM pairs.
Then, per family, against the run's fixed dev and test sets (`committee.round_data.eval_split_rows`):
- `dev_leaks` / `test_leaks`: dev or test problem identities that appear in any training data (must be 0);
- `reference_copies`: test reference answers of 30 characters or more that appear verbatim among the
  training references (must be 0: the check that catches a near-copy whose identity was drawn wrong);
- `template_overlap`: the share of test prompts whose user turns, with digits and capitalised words
  (proper names) masked, equal a masked training prompt. This is expected to be high where a family is a
  template with numbers in it (math): it measures format familiarity, not leakage, and is stated, not hidden.
- the drill: arithmetic facts whose one-operation math identity is a dev or test problem (must be 0).

Run: `python benchmarks/split_leakage.py` (prints the table, writes JSON); test: tests/committee/test_split_audit.py.
"""
from __future__ import annotations

import re
from collections import defaultdict

from committee.round_config import IterateConfig, overrides_of

MIN_REFERENCE_CHARS = 30
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_NAMES = re.compile(r"\b(?!I\b)[A-Z][a-z]+\b")


def masked_user_text(prompt: list[dict]) -> str:
    """The user turns of a chat prompt with digit runs and capitalised words masked."""
    text = "\n".join(m["content"] for m in prompt if m.get("role") == "user")
    return _NAMES.sub("<N>", _DIGITS.sub("#", text)).strip()


def _reference(row: dict) -> str | None:
    for key in ("reference", "chosen", "completion"):
        value = row.get(key)
        if isinstance(value, list) and value:
            return str(value[-1].get("content", ""))
        if isinstance(value, str):
            return value
    return None


def training_rows(cfg: IterateConfig, rounds: int) -> dict[str, list[dict]]:
    """{family: [{identity, prompt, reference, source}]} of everything a run of `rounds` rounds trains on."""
    from afm_align import init_base
    from committee.round_data import round_prompts, round_synthetic_pairs, run_datasets
    from committee.rounds import stage_seed
    from synth.corpus import PRETRAINING_FAMILIES, corpus_counts, corpus_items
    from synth.splits import identity_of

    out: dict[str, list[dict]] = defaultdict(list)
    init_cfg = init_base.load(cfg.preset, None, [f"seed={cfg.seed}", *overrides_of(cfg, "init")])
    for family, item in corpus_items(init_cfg.family_items, init_cfg.seed, corpus_counts(init_cfg), PRETRAINING_FAMILIES):
        out[family].append({"identity": identity_of(family, item), "prompt": item["prompt"],
                            "reference": item["reference"], "source": "init corpus"})
    data = run_datasets(cfg)
    rows = [(r, "r0 sft") for r in data["sft_data"][1]] + [(r, "r0 rm pairs") for r in data["rm_pairs"][1]
                                                           if r["split"] == "train"]
    for n in range(1, rounds + 1):
        prompts, sft = round_prompts(cfg, n, stage_seed(cfg.seed, n, "prompts"))  # sft: the prompts', then extras
        rows += ([(r, f"r{n} prompts") for r in prompts] + [(r, f"r{n} sft") for r in sft[len(prompts):]]
                 + [(r, f"r{n} rm pairs") for r in round_synthetic_pairs(cfg, n)])
    for row, source in rows:
        out[row["domain"]].append({"identity": row["identity"], "prompt": row["prompt"],
                                   "reference": _reference(row), "source": source, "split": row["split"]})
    return dict(out)


def drill_leaks(cfg: IterateConfig, held: set[str]) -> dict:
    """How many drill facts have a dev/test math identity (and how many facts the drill has)."""
    from afm_align import init_base
    from synth.corpus import train_arithmetic
    from synth.math_tasks import op_identity

    init_cfg = init_base.load(cfg.preset, None, [f"seed={cfg.seed}", *overrides_of(cfg, "init")])
    probes = init_base.heldout_probes(init_cfg.probes, init_cfg.seed)
    lines = init_base.drill_lines(init_cfg, exclude={p for p, _ in probes}, keep=train_arithmetic)

    def identity(line: str) -> str:
        a, op, b = line.split(" = ")[0].split(" ")
        return op_identity(int(a), op, int(b))

    return {"facts": len(lines), "leaks": sum(identity(line) in held for line in lines)}


def audit(cfg: IterateConfig, rounds: int = 3) -> dict:
    """{family: {dev, test, dev_leaks, test_leaks, reference_copies, template_overlap, train_rows}, drill}."""
    from committee.round_data import eval_split_rows

    train = training_rows(cfg, rounds)
    report, held_math = {}, set()
    for family in cfg.families:
        rows = train.get(family, [])
        train_ids = {r["identity"] for r in rows}
        train_refs = {r["reference"].strip() for r in rows if r.get("reference")}
        train_masks = {masked_user_text(r["prompt"]) for r in rows}
        bad_split = sum(r.get("split", "train") != "train" for r in rows)
        dev, test = eval_split_rows(cfg, family, "dev"), eval_split_rows(cfg, family, "test")
        if family == "math":
            held_math = {r["identity"] for r in dev + test}
        copies = [r for r in test if len(r["reference"].strip()) >= MIN_REFERENCE_CHARS
                  and r["reference"].strip() in train_refs]
        overlap = sum(masked_user_text(r["prompt"]) in train_masks for r in test)
        report[family] = {
            "train_rows": len(rows), "train_rows_not_train_split": bad_split,
            "dev": len({r["identity"] for r in dev}), "test": len({r["identity"] for r in test}),
            "dev_leaks": len({r["identity"] for r in dev} & train_ids),
            "test_leaks": len({r["identity"] for r in test} & train_ids),
            "reference_copies": len(copies),
            "template_overlap": round(overlap / len(test), 3) if test else None,
        }
    return {"families": report, "drill": drill_leaks(cfg, held_math) if "math" in cfg.families else None}


def audit_lines(result: dict) -> list[str]:
    """The audit as a printed table."""
    head = f"{'family':<8} {'train rows':>10} {'dev':>5} {'test':>5} {'dev leaks':>9} {'test leaks':>10} " \
           f"{'ref copies':>10} {'template overlap':>16}"
    lines = [head]
    for family, r in result["families"].items():
        lines.append(f"{family:<8} {r['train_rows']:>10} {r['dev']:>5} {r['test']:>5} {r['dev_leaks']:>9} "
                     f"{r['test_leaks']:>10} {r['reference_copies']:>10} {r['template_overlap']:>16}")
    if result.get("drill"):
        lines.append(f"drill: {result['drill']['facts']} arithmetic facts, {result['drill']['leaks']} of them a "
                     "dev or test math problem")
    return lines
