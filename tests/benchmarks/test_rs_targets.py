"""What RM-only rejection sampling keeps on open-ended prompts, read back and scored by the hidden gold rubric."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rs_targets import over_seeds, round_targets  # noqa: E402
from committee.gold_store import gold_parts  # noqa: E402
from synth import general_tasks  # noqa: E402


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
