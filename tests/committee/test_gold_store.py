"""The open-ended prompts in the rounds: their gold stays in the side-store, and only the oracle and evaluation read it.

- the round data attaches each open-ended item's gold under a private key that `split_gold` takes off, so no
  dataset row carries it; verifiable rows have none;
- the oracle labels open-ended pairs from the gold (the gold oracle) and the others from their verifier;
- evaluation grades open-ended answers by their gold score only when given the gold (committee responses, a
  training input, never are), and `gold_report` is the mean gold score with an interval;
- rejection sampling floors only verifier-graded answers: an open-ended answer is kept by RM rank alone;
- MDLOO's rollout log records what the RM scored at which step.
"""
import json
from dataclasses import replace

import pytest

from committee import gold_store
from committee.annotators import OracleNoise, label_oracle
from committee.evaluation import verify_samples
from committee.gold_oracle import GoldNoise
from committee.round_config import IterateConfig
from committee.round_data import round_prompts, run_datasets
from synth import general_tasks


@pytest.fixture(scope="module")
def cfg():
    return replace(IterateConfig(), families=["math", "general", "summarize"], eval_prompts=6, sft_items=4,
                   prompts_per_round=5, rm_bootstrap_pairs=6, rm_eval_pairs=4, difficulty=0)


def test_round_rows_carry_gold_privately_and_split_gold_takes_it_off(cfg, tmp_path):
    prompts, sft = round_prompts(cfg, 1, seed=3)
    open_ended = [r for r in prompts if r["domain"] in ("general", "summarize")]
    assert {r["domain"] for r in prompts} == {"math", "general", "summarize"} and open_ended
    assert all(gold_store.PRIVATE in r for r in open_ended)
    assert not any(gold_store.PRIVATE in r for r in prompts if r["domain"] == "math")
    assert not any(gold_store.PRIVATE in r or "gold" in r for r in sft)  # the sft rows never had it
    clean, gold = gold_store.split_gold(prompts)
    assert set(gold) == {r["id"] for r in open_ended} and not any(gold_store.PRIVATE in r for r in clean)
    assert all(json.loads(r["verifier"]) == {} for r in clean if r["domain"] != "math")
    path = gold_store.write_gold(tmp_path / "gold.json", gold)
    assert gold_store.read_gold(path) == gold and gold_store.read_gold(tmp_path / "none.json") == {}
    assert gold_store.read_gold(None) == {}


def test_run_datasets_hold_open_ended_dev_and_test_prompts_with_gold_and_synthetic_pairs(cfg):
    data = run_datasets(cfg)
    for split in ("dev", "test"):
        rows = data[split][1]
        assert {"general", "summarize"} <= {r["domain"] for r in rows}
        assert all((gold_store.PRIVATE in r) == (r["domain"] != "math") for r in rows)
    assert not any(gold_store.PRIVATE in r for r in data["sft_data"][1] + data["rm_pairs"][1])
    assert {"general", "summarize"} <= {r["domain"] for r in data["rm_pairs"][1]}


def _item_and_pair(item, a: str, b: str) -> tuple[dict, dict]:
    prompt = {"id": "p1", "prompt": item["prompt"], "domain": "general", "reference": item["reference"]}
    pair = {"pair_id": "p1-x", "prompt_id": "p1", "kind": "across", "a": {"completion": a, "member": "m1"},
            "b": {"completion": b, "member": "m2"}}
    return prompt, pair


def test_the_oracle_labels_open_ended_pairs_from_the_gold_and_needs_it():
    item = general_tasks.generate(1, seed=5, difficulty=0)[0]
    prompt, pair = _item_and_pair(item, "", item["reference"])  # empty answer: gold 0; the reference: gold 1
    rows = label_oracle([pair], {"p1": prompt}, OracleNoise(seed=1), {"p1": item["gold"]}, GoldNoise(0.0, 0.0, 1))
    assert rows[0]["annotator"] == "gold-oracle" and rows[0]["level"] == 3
    assert rows[0]["chosen"][0]["content"] == item["reference"] and rows[0]["member_chosen"] == "m2"
    assert rows[0]["grades_chosen"]["truthfulness"] == 2
    with pytest.raises(RuntimeError, match="no gold"):
        label_oracle([pair], {"p1": prompt}, OracleNoise(seed=1), {}, None)


def test_evaluation_grades_open_ended_answers_by_gold_only_when_given_it():
    item = general_tasks.generate(1, seed=7, difficulty=0)[0]
    rows = [{"id": "p1", "prompt": item["prompt"], "domain": "general", "verifier": "{}", "identity": "g1"}]
    samples = [{"prompt_id": "p1", "domain": "general", "member": m, "completion": text}
               for m, text in (("good", item["reference"]), ("bad", ""))]
    blind = verify_samples(samples, rows)  # committee responses: training input, never gold-graded
    assert [s["verifier_score"] for s in blind] == [None, None]
    graded = verify_samples(samples, rows, {"p1": item["gold"]})
    assert [s["verifier_score"] for s in graded] == [1.0, 0.0]
    report = gold_store.gold_report(graded, "good", n_boot=50)
    assert report["general"]["mean"] == 1.0 and report["general"]["n"] == 1
    assert report["general"]["ci95"][0] < 0.25 and report["general"]["ci95"][1] == 1.0  # honest at 100%
    assert gold_store.gold_report(graded, "nobody") == {}


def test_rejection_sampling_floors_only_verifier_graded_answers():
    from alignment.rejection_sampling import floored, pick_best

    prompts = [{"id": "m", "domain": "math"}, {"id": "g", "domain": "general"}]
    cands = [{"prompt_index": i, "member": "x", "sample": j, "completion": f"answer {i} {j}"}
             for i in (0, 1) for j in (0, 1)]
    mask = floored(prompts, cands)
    assert mask == [True, True, False, False]
    scores = [0.2, 0.3, -2.0, -1.5]  # the RM alone scores the open-ended answers: logits, often negative
    kept, stats = pick_best(prompts, cands, scores, 0.5, floor=mask)
    assert [(k["prompt_index"], k["sample"]) for k in kept] == [(1, 1)] and stats["below_min"] == 2
    kept_all, _ = pick_best(prompts, cands, scores, 0.5)  # no mask: the floor drops everything
    assert kept_all == []


def test_the_mdloo_rollout_log_records_each_scored_answer_with_its_step():
    from types import SimpleNamespace

    from alignment.mdloo import RolloutLog

    def scorer(prompts, completions, **columns):
        return [float(len(c)) for c in completions]

    scorer.__name__ = "reward_model"
    rows: list[dict] = []
    log = RolloutLog(scorer, rows)
    assert log.__name__ == "reward_model"
    log.on_step_begin(None, SimpleNamespace(global_step=4), None)
    out = log([[{"role": "user", "content": "q"}]] * 2, ["ab", [{"role": "assistant", "content": "abc"}]],
              prompt_id=["p1", "p2"], domain=["general", "math"])
    assert out == [2.0, 1.0]  # a message list has length 1 for this scorer: what the scorer returns is passed on
    assert rows == [{"step": 4, "prompt_id": "p1", "domain": "general", "completion": "ab", "reward_model": 2.0},
                    {"step": 4, "prompt_id": "p2", "domain": "math", "completion": "abc", "reward_model": 1.0}]
