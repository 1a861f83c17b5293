"""Qwen2's online DPO (alignment/online_dpo.py): the pair choice and the DPO loss on hand-worked numbers, a tiny
end-to-end run with a saved RM that changes the weights and writes a member, the resampling schedule, and a
missing reward model as a one-line error (in code and from `afm-align train online_dpo`, exit 2).

Run: `python -m pytest tests/alignment/test_online_dpo.py`.
"""
import json
import math

import pytest
import torch

from afm_align.config import load_config
from afm_align.errors import NothingToTrain, UserError
from alignment import online_dpo
from alignment.online_dpo import OnlineDPOConfig, dpo_loss, pick_pairs, sequence_logps


def tiny_cfg(base, data, out, **kw):
    overrides = [f"from_checkpoint={base}", f"data={data}", f"out={out}", "steps=2", "k=4", "prompts_per_step=4",
                 "max_new_tokens=8", "learning_rate=0.01", "resample_every=1", "batch_size=2"]
    overrides += [f"{k}={v}" for k, v in kw.items()]
    return load_config(OnlineDPOConfig, preset="tiny", recipe="online_dpo", overrides=overrides)


@pytest.fixture
def rm_dir(tiny_base_dir, tiny_tokenizer, tmp_path):
    """A saved multi-head RM on the tiny backbone (heads untrained: distinct texts get distinct scores)."""
    from reward_model.model import MultiHeadRewardModel

    MultiHeadRewardModel.from_backbone(tiny_base_dir).save_pretrained(tmp_path / "rm")
    tiny_tokenizer.save_pretrained(tmp_path / "rm")
    return tmp_path / "rm"


def length_rm(prompts, completions, **columns):
    """A stand-in RM for the schedule tests: the completion's length in characters."""
    return [float(len(c[-1]["content"])) for c in completions]


# ---- pure pieces ---------------------------------------------------------------------------------------

def test_pairs_are_best_and_worst_and_ties_are_skipped():
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}]} for i in range(3)]
    texts = [["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]
    scores = [[0.1, 0.9, -0.5], [2.0, 2.0, 2.0], [None, 1.0, 1.0]]
    pairs, skipped = pick_pairs(rows, texts, scores)
    assert skipped == 1  # prompt 1: every sample scored 2.0, nothing to prefer
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b", "c"), ("h", "g")]  # tie for best: lowest index
    assert (pairs[0]["score_chosen"], pairs[0]["score_rejected"]) == (0.9, -0.5)
    assert pairs[1]["prompt"] == rows[2]["prompt"] and pairs[1]["score_rejected"] == -math.inf  # None is lowest


def test_dpo_loss_on_hand_worked_log_probs():
    # pair 0: log-ratios chosen -1 - (-2) = 1, rejected -3 - (-2) = -1; beta 0.5 -> beta * margin = 1
    # pair 1: the policy equals the reference -> margin 0, loss log 2
    pc = torch.tensor([-1.0, -4.0], requires_grad=True)
    pr = torch.tensor([-3.0, -5.0], requires_grad=True)
    out = dpo_loss(pc, pr, torch.tensor([-2.0, -4.0]), torch.tensor([-2.0, -5.0]), beta=0.5)
    torch.testing.assert_close(out.losses, torch.tensor([math.log(1 + math.exp(-1)), math.log(2)]))
    torch.testing.assert_close(out.chosen_rewards, torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(out.rejected_rewards, torch.tensor([-0.5, 0.0]))
    out.losses.sum().backward()
    # d/d log pi(y_c) = -beta * sigmoid(-beta * margin); the rejected side gets the opposite
    expected = torch.tensor([-0.5 / (1 + math.e), -0.25])
    torch.testing.assert_close(pc.grad, expected)
    torch.testing.assert_close(pr.grad, -expected)


def test_sequence_logps_sum_the_completion_tokens_and_ignore_padding(tiny_lm):
    prompts, completions = [[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14, 15]]
    with torch.no_grad():
        batched, counts = sequence_logps(tiny_lm, prompts, completions, pad_id=0, max_length=64)
        for i, (p, c) in enumerate(zip(prompts, completions)):
            logits = tiny_lm(input_ids=torch.tensor([p + c])).logits[0].log_softmax(-1)
            by_hand = sum(float(logits[len(p) - 1 + j, tok]) for j, tok in enumerate(c))
            assert float(batched[i]) == pytest.approx(by_hand, abs=1e-5)
        assert counts.tolist() == [2, 4]
        cut, cut_counts = sequence_logps(tiny_lm, prompts, completions, pad_id=0, max_length=4)
    assert cut_counts.tolist() == [1, 2]  # the end of a sequence longer than max_length is dropped


# ---- the recipe ----------------------------------------------------------------------------------------

def test_online_dpo_trains_and_writes_a_member(tiny_base_dir, prompt_dir, rm_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_base_dir).state_dict()
    out = tmp_path / "member"
    summary = online_dpo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, reward_model=rm_dir))

    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"] == "online_dpo" and meta["member"] == "member" and meta["data_hash"]
    assert meta["reward_model"] == str(rm_dir) and meta["reward_terms"] == {"reward_model": 1.0}
    assert meta["pairs_seen"] == summary["pairs_seen"] > 0 and meta["sampling_rounds"] == 2
    assert meta["train"]["steps"] == 2 and meta["train"]["last_loss"] is not None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert r["pairs"] > 0 and r["reward_chosen"] > r["reward_rejected"]
        assert r["reward_margin"] == pytest.approx(r["reward_chosen"] - r["reward_rejected"])
        assert {"margin", "accuracy", "grad_norm", "sampled"} <= set(r)
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # step 1: the policy is the reference
    assert (out / "recipe_config.yaml").is_file() and (out / "tokenizer_config.json").is_file()


def test_samples_are_drawn_every_resample_every_steps(tiny_base_dir, prompt_dir, tmp_path, monkeypatch):
    from afm_align import generation
    from transformers import AutoModelForCausalLM

    calls = []
    real = generation.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate", counting)
    monkeypatch.setattr(online_dpo, "load_rm", lambda path: length_rm)
    out = tmp_path / "lora"
    online_dpo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, reward_model="stand-in", steps=5, resample_every=2,
                             lora_rank=8, k=3, max_new_tokens=6))
    assert calls == [0, 1, 2]  # steps 1, 3 and 5 sample, each group with its own seed
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("sampled")] == [1, 3, 5]
    loss = {r["step"]: r["loss"] for r in records}
    assert loss[2] < loss[1] and loss[4] < loss[3]  # the second step on the same pairs has a lower loss
    before = AutoModelForCausalLM.from_pretrained(tiny_base_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()  # LoRA adapters merged: plain weights
    assert set(after) == set(before)
    assert any(not torch.equal(before[k], after[k]) for k in before if "proj" in k)


def test_all_ties_everywhere_is_nothing_to_train(tiny_base_dir, prompt_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(online_dpo, "load_rm", lambda path: lambda prompts, completions, **c: [1.0] * len(completions))
    out = tmp_path / "m"
    with pytest.raises(NothingToTrain, match="no pair"):
        online_dpo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, reward_model="flat", steps=1, k=2,
                                 max_new_tokens=4))
    assert not out.exists()


@pytest.mark.parametrize("overrides, message", [
    ({}, online_dpo.NO_RM),
    ({"reward_model": "/some/rm", "k": 1}, "k (samples per prompt) must be at least 2"),
    ({"reward_model": "/some/rm", "temperature": 0}, "beta and temperature must be positive"),
    ({"reward_model": "/no/such/rm"}, "not a trained reward-model directory"),
])
def test_bad_config_is_a_one_line_user_error(overrides, message, tiny_base_dir, prompt_dir, tmp_path):
    with pytest.raises(UserError) as err:
        online_dpo.main(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", **overrides))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "m").exists()


# ---- from the command line (needs the `online_dpo` row of alignment.recipes.RECIPES) --------------------

def test_cli_without_a_reward_model_is_exit_2(tiny_base_dir, prompt_dir, tmp_path, capsys):
    from afm_align.cli import main as cli_main

    out = tmp_path / "m"
    assert cli_main(["train", "online_dpo", "--from", str(tiny_base_dir), "--data", str(prompt_dir),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert online_dpo.NO_RM in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_with_a_reward_model_writes_a_member(tiny_base_dir, prompt_dir, rm_dir, tmp_path):
    from afm_align.cli import main as cli_main

    out = tmp_path / "m"
    assert cli_main(["train", "online_dpo", "--from", str(tiny_base_dir), "--data", str(prompt_dir), "--rm",
                     str(rm_dir), "--out", str(out), "steps=1", "k=2", "prompts_per_step=2", "max_new_tokens=4"]) == 0
    assert json.loads((out / "meta.json").read_text())["recipe"] == "online_dpo"
