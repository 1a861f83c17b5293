"""Problem-disjoint train / dev / test splits: every item goes to the side its problem identity hashes to.

A family's problem identity (`synth.<family>_tasks.problem_identity(item)`) is what its reference answer
depends on and nothing else (math: the operations and operands, whatever the wording; tool: the expected
calls; code: the problem template and its parameters; safety: the request template; instruction following:
the constraint set and topic template). The split is a fixed bucket of that identity's hash, the same for
every seed, dataset and round, so two items of the same problem (paraphrases, the same request with another
name in it) are always on the same side and a near-copy can never straddle train and test.

- `train`: every kind of training data (pre-training corpus, SFT, RS, DPO/IPO pairs, RM pairs, round
  prompts, MDLOO prompts) is drawn from it;
- `dev`: promotion, checkpoint choice and every tuning decision read it;
- `test`: scored for reports only; code that promotes never reads it.

The default shares (15% dev, 15% test) give at least 200 distinct test and dev problems per family from
3,000 items at the tiny preset. Changing the shares changes every split: they are fixed for a run.

Run: `python -c "from synth.splits import split_of; print(split_of('math:57 + 34 = 91'))"`.
"""
from __future__ import annotations

import hashlib

from afm_align.errors import UserError

SPLITS = ("train", "dev", "test")
DEV_FRACTION = 0.15
TEST_FRACTION = 0.15


def check_fractions(dev: float, test: float) -> None:
    """A one-line ValueError unless dev and test are shares in (0, 1) that leave room for train."""
    if not (0.0 < dev < 1.0 and 0.0 < test < 1.0 and dev + test < 1.0):
        raise UserError(f"dev and test fractions must be in (0, 1) with dev + test < 1 (got {dev}, {test})")


def split_of(identity: str, dev: float = DEV_FRACTION, test: float = TEST_FRACTION) -> str:
    """'test', 'dev' or 'train' for a problem identity: a fixed bucket of its SHA-256 (seed-independent)."""
    bucket = int(hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8], 16) % 10000
    if bucket < test * 10000:
        return "test"
    if bucket < (test + dev) * 10000:
        return "dev"
    return "train"


def identity_of(family: str, item: dict) -> str:
    """The item's problem identity from its family module (the family name is part of it)."""
    from synth.families import family as family_of

    identity = family_of(family).problem_identity(item)
    if not isinstance(identity, str) or not identity:
        raise ValueError(f"family '{family}': problem_identity returned {identity!r}, not a non-empty string")
    return identity if identity.startswith(f"{family}:") else f"{family}:{identity}"


def item_split(family: str, item: dict, dev: float = DEV_FRACTION, test: float = TEST_FRACTION) -> str:
    return split_of(identity_of(family, item), dev, test)
