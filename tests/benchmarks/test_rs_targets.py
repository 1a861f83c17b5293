"""What RM-only rejection sampling keeps on open-ended prompts, read back and scored by the hidden gold rubric."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from afm_align.store import write_dataset  # noqa: E402
from benchmarks.rs_targets import over_seeds, round_targets, seed_targets  # noqa: E402
from committee.gold_store import gold_parts  # noqa: E402
from synth import general_tasks, summarize_tasks  # noqa: E402


def _items(n):
    items = general_tasks.generate(n, 0)
    return {f"general-{i}": item for i, item in enumerate(items)}


def _sample(pid, text):
    return {"prompt_id": pid, "domain": "general", "completion": text}


def _kept(pid, text, round_n=1):
    return {"id": f"rs-r{round_n}-{pid}", "round": round_n, "domain": "general",
            "completion": [{"role": "assistant", "content": text}]}


def test_the_rm_pick_is_scored_against_the_samples_and_a_perfect_pick():
    items = _items(2)
    gold = {pid: item["gold"] for pid, item in items.items()}
    (a, ia), (b, ib) = items.items()
    bad = "Yo, no idea."
    samples = [_sample(a, ia["reference"]), _sample(a, bad), _sample(b, ib["reference"]), _sample(b, bad),
               {**_sample("math-1", "Answer: 3"), "domain": "math"}]
    kept = [_kept(a, bad), _kept(b, ib["reference"]), _kept(a, ia["reference"], round_n=2)]  # round 2's row ignored
    got = round_targets(samples, kept, gold, 1, "general")
    top_a, top_b = (gold_parts("general", i["reference"], i["gold"])["score"] for i in (ia, ib))
    low_a, low_b = (gold_parts("general", bad, i["gold"])["score"] for i in (ia, ib))
    assert top_a == top_b == 1.0 and low_a < 1.0
    assert got["n"] == 2
    assert got["pick"] == pytest.approx((low_a + top_b) / 2, abs=1e-4)
    assert got["sample"] == pytest.approx((top_a + low_a + top_b + low_b) / 4, abs=1e-4)
    assert got["best_of_k"] == pytest.approx(1.0)
    assert got["pick_is_best"] == pytest.approx(0.5)  # one of the two picks is its prompt's best
    assert got["chance_is_best"] == pytest.approx(0.5)  # a random pick of two distinct answers
    assert got["pick_minus_sample"] == pytest.approx(((low_a - (top_a + low_a) / 2) + (top_b - (top_b + low_b) / 2))
                                                     / 2, abs=1e-4)


def test_a_prompt_without_gold_or_a_round_without_picks_is_a_one_line_error():
    items = _items(1)
    (a, ia), = items.items()
    with pytest.raises(SystemExit, match="has no gold for it"):
        round_targets([_sample(a, ia["reference"])], [_kept(a, ia["reference"])], {}, 1, "general")
    with pytest.raises(SystemExit, match="RS kept no general answer"):
        round_targets([_sample(a, ia["reference"])], [], {a: ia["gold"]}, 1, "general")


def test_over_seeds_gives_intervals_of_the_pick_against_samples_and_the_start_greedy():
    def seed(pick, sample, greedy):
        return {1: {"general": {"sample": sample, "pick": pick, "best_of_k": 0.5, "pick_is_best": 0.5,
                                "chance_is_best": 0.5, "start_greedy_dev": greedy, "pick_minus_sample": pick - sample}}}
    got = over_seeds({0: seed(0.10, 0.05, 0.2), 1: seed(0.12, 0.06, 0.2), 2: seed(0.11, 0.04, 0.2)})["1"]["general"]
    assert got["pick"] == pytest.approx(0.11)
    low, high = got["pick_minus_sample_ci95"]
    assert 0 < low < 0.06 < high
    low, high = got["pick_minus_start_greedy_ci95"]
    assert low < -0.09 < high < 0  # every seed's pick is below the start member's greedy answers


def test_chance_counts_the_distinct_answers_rs_chooses_among():
    items = _items(1)
    (a, ia), = items.items()
    gold = {a: ia["gold"]}
    # the best answer sampled three times, one worse, one empty: RS sees two distinct non-empty texts, so a random
    # pick among them is best half the time (not 3 of 5)
    samples = [_sample(a, ia["reference"])] * 3 + [_sample(a, "Yo, no idea."), _sample(a, " ")]
    got = round_targets(samples, [_kept(a, ia["reference"])], gold, 1, "general")
    assert got["chance_is_best"] == pytest.approx(0.5)
    assert got["pick_is_best"] == 1.0


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _prompt(text="Write it."):
    return [{"role": "user", "content": text}]


def _fixture_run(tmp_path, dev_gold):
    """round 0's saved dev answers of r0-sft and round 1's responses, RS rows, gold and manifest."""
    run = tmp_path / "seed0"
    items = {"general": general_tasks.generate(1, 0)[0], "summarize": summarize_tasks.generate(1, 0)[0]}
    _write_jsonl(run / "round_0" / "eval" / "samples.jsonl",
                 [{"member": "r0-sft", "domain": d, "prompt_id": f"dev-{d}", "verifier_score": dev_gold}
                  for d in items] + [{"member": "other", "domain": "general", "prompt_id": "x", "verifier_score": 1.0}])
    (run / "round_1").mkdir(parents=True)
    (run / "round_1" / "manifest.json").write_text(json.dumps({"start": "r0-sft"}))
    (run / "round_1" / "gold.json").write_text(json.dumps({f"{d}-1": it["gold"] for d, it in items.items()}))
    write_dataset([{"id": f"{d}-1-{i}", "prompt_id": f"{d}-1", "member": "r0-sft", "round": 1, "domain": d,
                    "completion": text}
                   for d, it in items.items() for i, text in enumerate((it["reference"], "Yo, no idea."))],
                  "response", run / "round_1" / "responses", producer="test")
    write_dataset([{**_kept(f"{d}-1", "Yo, no idea."), "domain": d, "prompt": _prompt()} for d in items],
                  "sft", run / "round_1" / "rs-data", producer="test")
    return run


def test_a_run_folder_is_read_round_by_round_with_the_start_members_greedy_gold(tmp_path):
    got = seed_targets(_fixture_run(tmp_path, 0.25), 1)
    for domain in ("general", "summarize"):
        r = got[1][domain]
        assert r["start"] == "r0-sft" and r["start_greedy_dev"] == 0.25  # r0-sft's rows only, not "other"'s
        assert r["n"] == 1 and r["best_of_k"] == 1.0 and r["pick_is_best"] == 0.0 and r["pick"] < 1.0


def test_saved_dev_answers_without_gold_are_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="carry no gold score"):
        seed_targets(_fixture_run(tmp_path, None), 1)


def test_a_round_without_rs_data_is_a_one_line_error(tmp_path):
    import shutil

    run = _fixture_run(tmp_path, 0.25)
    shutil.rmtree(run / "round_1" / "rs-data")
    with pytest.raises(SystemExit, match="rs-data: no such dataset folder .*not a finished round with an rs"):
        seed_targets(run, 1)
