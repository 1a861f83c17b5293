"""RewardScorer: sorted batching equals one-at-a-time scoring, order kept, TRL reward-function use."""
import pytest
import torch

from reward_model.scorer import RewardScorer


def _inputs():
    prompts = [f"{a}+{a * 7}=" for a in range(9)]
    prompts[2] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+14="}]
    completions = ["1" * (1 + (i * 5) % 11) for i in range(9)]
    completions[4] = [{"role": "assistant", "content": "forty"}]
    return prompts, completions


def test_sorted_batching_matches_one_at_a_time(rm, tokenizer):
    prompts, completions = _inputs()
    batched = RewardScorer(rm, tokenizer, batch_size=4).score(prompts, completions)
    single = RewardScorer(rm, tokenizer, batch_size=1)
    expected = [single.score([p], [c]).rewards[0] for p, c in zip(prompts, completions)]
    assert batched.rewards == pytest.approx(expected, abs=1e-5)
    assert len(set(round(r, 6) for r in expected)) > 5  # inputs differ, so order errors would show
    assert all(set(g) == {"instruction_following", "verbosity", "truthfulness", "harmlessness"}
               for g in batched.grades)
    assert all(v in (0, 1, 2) for g in batched.grades for v in g.values())


def test_call_is_a_trl_reward_function_and_matches_model(rm, tokenizer):
    scorer = RewardScorer(rm, tokenizer, batch_size=3)
    prompts, completions = _inputs()
    rewards = scorer(prompts=prompts, completions=completions, answer=["x"] * 9)
    assert isinstance(rewards, list) and all(isinstance(r, float) for r in rewards)
    assert scorer.__name__ == "reward_model"
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompts[0]}, {"role": "assistant", "content": completions[0]}],
        tokenize=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        direct = rm(input_ids=torch.tensor([ids])).rewards.item()
    assert rewards[0] == pytest.approx(direct, abs=1e-5)


def test_scoring_restores_training_mode_and_truncates(rm, tokenizer):
    rm.train()
    scorer = RewardScorer(rm, tokenizer, max_length=8)
    assert len(scorer.encode("1+2=", "3" * 30)) == 8
    scorer.score(["a"], ["b"])
    assert rm.training


def test_mismatched_lengths_is_value_error(rm, tokenizer):
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        RewardScorer(rm, tokenizer).score(["a", "b"], ["c"])
