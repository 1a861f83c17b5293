"""The RL reward: RM score + weighted verifier rewards through TRL's signature, combined as TRL combines them."""
import json

import pytest
import torch

from alignment.rewards import RewardTerm, combine, reward_terms, verifier_terms


def const(value):
    return lambda prompts, completions, **columns: [value(i) for i in range(len(completions))]


def test_combine_weights_and_none():
    terms = [RewardTerm("rm", const(lambda i: float(i)), 1.0),
             RewardTerm("v", const(lambda i: 1.0 if i % 2 else None), 0.5)]
    out = combine(terms)(["p"] * 3, ["c"] * 3)
    assert out == [0.0, 1.5, 2.0]
    nothing = combine([RewardTerm("v", const(lambda i: None), 2.0)])(["p"], ["c"])
    assert nothing == [None]


def test_combine_matches_trl_weighted_nansum():
    values = [[0.2, None, 1.0], [None, None, 0.0]]  # per term
    weights = [2.0, 0.5]
    terms = [RewardTerm(str(j), const(lambda i, v=v: v[i]), w) for j, (v, w) in enumerate(zip(values, weights))]
    ours = combine(terms)(["p"] * 3, ["c"] * 3)
    per_func = torch.tensor([[float("nan") if v is None else v for v in col] for col in values]).T
    trl = (per_func * torch.tensor(weights)).nansum(dim=1)
    trl[torch.isnan(per_func).all(dim=1)] = float("nan")  # TRL marks all-None rows unscorable
    assert ours[0] == pytest.approx(float(trl[0])) and ours[2] == pytest.approx(float(trl[2]))
    assert ours[1] is None and torch.isnan(trl[1])


def test_verifier_terms_grade_their_own_domain():
    terms = verifier_terms(["math", "code"], weight=0.5)
    assert [t.name for t in terms] == ["verifier_math", "verifier_code"]
    reward = combine(terms)
    prompts = [[{"role": "user", "content": "2 + 3?"}]] * 3
    completions = [[{"role": "assistant", "content": "Answer: 5"}], [{"role": "assistant", "content": "Answer: 4"}],
                   [{"role": "assistant", "content": "hello"}]]
    out = reward(prompts, completions, domain=["math", "math", "general"],
                 verifier=[json.dumps({"answer": "5"}), json.dumps({"answer": "5"}), "{}"])
    assert out == [0.5, 0.0, None]


def test_reward_terms_need_something():
    with pytest.raises(ValueError, match="no terms"):
        reward_terms(rm=None, verifier_weight=0.0)
    with pytest.raises(ValueError, match="unknown verifier families"):
        verifier_terms(["chess"])
    with pytest.raises(ValueError, match="not a trained reward-model directory"):
        reward_terms(rm="/nonexistent/rm")


def test_saved_reward_model_is_a_term(tiny_base_dir, tiny_tokenizer, tmp_path):
    from reward_model.model import MultiHeadRewardModel

    rm = MultiHeadRewardModel.from_backbone(tiny_base_dir)
    rm.save_pretrained(tmp_path / "rm")
    tiny_tokenizer.save_pretrained(tmp_path / "rm")
    terms = reward_terms(rm=tmp_path / "rm", rm_weight=2.0, verifier_weight=0.0)
    assert [(t.name, t.weight) for t in terms] == [("reward_model", 2.0)]
    prompts = [[{"role": "user", "content": "hi"}]] * 2
    completions = [[{"role": "assistant", "content": "1 + 1 = 2"}], [{"role": "assistant", "content": "no"}]]
    raw = terms[0].fn(prompts, completions)
    assert len(raw) == 2 and raw[0] != raw[1]
    assert combine(terms)(prompts, completions) == pytest.approx([2 * r for r in raw])
