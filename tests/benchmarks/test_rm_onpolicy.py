"""The on-policy RM benchmark's pure parts: fresh train prompts disjoint from dev and test, gold-oracle pairs of
distinct answers with their equal-gold count, and the prompt-cluster interval of a pooled accuracy."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from benchmarks.rm_onpolicy import (cluster_interval, dev_report, onpolicy_pairs, rubric_spread,  # noqa: E402
                                    swap_pairs, train_prompts)
from committee.round_config import load  # noqa: E402
from committee.round_data import eval_split_rows  # noqa: E402


def _cfg():
    return load("tiny", overrides=["families=[general,summarize]", "eval_prompts=20"])


def test_train_prompts_are_train_split_with_gold_and_disjoint_from_eval():
    cfg = _cfg()
    rows, gold = train_prompts(cfg, 12)
    assert {r["domain"] for r in rows} == {"general", "summarize"} and len(rows) == 24
    assert all(r["split"] == "train" and r["reference"] and "_gold" not in r for r in rows)
    assert set(gold) == {r["id"] for r in rows}
    held = {r["identity"] for f in cfg.families for s in ("dev", "test") for r in eval_split_rows(cfg, f, s)}
    assert not held & {r["identity"] for r in rows}


def test_swap_pairs_put_the_reference_above_one_value_the_prompt_does_not_hold():
    from committee.gold_store import gold_scores
    from synth.summarize_tasks import mentions

    rows, gold = train_prompts(_cfg(), 6)
    pairs = swap_pairs(rows, 2, seed=0)
    assert len(pairs) >= len(rows) and {p["split"] for p in pairs} == {"train"}
    by_id = {r["id"]: r for r in rows}
    for p in pairs:
        row = by_id[p["id"].rsplit("-swap", 1)[0]]
        chosen, rejected = p["chosen"][0]["content"], p["rejected"][0]["content"]  # assistant turns, as the rounds'
        assert chosen == row["reference"] and rejected != chosen
        new = set(rejected.split()) - set(chosen.split())
        assert new and not all(mentions(row["prompt"][-1]["content"], w.strip(".,;")) for w in new)
        scores = gold_scores([{"prompt_id": row["id"], "domain": row["domain"], "completion": c}
                              for c in (chosen, rejected)], gold)
        assert scores[0] > scores[1]  # the hidden rubric agrees: the swap is worse
    assert swap_pairs(rows, 0, seed=0) == []
    from afm_align.schema import validate_row

    for n, p in enumerate(pairs):  # valid preference rows, as the RM recipe's store reads them
        validate_row("preference", p, f"swap {n}")
    from reward_model.recipe import to_dataset

    assert len(to_dataset(pairs + _round_like_rows())) == len(pairs) + 1  # one table with the rounds' rows


def test_onpolicy_pairs_label_every_distinct_pair_and_count_ties():
    from committee.gold_store import split_gold
    from committee.round_data import _family_rows

    rows, gold = split_gold(_family_rows("general", 2, 5, _cfg(), "train"))
    samples = [[rows[0]["reference"], "x", "x", ""], ["a", "b", "c"]]  # the reference scores 1.0, the rest 0
    groups, ties = onpolicy_pairs(rows, samples, gold, _cfg())
    assert [len(g) for g in groups] == [1, 3]  # pairs of the distinct non-empty answers: 2 of them, then 3
    assert ties == 3  # "a", "b", "c" all score 0; the reference against "x" is no tie
    assert all(p["split"] == "train" and p["annotator"] == "gold-oracle" for g in groups for p in g)
    assert groups[0][0]["chosen"][0]["content"] == rows[0]["reference"]  # a gap of 1.0: called right


def test_cluster_interval_is_honest_at_the_extremes():
    assert cluster_interval([[1, 1], [1], [1, 1, 1]]) == [1.0, 1.0]
    assert cluster_interval([[0], [0, 0]]) == [0.0, 0.0]
    low, high = cluster_interval([[1, 0]] * 20 + [[1, 1]] * 20, seed=3)
    assert low < 0.75 < high and high - low < 0.3


def test_rubric_spread_counts_the_parts_that_differ_between_samples():
    from committee.gold_store import split_gold
    from committee.round_data import _family_rows

    rows, gold = split_gold(_family_rows("general", 2, 5, _cfg(), "train"))
    ref0, ref1 = rows[0]["reference"], rows[1]["reference"]
    spread = rubric_spread(rows, [[ref0, ref0], [ref1, "x"]], gold)["general"]
    assert spread["prompts"] == 2 and spread["mean"]["score"] == 0.75  # (1 + 1) / 2 and (1 + 0) / 2, over prompts
    assert spread["prompts_differing"]["score"] == 1 and spread["prompts_differing"]["coverage"] == 1
    assert spread["prompts_differing"]["harmlessness"] == 0


def test_dev_report_scores_the_rm_order_against_the_gold_order():
    from committee.gold_store import split_gold
    from rm_claims import gold_of
    from committee.round_data import _family_rows

    rows, gold = split_gold(_family_rows("general", 1, 5, _cfg(), "train"))
    samples = [[rows[0]["reference"], "x", "yy"]]  # gold 1, 0, 0: two pairs of unequal gold, ("x", "yy") is no pair
    assert gold_of(rows * 3, samples[0], gold) == [1.0, 0.0, 0.0]
    for sign, accuracy, rs_gold in ((1, 1.0, 1.0), (-1, 0.0, 0.0)):  # an RM scoring by length, then its opposite
        report = dev_report(lambda prompts, texts, s=sign: [s * len(t) for t in texts], rows, samples,
                            [[1.0, 0.0, 0.0]])
        assert report["dev_gold_pairs"] == 2 and report["dev_gold_pair_accuracy"] == accuracy
        assert report["rs_gold"] == rs_gold and report["ci95"] == [accuracy, accuracy]


def _round_like_rows():
    """One preference row shaped as a round's RM data holds them (assistant turns as message lists)."""
    turn = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    grades = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
    return [{"prompt": [{"role": "user", "content": "q"}], "chosen": turn("a"), "rejected": turn("b"), "level": 1,
             "grades_chosen": grades, "grades_rejected": grades}]


def test_swap_report_and_answer_logps(tiny_base_dir):
    from benchmarks.rm_onpolicy import likelihood_scorer, swap_report

    rows, _ = train_prompts(_cfg(), 3)
    pairs = swap_pairs(rows, 1, seed=0, split="dev")
    by_text = lambda prompts, texts: [-len(t) for t in texts]  # noqa: E731
    report = swap_report(lambda prompts, texts: [1.0 if t in {r["reference"] for r in rows} else 0.0 for t in texts],
                         pairs)
    assert report["dev_swap_accuracy"] == 1.0 and report["dev_swap_pairs"] == len(pairs)
    assert swap_report(by_text, []) == {}
    prompt = rows[0]["prompt"]
    short, longer = likelihood_scorer(tiny_base_dir)([prompt, prompt], ["Hi", "Hi there, how are you today?"])
    assert short < 0 and longer < 0 and longer != short


def test_pmi_scorer_subtracts_the_answer_likelihood_without_the_users_words(tiny_base_dir):
    from benchmarks.rm_onpolicy import blank_user_turns, likelihood_scorer

    prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Tell Rosa: Monday 3 pm."}]
    assert blank_user_turns(prompt) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": ""}]
    assert prompt[1]["content"] == "Tell Rosa: Monday 3 pm."  # the caller's prompt is not changed
    answers = ["Rosa, Monday at 3 pm.", "Mina, Sunday at 9 am."]
    given = likelihood_scorer(tiny_base_dir)([prompt, prompt], answers)
    alone = likelihood_scorer(tiny_base_dir)([blank_user_turns(prompt)] * 2, answers)
    pmi = likelihood_scorer(tiny_base_dir, pmi=True)([prompt, prompt], answers)
    assert pmi == [g - a for g, a in zip(given, alone)]
    assert all(g != a for g, a in zip(given, alone))  # the user's words change the answer's likelihood


def test_copy_share_scores_the_share_of_answer_tokens_the_prompt_holds(tiny_base_dir):
    from transformers import AutoTokenizer

    from benchmarks.rm_onpolicy import copy_share_scorer

    scorer = copy_share_scorer(AutoTokenizer.from_pretrained(tiny_base_dir), 3)
    prompt = [{"role": "user", "content": "Tell Rosalind the budget review is on Monday at 3:15 pm."}]
    copied, invented, mixed = scorer([prompt] * 3, ["the budget review is on Monday at 3:15 pm",
                                                    "Quentin, Zebedee, xylophone",
                                                    "the budget review is on Zebedee xylophone"])
    assert 0.0 <= invented < mixed < copied <= 1.0


def test_kept_rms_go_to_a_new_folder_only(tmp_path, monkeypatch, capsys):
    from benchmarks.rm_onpolicy import parse_args

    monkeypatch.setattr(sys, "argv", ["rm_onpolicy.py", "--run", "R", "--keep-rms", str(tmp_path)])
    with pytest.raises(SystemExit):
        parse_args()
    assert "it exists; give a new folder" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["rm_onpolicy.py", "--run", "R", "--keep-rms", str(tmp_path / "new")])
    assert parse_args().keep_rms == str(tmp_path / "new")
