"""The chat corpus that pre-trains the tiny base model: every family's prompts with their references.

`chat_corpus(n_per_family, seed)` returns conversations (prompt messages + the reference as the
assistant turn) from the verifiable families (`synth.families`; `pretraining_corpus`, the base's corpus, adds the
open-ended ones), at difficulties 0 and 1, so the base model has
seen the formats (answer lines, tool calls, code blocks, refusals) before SFT. Only items whose problem
identity is on the train side of the fixed split (`synth.splits`) are kept, so no dev or test problem, in
any wording, appears in pre-training. `train_arithmetic(a, op, b)` applies the same rule to the base's
arithmetic drill (a drill fact is a math problem of its own identity). `recall_lines(n, seed)` is a second
drill, off by default (`init`'s `recall_problems`): find a value earlier in the line and copy it.

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


RECALL_POOLS = ("name", "day", "city", "time", "place", "item", "amount")  # synth.summarize_tasks.POOLS keys


def recall_lines(n: int, seed: int) -> list[str]:
    """`n` recall drill lines: 3 to 5 typed values, then one of them asked back by its type or all of them in
    order, after a "? " ("name Lena, day Tuesday, time 3:15 pm; the day? Tuesday", "...; all? Lena, Tuesday,
    3:15 pm"). Not after the arithmetic drill's "= ": with it, 20,000 lines took the base's arithmetic probes
    from 0.95 to 0.10 (pipeline seed 0). The drill's loss counts the answer only, so what it teaches is to find
    a value in the context and copy it: what an answer that must say the prompt's names and times needs, what a
    tool call's arguments need, and what an RM needs to tell a copied value from an invented one. Values are
    the open-ended generators' pools, so no problem of any split is in it (a line names no task)."""
    import random

    from synth.summarize_tasks import POOLS

    rng, lines = random.Random(seed), []
    for _ in range(n):
        kinds = rng.sample(RECALL_POOLS, rng.randint(3, 5))
        values = [rng.choice(POOLS[k]) for k in kinds]
        listed = ", ".join(f"{k} {v}" for k, v in zip(kinds, values))
        if rng.random() < 0.75:
            i = rng.randrange(len(kinds))
            lines.append(f"{listed}; the {kinds[i]}? {values[i]}")
        else:
            lines.append(f"{listed}; all? {', '.join(values)}")
    return lines


def train_arithmetic(a: str, op: str, b: str) -> bool:
    """True when the one-operation math problem `a op b` is on the train side (its math identity)."""
    from synth.math_tasks import op_identity
    from synth.splits import split_of

    return split_of(op_identity(int(a), op, int(b))) == "train"  # op_identity is already "math:..."


# the base of `afm-align init` / `iterate` also reads the open-ended families' train-split conversations
# (demonstrations, as in AFM's pre-training mix; their gold never leaves the generator): the offsets of the
# verifiable families, and so their items, are those of FAMILIES alone
PRETRAINING_FAMILIES = ALL_FAMILIES


def pretraining_corpus(cfg) -> tuple[list[list[dict]] | None, object, list[str] | None]:
    """(chat conversations, drill filter, recall drill lines) that `init` pre-trains on for an InitConfig;
    (None, None, None) with `--base`."""
    if cfg.base:
        return None, None, None
    return (chat_corpus(cfg.family_items, cfg.seed, corpus_counts(cfg), PRETRAINING_FAMILIES), train_arithmetic,
            recall_lines(cfg.recall_problems, cfg.seed))


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
