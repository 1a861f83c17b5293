"""Over-optimisation curves: best-of-N on hand-made numbers (proxy up, gold down; the analytic KL), the MDLOO
curve from hand-written rollouts and metrics (step matching, gold and domain filters), the figure (also empty),
and a round of a fake run folder scored by a fake RM (no model is loaded)."""
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from afm_align.store import write_dataset  # noqa: E402
from committee.overoptimisation import (best_of_n_curve, coarsen, draw_mdloo_arms, draw_over_seeds,  # noqa: E402
                                        draw_overoptimisation, kl_bound, mdloo_curve, powers_of_two,
                                        round_overoptimisation)

# a general-family gold item (synth/general_gold.py): these three answers score 1.0, 1/3 and 0 by its rubric
GOLD = {"facts": ["Iris", "the library", "4:00 pm"], "forbidden": ["quickly"], "max_words": 30, "register": "friendly",
        "prompt": "Send Iris a short note saying: meet at the library at 4:00 pm. Be friendly: open with 'Hi' or "
                  "'Hey'. Keep it to 30 words or fewer. Do not use the word 'quickly'."}
GOOD, PART, EMPTY = "Hi Iris, meet at the library at 4:00 pm.", "Hi Iris", ""


def test_kl_bound_is_exact():
    assert kl_bound(1) == 0.0
    assert kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bound(16) == pytest.approx(math.log(16) - 15 / 16)
    assert powers_of_two(8) == [1, 2, 4, 8] and powers_of_two(6) == [1, 2, 4, 6] and powers_of_two(1) == [1]


def test_best_of_n_proxy_rises_while_gold_falls():
    # prompt a: the RM prefers ever worse answers further down the list; prompt b has only 2 samples
    samples = {"a": ["w1", "w2 w2", "w3 w3 w3", "w4 w4 w4 w4"], "b": ["x", "y y"]}
    rm = {"a": [0.0, 1.0, 1.0, 3.0], "b": [2.0, 1.0]}
    gold = {"a": [0.9, 0.6, 0.1, 0.0], "b": [0.5, 0.8]}
    curve = best_of_n_curve(["a", "b"], samples, rm, gold)
    assert [p["n"] for p in curve] == [1, 2, 4]
    assert [p["prompts"] for p in curve] == [2, 2, 1]  # b has too few samples for N = 4
    assert [p["proxy"] for p in curve] == [1.0, 1.5, 3.0]
    assert [p["gold"] for p in curve] == pytest.approx([0.7, 0.55, 0.0])
    assert [p["words"] for p in curve] == [1.0, 1.5, 4.0]
    assert curve[0]["kl_bound"] == 0.0 and curve[1]["kl_bound"] == pytest.approx(math.log(2) - 0.5, abs=1e-6)
    # a tie among the first 3 of prompt a (1.0, 1.0) goes to the earlier sample (gold 0.6, not 0.1)
    assert best_of_n_curve(["a"], samples, rm, gold, ns=[3])[0]["gold"] == 0.6


def test_best_of_n_of_nothing_is_empty():
    assert best_of_n_curve([], {}, {}, {}) == []


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_mdloo_curve_matches_steps_and_filters(tmp_path):
    gold = {"g1": GOLD, "g2": GOLD}
    roll = lambda step, pid, domain, text, rm: {"step": step, "prompt_id": pid, "domain": domain,  # noqa: E731
                                                "completion": text, "reward_model": rm}
    _jsonl(tmp_path / "rollouts.jsonl", [
        roll(0, "g1", "general", PART, 0.5), roll(0, "g2", "general", EMPTY, 1.5),
        roll(0, "m1", "math", "7", 9.0),  # off the open-ended domains
        roll(0, "g9", "general", GOOD, 9.0),  # no gold for this prompt: skipped
        roll(2, "g1", "general", GOOD, 3.0),
        roll(4, "m1", "math", "7", 9.0)])  # a step with no open-ended rollout: no point
    _jsonl(tmp_path / "metrics.jsonl", [
        {"source": "trainer", "step": 1, "kl": 0.01, "reward": 1.0}, {"source": "trainer", "step": 2, "loss": 0.1},
        {"source": "trainer", "step": 3, "kl": -0.002, "reward": 2.0},
        {"source": "trainer", "step": 3, "train_runtime": 1.0}])
    curve = mdloo_curve(tmp_path, gold)
    assert [(p["step"], p["kl"], p["n"]) for p in curve] == [(0, 0.01, 2), (2, -0.002, 1)]
    assert curve[0]["proxy"] == 1.0 and curve[0]["gold"] == pytest.approx(1 / 6)
    assert curve[1]["proxy"] == 3.0 and curve[1]["gold"] == 1.0
    # the domain filter: only math (which has no gold here) -> nothing
    assert mdloo_curve(tmp_path, gold, domains=("math",)) == []
    assert mdloo_curve(tmp_path / "missing", gold) == []


def test_mdloo_curve_without_a_logged_kl_keeps_the_point(tmp_path):
    _jsonl(tmp_path / "rollouts.jsonl", [{"step": 0, "prompt_id": "g1", "domain": "general", "completion": GOOD,
                                          "reward_model": 1.0}])
    assert mdloo_curve(tmp_path, {"g1": GOLD})[0]["kl"] is None


def _axes_drawn(fig):
    return [ax for ax in fig.axes if ax.axison]


def test_draw_two_panels_with_twin_axes_and_empty_input():
    mdloo = [{"step": 2 * i, "kl": 0.01 * i, "proxy": 0.1 * i, "gold": 0.5 - 0.02 * i, "n": 4} for i in range(8)]
    bon = best_of_n_curve(["a"], {"a": ["x"] * 4}, {"a": [0.0, 1.0, 2.0, 3.0]}, {"a": [0.5, 0.4, 0.3, 0.2]})
    fig = draw_overoptimisation(mdloo, bon, "test")
    assert len(fig.axes) == 4  # two panels, each with a twin for the gold
    labels = " ".join(ax.get_ylabel() + ax.get_xlabel() for ax in fig.axes)
    assert "RM score" in labels and "gold" in labels and "KL" in labels and "best of N" in labels
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()][:2] == ["1\n0.00", "2\n0.19"]
    plt.close(fig)
    empty = draw_overoptimisation([], [], "empty")
    assert len(empty.axes) == 2 and not _axes_drawn(empty)
    assert "no MDLOO member this round" in empty.axes[0].texts[0].get_text()
    plt.close(empty)
    seeds = draw_over_seeds([mdloo, mdloo[:5]], [bon, bon[:2]], "seeds")
    assert len(seeds.axes) == 4 and len(seeds.axes[0].lines) == 4  # two seeds faint, their mean bold, KL=0 line
    plt.close(seeds)


def test_coarsen_averages_consecutive_steps_weighted_by_rollouts():
    curve = [{"step": 2 * i, "kl": None if i == 1 else 0.1 * i, "proxy": float(i), "gold": 0.1 * i, "n": 1 + i % 2}
             for i in range(5)]
    short = coarsen(curve, 3)  # chunks of 2: steps (0, 2), (4, 6), (8)
    assert [p["step"] for p in short] == [2, 6, 8] and [p["n"] for p in short] == [3, 3, 1]
    assert short[0]["kl"] == pytest.approx(0.0)  # the chunk's one logged KL; a None is not counted as 0
    assert short[1]["kl"] == pytest.approx(0.25)
    assert short[0]["proxy"] == pytest.approx((0 * 1 + 1 * 2) / 3)  # weighted by each step's rollouts
    assert short[1]["gold"] == pytest.approx((0.2 * 1 + 0.3 * 2) / 3)
    assert coarsen(curve, 10) == curve  # short enough: unchanged
    assert coarsen([{"step": 0, "kl": None, "proxy": 1.0, "gold": 0.5, "n": 4}], 1)[0]["kl"] is None
    with pytest.raises(ValueError, match="at least 1"):
        coarsen(curve, 0)


def test_draw_mdloo_arms_puts_each_reward_in_its_own_panel():
    up = [{"step": i, "kl": 0.01 * i, "proxy": 0.1 * i, "gold": 0.02 + 0.01 * i, "n": 4} for i in range(8)]
    flat = [{**p, "gold": 0.03} for p in up]
    fig = draw_mdloo_arms({"the RM alone": [flat, flat[:6]], "the gold": [up, up]}, "arms")
    assert len(fig.axes) == 4  # two panels, each with a twin for the gold
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any("rewarded by the RM alone" in t for t in titles) and any("rewarded by the gold" in t for t in titles)
    assert len(fig.axes[0].lines) == 4  # two seeds faint, their mean bold, the KL = 0 line
    plt.close(fig)


def test_round_overoptimisation_on_a_fake_run(tmp_path, monkeypatch):
    import alignment.rewards

    calls = []

    def fake_rm(path, **kwargs):
        def scorer(prompts, completions):  # longer answers score higher: the RM is a length proxy
            calls.append(len(completions))
            return [float(len(c)) for c in completions]
        return scorer

    monkeypatch.setattr(alignment.rewards, "load_rm", fake_rm)
    run = tmp_path / "run"
    root = run / "round_1"
    assert round_overoptimisation(run, 1) is None  # no gold.json: no open-ended prompts
    root.mkdir(parents=True)
    (root / "gold.json").write_text(json.dumps({"g1": GOLD, "g2": GOLD}))
    (root / "manifest.json").write_text(json.dumps({"start": "r0-sft", "stages": {}}))
    prompt = [{"role": "user", "content": GOLD["prompt"]}]
    texts = {"g1": [PART, GOOD, GOOD + " Hey Iris, see you at the library at 4:00 pm quickly, ok?"],
             "g2": [GOOD, PART, EMPTY]}
    rows = [{"id": f"{m}-{pid}-{j}", "prompt_id": pid, "member": m, "round": 1, "completion": text, "prompt": prompt,
             "domain": "general"} for m in ("r0-sft", "r1-x") for pid, ts in texts.items() for j, text in enumerate(ts)]
    rows.append({"id": "r0-sft-m1-0", "prompt_id": "m1", "member": "r0-sft", "round": 1, "completion": "7",
                 "prompt": prompt, "domain": "math"})
    write_dataset(rows[::-1], "response", root / "responses", producer="test")  # order restored by sample index
    member = root / "members" / "r1-mdloo"
    member.mkdir(parents=True)
    _jsonl(member / "rollouts.jsonl", [{"step": 0, "prompt_id": "g1", "domain": "general", "completion": GOOD,
                                        "reward_model": 2.0}])
    _jsonl(member / "metrics.jsonl", [{"source": "trainer", "step": 1, "kl": 0.02}])
    out = round_overoptimisation(run, 1)
    assert out["best_of_n_member"] == "r0-sft" and out["best_of_n_k"] == 3 and out["best_of_n_prompts"] == 2
    assert calls == [6]  # only the start member's open-ended answers are scored
    bon = {p["n"]: p for p in out["best_of_n"]}
    assert sorted(bon) == [1, 2, 3]
    assert bon[1]["gold"] == pytest.approx((1 / 3 + 1.0) / 2)  # the first samples
    assert bon[2]["gold"] == 1.0  # the longer of the first two is the good answer for both prompts
    assert bon[3]["gold"] == pytest.approx(0.75)  # g1's pick is now the longest, with a forbidden word (0.5)
    assert bon[3]["proxy"] > bon[2]["proxy"] > bon[1]["proxy"]
    assert out["mdloo"] == [{"step": 0, "kl": 0.02, "proxy": 2.0, "gold": 1.0, "n": 1}]
    assert (root / "plots" / "overoptimisation.png").stat().st_size > 0
    assert json.loads((root / "eval" / "overoptimisation.json").read_text())["best_of_n"] == out["best_of_n"]
    (run / "round_0").mkdir()
    (run / "round_0" / "gold.json").write_text(json.dumps({"g1": GOLD}))  # dev/test gold: not a round's train gold
    assert round_overoptimisation(run, 0) is None
