"""The base's pre-training corpus: every family's train-split conversations, open-ended ones included, with the
per-family counts an InitConfig asks for; never a dev or test problem."""
from collections import Counter

import pytest

from afm_align import init_base
from afm_align.errors import UserError
from synth.corpus import (PRETRAINING_FAMILIES, chat_corpus, corpus_counts, corpus_items, pretraining_corpus,
                          recall_lines)
from synth.families import FAMILIES, OPEN_ENDED
from synth.splits import item_split


def test_the_base_corpus_holds_the_open_ended_families_train_split_only():
    assert PRETRAINING_FAMILIES == FAMILIES + OPEN_ENDED
    items = corpus_items(20, seed=1, families=PRETRAINING_FAMILIES)
    assert {f for f, _ in items} == set(PRETRAINING_FAMILIES)
    assert all(item_split(f, it) == "train" for f, it in items)
    # the verifiable families' items do not move when the open-ended ones join (same offsets and seeds)
    assert [it["prompt"] for f, it in items if f in FAMILIES] == [it["prompt"] for _, it in corpus_items(20, seed=1)]
    assert {f for f, _ in corpus_items(20, seed=1)} == set(FAMILIES)  # the default: verifiable only (on-device)


def test_family_counts_give_families_their_own_number_of_items_and_math_items_wins_for_math():
    cfg = init_base.load("tiny", None, ["family_items=20", "math_items=40", "family_counts={tool: 60, general: 10}"])
    assert corpus_counts(cfg) == {"tool": 60, "general": 10, "math": 40}
    chats, keep, recall = pretraining_corpus(cfg)
    assert recall == []  # recall_problems: 0 by default
    by_family = Counter(f for f, _ in corpus_items(20, cfg.seed, corpus_counts(cfg), PRETRAINING_FAMILIES))
    assert len(chats) == sum(by_family.values()) and callable(keep)
    assert by_family["tool"] > 2 * by_family["code"] and by_family["math"] > by_family["code"]
    assert by_family["general"] < by_family["summarize"]
    bad = init_base.load("tiny", None, ["family_counts={tools: 60}"])
    with pytest.raises(UserError, match="unknown families \\['tools'\\]"):
        corpus_counts(bad)
    assert corpus_counts(init_base.load("tiny")) == {"tool": 6000, "math": 20000}  # the tiny preset's
    assert chat_corpus(4, 0) and corpus_counts(init_base.InitConfig(math_items=0)) is None


def test_recall_lines_ask_back_a_value_the_line_holds():
    lines = recall_lines(400, seed=3)
    assert len(lines) == 400 and lines == recall_lines(400, seed=3) and lines != recall_lines(400, seed=4)
    kinds = Counter()
    for line in lines:
        head, answer = line.rsplit("? ", 1)
        listed, question = head.split("; ")
        assert "= " not in line  # the arithmetic drill's mark
        pairs = dict(item.split(" ", 1) for item in listed.split(", "))
        assert 3 <= len(pairs) <= 5
        if question == "all":
            kinds["all"] += 1
            assert answer == ", ".join(pairs.values())
        else:
            kinds["one"] += 1
            assert answer == pairs[question.removeprefix("the ")]
    assert kinds["all"] > 50 and kinds["one"] > 200
    cfg = init_base.load("tiny", None, ["family_items=4", "recall_problems=7"])
    assert pretraining_corpus(cfg)[2] == recall_lines(7, cfg.seed)
