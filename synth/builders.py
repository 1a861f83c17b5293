"""Dataset builders: turn a family's items into prompt / sft / preference datasets through the core store.

- `prompt_rows(family, n, seed, difficulty)`: rows of DESIGN §2's prompt kind, the verifier's ground
  truth as a JSON string, ids from a hash of the prompt text.
- Exact duplicates are removed on the canonical prompt text; near-duplicates on a normalised key
  (lower case, punctuation and whitespace folded), which catches items that differ only in casing,
  spacing or punctuation. Paraphrases with other words are not near-duplicates here.
- The split (`train` / `dev` / `test`) is a fixed bucket of the hash of the item's problem identity
  (`synth.splits`): the same for every seed and every dataset, and two items of the same problem in other
  words are always on the same side, so training data never leaks into evaluation. Rows carry `split` and
  `identity`.
- `sft` rows add the family's reference response as the completion (provenance member `reference`).
- `prefs` builds synthetic preference pairs for bootstrapping the RM: each family's reference (chosen)
  against its corruptions (rejected), with the level and the four grades the family derives from what
  was corrupted. Identical pairs are dropped.
- Generation is deterministic for a seed: same arguments, same content hash.

Run: `afm-align synth math --n 1000 --seed 0 --out data/math` (see `afm-align synth --help`).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS
from afm_align.store import write_dataset
from afm_align.tracking import progress
from synth.families import ALL_FAMILIES, FAMILIES
from synth.families import family as family_of
from synth.splits import DEV_FRACTION, TEST_FRACTION, check_fractions, identity_of, split_of

OVERSAMPLE = 1.3  # generate this many times n before dedup and the split
_PUNCT = re.compile(r"[^a-z0-9]+")


def prompt_text(messages: list[dict]) -> str:
    """The conversation as one string (what dedup and ids hash)."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def near_dup_key(messages: list[dict]) -> str:
    """Lower case, every run of punctuation/whitespace folded to one space."""
    return _PUNCT.sub(" ", prompt_text(messages).lower()).strip()


def _module(family: str):
    """The family's checked module (`synth.families`); the message also names `prefs`, the CLI's other choice."""
    if family not in ALL_FAMILIES:
        raise UserError(f"unknown family '{family}'; families are: {', '.join(ALL_FAMILIES)}, prefs")
    return family_of(family)


def dedup_items(items: list[dict]) -> list[dict]:
    """Drop exact and near duplicates, keeping the first of each."""
    seen, kept = set(), []
    for item in items:
        key = near_dup_key(item["prompt"])
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def family_items(family: str, n: int, seed: int, difficulty: int) -> list[dict]:
    """At most `n` deduplicated items of a family (over-generated to make up for duplicates)."""
    module = _module(family)
    items = dedup_items(module.generate(max(n, int(n * OVERSAMPLE) + 1), seed, difficulty))
    return items[:n]


def item_to_prompt_row(family: str, item: dict, dev: float = DEV_FRACTION, test: float = TEST_FRACTION) -> dict:
    """A prompt row of DESIGN §2 for one family item: id from the prompt text, split from its identity."""
    text = prompt_text(item["prompt"])
    identity = identity_of(family, item)
    return {
        "id": f"{family}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}",
        "prompt": item["prompt"],
        "domain": item["domain"],
        "verifier": json.dumps(item["verifier"], sort_keys=True),
        "source": item["source"],
        "split": split_of(identity, dev, test),
        "identity": identity,
    }


def prompt_rows(family: str, n: int, seed: int, difficulty: int = 1, with_reference: bool = False,
                dev: float = DEV_FRACTION, test: float = TEST_FRACTION) -> list[dict]:
    """Prompt rows (or sft rows with the reference as completion) of one family, every split mixed."""
    rows = []
    for item in family_items(family, n, seed, difficulty):
        row = item_to_prompt_row(family, item, dev, test)
        if with_reference:
            row.update(completion=[{"role": "assistant", "content": item["reference"]}],
                       member="reference", round=0, score=1.0)
        rows.append(row)
    return rows


def preference_rows(n: int, seed: int, difficulty: int = 1, families: tuple[str, ...] = FAMILIES,
                    dev: float = DEV_FRACTION, test: float = TEST_FRACTION) -> tuple[list[dict], int]:
    """About `n` synthetic preference pairs across families; returns (rows, identical pairs dropped).

    Each pair carries the split and identity of its item, so a pair is on the side of its problem.
    """
    available = list(families)  # each is checked by _module below: an unknown name is a UserError
    if not available:
        raise UserError("no synth family was given to build preference pairs from")
    rng = random.Random(seed)
    rows, dropped = [], 0
    per_family = -(-n // len(available))
    for offset, family in enumerate(progress(available, desc="preference pairs", unit="family")):
        module = _module(family)
        items = family_items(family, max(1, per_family // 2), seed * 7 + offset, difficulty)
        for item in items:
            base = item_to_prompt_row(family, item, dev, test)
            chosen_grades = module.reference_grades(item)
            for corruption in module.corrupt(item, rng):
                if corruption["completion"].strip() == item["reference"].strip():
                    dropped += 1
                    continue
                rows.append(_preference_row(base, item, corruption, chosen_grades, len(rows)))
    rng.shuffle(rows)
    return rows[:n], dropped


def _preference_row(base: dict, item: dict, corruption: dict, chosen_grades: dict, index: int) -> dict:
    grades_rejected = {d: corruption["grades"].get(d) for d in GRADE_DIMENSIONS}
    return {
        "id": f"{base['id']}-{corruption['kind']}-{index}",
        "prompt": item["prompt"],
        "chosen": [{"role": "assistant", "content": item["reference"]}],
        "rejected": [{"role": "assistant", "content": corruption["completion"]}],
        "level": int(corruption["level"]),
        "grades_chosen": {d: chosen_grades.get(d) for d in GRADE_DIMENSIONS},
        "grades_rejected": grades_rejected,
        "annotator": "synth",
        "source": "synthetic",
        "guideline_version": "synth-v1",
        "domain": base["domain"],
        "split": base["split"],
        "identity": base["identity"],
        "kind": corruption["kind"],
    }


def check_out_dir(out: str | Path) -> Path:
    """Fail early (before any work) when `out` cannot be written."""
    out = Path(out)
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: {parent} is not writable")
    return out


def build(family: str, n: int, seed: int, out: str | Path, kind: str = "prompt", difficulty: int = 1,
          dev: float = DEV_FRACTION, test: float = TEST_FRACTION):
    """Generate and write one dataset; returns its manifest."""
    if n < 1:
        raise UserError(f"--n must be at least 1 (got {n})")
    if difficulty < 0:
        raise UserError(f"--difficulty must be 0 or more (got {difficulty})")
    check_fractions(dev, test)
    out = check_out_dir(out)
    config = {"family": family, "n": n, "seed": seed, "kind": kind, "difficulty": difficulty, "dev": dev, "test": test}
    if family == "prefs":
        rows, dropped = preference_rows(n, seed, difficulty, dev=dev, test=test)
        config["identical_pairs_dropped"] = dropped
        return write_dataset(rows, "preference", out, producer="synth.builders/prefs", config=config)
    _module(family)
    rows = prompt_rows(family, n, seed, difficulty, with_reference=(kind == "sft"), dev=dev, test=test)
    return write_dataset(rows, kind, out, producer=f"synth.builders/{family}", config=config)


def cli_main(args) -> None:
    """`afm-align synth FAMILY --n N --seed S --out DIR [--kind] [--difficulty] [--dev F] [--test F]`."""
    from afm_align.store import MANIFEST_FILE, check_out, read_manifest

    kind = "preference" if args.family == "prefs" else args.kind
    check_out(args.out, marker=MANIFEST_FILE, what=f"{kind} dataset", overwrite=args.overwrite,
              same_kind=lambda p: read_manifest(p).kind == kind)
    manifest = build(args.family, args.n, args.seed, args.out, args.kind, args.difficulty, args.dev, args.test)
    print(f"synth {args.family}: wrote {manifest.rows} {manifest.kind} rows to {args.out} "
          f"(hash {manifest.content_hash[:12]})")
