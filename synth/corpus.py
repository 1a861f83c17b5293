"""The chat corpus that pre-trains the tiny base model: every family's prompts with their references.

`chat_corpus(n_per_family, seed)` returns conversations (prompt messages + the reference as the
assistant turn) from the verifiable families (`synth.families`; `pretraining_corpus`, the base's corpus, adds the
open-ended ones), at difficulties 0 and 1, so the base model has
seen the formats (answer lines, tool calls, code blocks, refusals) before SFT. Only items whose problem
identity is on the train side of the fixed split (`synth.splits`) are kept, so no dev or test problem, in
any wording, appears in pre-training. `train_arithmetic(a, op, b)` applies the same rule to the base's
arithmetic drill (a drill fact is a math problem of its own identity).

Run: `python -c "from synth.corpus import chat_corpus; print(len(chat_corpus(10, 0)))"`.
"""
from __future__ import annotations

from synth.families import ALL_FAMILIES, FAMILIES, family


def corpus_items(n_per_family: int, seed: int, counts: dict[str, int] | None = None,
                 families: tuple[str, ...] = FAMILIES) -> list[tuple[str, dict]]:
    """(family, item) of every train-split item of the corpus; deterministic for its arguments."""
    from synth.splits import item_split

    out = []
    for offset, name in enumerate(families):
        n = (counts or {}).get(name, n_per_family)
        if n <= 0:
            continue
        for difficulty in (0, 1):
            items = family(name).generate(max(1, n // 2), seed * 1000 + 17 * offset + difficulty, difficulty)
            out += [(name, item) for item in items if item_split(name, item) == "train"]
    return out


def chat_corpus(n_per_family: int, seed: int, counts: dict[str, int] | None = None,
                families: tuple[str, ...] = FAMILIES) -> list[list[dict]]:
    """Train-split conversations of `families` (the verifiable ones by default); deterministic for the arguments.

    `counts` gives some families their own number of items (e.g. many more math items, so that a tiny
    model sees enough questions to learn to copy their numbers into the answer).
    """
    return [item["prompt"] + [{"role": "assistant", "content": item["reference"]}]
            for _, item in corpus_items(n_per_family, seed, counts, families)]


def train_arithmetic(a: str, op: str, b: str) -> bool:
    """True when the one-operation math problem `a op b` is on the train side (its math identity)."""
    from synth.math_tasks import op_identity
    from synth.splits import split_of

    return split_of(op_identity(int(a), op, int(b))) == "train"  # op_identity is already "math:..."


# the base of `afm-align init` / `iterate` also reads the open-ended families' train-split conversations
# (demonstrations, as in AFM's pre-training mix; their gold never leaves the generator): the offsets of the
# verifiable families, and so their items, are those of FAMILIES alone
PRETRAINING_FAMILIES = ALL_FAMILIES


def pretraining_corpus(cfg) -> tuple[list[list[dict]] | None, object]:
    """(chat conversations, drill filter) that `init` pre-trains on for an InitConfig; (None, None) with `--base`."""
    if cfg.base:
        return None, None
    return chat_corpus(cfg.family_items, cfg.seed, corpus_counts(cfg), PRETRAINING_FAMILIES), train_arithmetic


def corpus_counts(cfg) -> dict[str, int] | None:
    """Per-family item counts of an InitConfig's corpus: `family_counts`, then `math_items` for math; None: none."""
    from afm_align.errors import UserError

    counts = dict(getattr(cfg, "family_counts", None) or {})
    unknown = sorted(set(counts) - set(PRETRAINING_FAMILIES))
    if unknown:
        raise UserError(f"family_counts names unknown families {unknown}; families are: {', '.join(PRETRAINING_FAMILIES)}")
    if cfg.math_items:
        counts["math"] = cfg.math_items
    return counts or None
