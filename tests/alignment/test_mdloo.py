"""MDLOO recipe: a few steps on the tiny LM change the weights and write a loadable member; bad input fails
clearly; the first inner step's gradient equals TRL's RLOO gradient; the penalty bites on later steps."""
import json
import re

import pytest
import torch
from transformers import TrainerCallback

from alignment import mdloo, recipes
from alignment.rewards import RewardTerm


def digit_reward(prompts, completions, **columns):
    """Verifier-style toy reward: 1 if the completion contains a digit."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if re.search(r"\d", t) else 0.0 for t in texts]


def length_reward(prompts, completions, **columns):
    """A dense toy reward (every group of K has spread): the completion's length in characters / 10."""
    return [len(c[-1]["content"] if isinstance(c, list) else c) / 10 for c in completions]


DIGIT = [RewardTerm("digit", digit_reward, 1.0)]


def tiny_cfg(base, data, out, **kw):
    overrides = [f"from_checkpoint={base}", f"data={data}", f"out={out}", "steps=2", "k=4",
                 "prompts_per_step=2", "max_new_tokens=8", "learning_rate=0.01"]
    overrides += [f"{k}={v}" for k, v in kw.items()]
    return recipes.load("mdloo", preset="tiny", overrides=overrides)


def test_mdloo_trains_and_writes_a_member(tiny_base_dir, prompt_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_base_dir).state_dict()
    out = tmp_path / "member"
    mdloo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, num_iterations=2), rewards=DIGIT)

    member = AutoModelForCausalLM.from_pretrained(out)
    after = member.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "no parameter changed"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 4  # 2 outer iterations x 2 inner steps, logged every step
    assert {"reward", "kl", "kl_old", "loss"} <= set(steps[0])  # reward and kl: logged when sampling
    # the penalty is zero on the first inner step (policy == pi_k) and positive on the second
    assert steps[0]["kl_old"] == pytest.approx(0.0, abs=1e-6)
    assert steps[1]["kl_old"] > 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"] == "mdloo" and meta["config"]["num_iterations"] == 2 and meta["member"] == "member"
    assert meta["from_checkpoint"] == str(tiny_base_dir) and meta["data_hash"]
    assert "reward" in meta["final_metrics"]
    assert (out / "recipe_config.yaml").is_file() and (out / "tokenizer_config.json").is_file()


def test_rloo_baseline_config_and_lora(tiny_base_dir, prompt_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "rloo"
    cfg = recipes.load("rloo", preset="tiny", overrides=[
        f"from_checkpoint={tiny_base_dir}", f"data={prompt_dir}", f"out={out}", "steps=1", "k=4",
        "prompts_per_step=2", "max_new_tokens=6", "lora_rank=8", "learning_rate=0.05", "num_iterations=1"])
    assert cfg.loss == "ppo_clip"
    mdloo.main(cfg, rewards=[RewardTerm("length", length_reward, 1.0)])
    before = AutoModelForCausalLM.from_pretrained(tiny_base_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()  # adapters merged: plain weights
    assert set(after) == set(before)
    assert any(not torch.equal(before[k], after[k]) for k in before if "proj" in k)
    assert json.loads((out / "meta.json").read_text())["recipe"] == "rloo"


def test_bad_input_is_a_clear_error(tiny_base_dir, prompt_dir, tmp_path):
    with pytest.raises(ValueError, match="num_iterations >= 2"):
        mdloo.main(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", num_iterations=1), rewards=DIGIT)
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        mdloo.main(tiny_cfg(tmp_path / "missing", prompt_dir, tmp_path / "m"), rewards=DIGIT)
    with pytest.raises(ValueError, match="unknown config key"):
        recipes.load("mdloo", preset="tiny", overrides=["nope=1"])


def _trainer(base_dir, prompt_dir, tmp_path, loss):
    from afm_align.base_model import load_base

    cfg = tiny_cfg(base_dir, prompt_dir, tmp_path / "x", beta=0.0)
    model, tok = load_base(base_dir)
    return mdloo.MDLOOTrainer(model=model, reward_funcs=[digit_reward], args=mdloo.rloo_args(cfg, tmp_path / "t", [1.0]),
                              train_dataset=mdloo.prompt_dataset(prompt_dir), processing_class=tok, loss=loss)


def test_first_inner_step_gradient_equals_trl_rloo(tiny_base_dir, prompt_dir, tmp_path):
    from trl import RLOOTrainer

    trainer = _trainer(tiny_base_dir, prompt_dir, tmp_path, "mdloo")
    model = trainer.model
    model.train()
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions([trainer.train_dataset[i] for i in (0, 0, 1, 1, 2, 2, 3, 3)])
    batch["advantages"] = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.3, -0.3])  # non-trivial advantages
    # TRL's loss reads `old_logps` from its pi_old forward pass, which MDLOOTrainer does not run (at beta = 0
    # nothing of ours needs it: it is NaN in the batch); run TRL's pass for TRL's side of the comparison
    assert trainer.old_logps_source == "skip" and torch.isnan(batch["old_logps"]).all()
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        old, _, _ = RLOOTrainer._get_per_token_logps_and_entropies(trainer, model, ids, mask,
                                                                   batch["completion_ids"].size(1))
    batch["old_logps"] = (old * batch["completion_mask"]).sum(1)

    def grads(loss_fn):
        model.zero_grad()
        loss_fn(model, dict(batch)).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    ours = grads(trainer._compute_loss)
    theirs = grads(lambda m, b: RLOOTrainer._compute_loss(trainer, m, b))
    assert len(ours) == len(theirs) > 0
    assert max(float((a).abs().max()) for a in ours) > 0
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_alignment_is_this_repo_package():
    from pathlib import Path

    import alignment

    assert Path(alignment.__file__).resolve().parent == Path(__file__).resolve().parents[2] / "alignment"


def test_kl_budget_stops_training_once_exceeded(tiny_base_dir, prompt_dir, tmp_path):
    out = tmp_path / "budget"
    metrics = mdloo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, steps=3, learning_rate=0.05, kl_budget=1e-9),
                         rewards=[RewardTerm("length", length_reward, 1.0)])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics["kl_budget"] == 1e-9 and metrics["kl_budget_stop_step"] is not None
    assert len([r for r in records if "loss" in r]) < 6  # 3 outer x 2 inner steps without the budget


def test_negative_kl_budget_is_rejected(tiny_base_dir, prompt_dir, tmp_path):
    with pytest.raises(ValueError, match="kl_budget"):
        mdloo.check_config(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "x", kl_budget=-1))


# ---- WARP's EMA anchor (ema_anchor) ---------------------------------------------------------------

def _params(model):
    return [p.detach().clone() for p in model.parameters()]


class _RecordSteps(TrainerCallback):
    """(policy, reference) parameter copies after every optimizer step; added after TRL's sync, so it sees its result."""

    def __init__(self, trainer):
        self.trainer, self.steps = trainer, []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append((_params(self.trainer.model), _params(self.trainer.ref_model)))


@pytest.mark.parametrize("mu", [0.5, 0.0])
def test_ema_anchor_moves_the_reference_by_hand(tiny_base_dir, prompt_dir, tmp_path, mu):
    from afm_align.base_model import load_base

    cfg = tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "x", steps=1, beta=0.05, learning_rate=0.05, ema_anchor=mu)
    model, tok = load_base(tiny_base_dir)
    trainer = mdloo.MDLOOTrainer(model=model, reward_funcs=[length_reward], args=mdloo.rloo_args(cfg, tmp_path / "t",
                                 [1.0]), train_dataset=mdloo.prompt_dataset(prompt_dir), processing_class=tok)
    ref0 = _params(trainer.ref_model)
    record = _RecordSteps(trainer)
    trainer.add_callback(record)
    trainer.train()
    assert len(record.steps) == 2  # 1 outer iteration x 2 inner optimizer steps
    assert any(not torch.equal(p, r) for p, r in zip(record.steps[-1][0], ref0))  # the policy left the start
    ref = ref0
    for policy, ref_after in record.steps:  # after each step: reference = (1 - mu) * reference + mu * policy
        for got, r, p in zip(ref_after, ref, policy, strict=True):
            torch.testing.assert_close(got, (1 - mu) * r + mu * p, rtol=0, atol=1e-6)
        ref = ref_after
    if mu == 0:
        assert all(torch.equal(a, b) for a, b in zip(trainer.ref_model.parameters(), ref0))  # the fixed reference
    else:
        assert any(not torch.equal(a, b) for a, b in zip(trainer.ref_model.parameters(), ref0))


def test_ema_anchor_is_recorded_and_needs_a_separate_reference(tiny_base_dir, prompt_dir, tmp_path):
    out = tmp_path / "ema"
    mdloo.main(tiny_cfg(tiny_base_dir, prompt_dir, out, steps=1, beta=0.05, ema_anchor=0.25),
               rewards=[RewardTerm("length", length_reward, 1.0)])
    assert json.loads((out / "meta.json").read_text())["ema_anchor"] == 0.25
    with pytest.raises(ValueError, match=r"^ema_anchor \(0.5\) moves a separate reference model, which exists only "
                                         r"with full fine-tuning and beta > 0 \(got lora_rank 8, beta 0.05\)\.$"):
        mdloo.check_config(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", lora_rank=8, beta=0.05, ema_anchor=0.5))
    with pytest.raises(ValueError, match=r"got lora_rank 0, beta 0.0\)\.$"):
        mdloo.check_config(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", beta=0, ema_anchor=0.5))
    with pytest.raises(ValueError, match=r"^ema_anchor must be in \[0, 1\] \(got 1.5\)$"):
        tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", ema_anchor=1.5)


def test_training_runs_on_deterministic_kernels_and_gives_the_callers_setting_back(tiny_base_dir, prompt_dir,
                                                                                    tmp_path):
    """At 2 CPU threads MDLOO runs from the same inputs and seed ended with different weights (the other recipes'
    did not); torch's deterministic kernels make them repeat, and a killed round re-runs the stage to the same
    member. The reward sees the mode while training; afterwards the caller's own setting is back."""
    seen = []

    def recording_reward(prompts, completions, **columns):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return length_reward(prompts, completions, **columns)

    assert not torch.are_deterministic_algorithms_enabled()
    mdloo.main(tiny_cfg(tiny_base_dir, prompt_dir, tmp_path / "m", steps=1),
               rewards=[RewardTerm("length", recording_reward, 1.0)])
    assert seen and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()
