"""MultiHeadRewardModel: pooling, output shapes, Auto-class save/load roundtrip, from_backbone."""
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, Qwen3ForCausalLM

from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel, attention_pool, last_token_index


def test_last_token_index_left_and_right_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [2, 4, 4]


def test_outputs_shapes_and_logits_alias(rm):
    out = rm(input_ids=torch.randint(5, 90, (3, 7)), attention_mask=torch.ones(3, 7, dtype=torch.long))
    assert out.rewards.shape == (3,)
    assert out.grade_logits.shape == (3, 4, 3)
    assert torch.equal(out.logits[:, 0], out.rewards)
    assert rm.config.num_labels == 1


def test_padding_side_does_not_change_reward(rm):
    ids = torch.randint(5, 90, (1, 6))
    alone = rm(input_ids=ids, attention_mask=torch.ones_like(ids))
    right = rm(input_ids=torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1),
               attention_mask=torch.tensor([[1] * 6 + [0] * 3]))
    left = rm(input_ids=torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1),
              attention_mask=torch.tensor([[0] * 3 + [1] * 6]))
    assert torch.allclose(alone.rewards, right.rewards, atol=1e-5)
    assert torch.allclose(alone.rewards, left.rewards, atol=1e-5)
    assert torch.allclose(alone.grade_logits, left.grade_logits, atol=1e-5)


def test_save_and_reload_with_auto_classes_keeps_every_head(rm, tmp_path):
    with torch.no_grad():  # make the heads distinctive so a silently re-initialised head would show
        for p in list(rm.reward_head.parameters()) + list(rm.grade_heads.parameters()):
            p.add_(torch.randn_like(p))
    rm.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "afm_multihead_rm"
    ids = torch.randint(5, 90, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4])
    expected = rm(input_ids=ids, attention_mask=mask)
    for auto in (AutoModel, AutoModelForSequenceClassification):
        loaded = auto.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, MultiHeadRewardModel)
        got = loaded(input_ids=ids, attention_mask=mask)
        # identical weights; the reloaded config carries dtype=float32, which moves round-off by ~1e-8
        assert torch.allclose(got.rewards, expected.rewards, rtol=0, atol=1e-6)
        assert torch.allclose(got.grade_logits, expected.grade_logits, rtol=0, atol=1e-5)
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in rm.state_dict().items())


def test_from_backbone_loads_causal_lm_base_weights(backbone_config, tmp_path):
    torch.manual_seed(1)
    lm = Qwen3ForCausalLM(backbone_config)
    lm.save_pretrained(tmp_path)
    for source in (str(tmp_path), lm):
        rm = MultiHeadRewardModel.from_backbone(source, head_hidden_size=16)
        assert rm.config.head_hidden_size == 16
        assert rm.grade_heads["verbosity"][0].out_features == 16
        for name, param in lm.model.state_dict().items():
            assert torch.equal(rm.model.state_dict()[name], param), name


def test_from_backbone_missing_path_is_value_error(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="Cannot load a backbone"):
        MultiHeadRewardModel.from_backbone(tmp_path / "nope")


def test_config_roundtrip_dict(backbone_config):
    cfg = MultiHeadRewardConfig(lm_config=backbone_config, head_hidden_size=8)
    again = MultiHeadRewardConfig.from_dict(cfg.to_dict())
    assert again.lm_config.hidden_size == 32 and again.head_hidden_size == 8 and again.num_labels == 1
    assert again.grading_dims == ["instruction_following", "verbosity", "truthfulness", "harmlessness"]


def attention_rm(backbone_config):
    torch.manual_seed(0)
    return MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config, pooling="attention")).eval()


def test_untrained_attention_pool_is_the_mean_of_the_non_padding_tokens(backbone_config):
    rm = attention_rm(backbone_config)
    ids = torch.randint(5, 90, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    hidden = rm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    means = torch.stack([hidden[0].mean(0), hidden[1, :4].mean(0)])
    got = rm(input_ids=ids, attention_mask=mask)
    assert torch.allclose(got.rewards, rm.reward_head(means).squeeze(-1), atol=1e-5)


def test_attention_pool_ignores_padding_and_weights_by_score(backbone_config):
    rm = attention_rm(backbone_config)
    with torch.no_grad():  # a scorer that is not zero, so the weights are not uniform
        rm.pool_scorer.weight.normal_(0, 3.0)
    ids = torch.randint(5, 90, (1, 6))
    alone = rm(input_ids=ids, attention_mask=torch.ones_like(ids)).rewards
    right = rm(input_ids=torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1),
               attention_mask=torch.tensor([[1] * 6 + [0] * 3])).rewards
    assert torch.allclose(alone, right, atol=1e-5)
    hidden = torch.randn(1, 3, 4)
    pooled = attention_pool(hidden, torch.tensor([[1, 1, 0]]), torch.tensor([[0.0, 50.0, 100.0]]))
    assert torch.allclose(pooled, hidden[:, 1], atol=1e-5)  # the padded position's score counts for nothing


def test_attention_pooling_survives_save_and_reload(backbone_config, tmp_path):
    rm = attention_rm(backbone_config)
    with torch.no_grad():
        rm.pool_scorer.weight.normal_()
    rm.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.pooling == "attention"
    ids = torch.randint(5, 90, (2, 5))
    assert torch.allclose(loaded(input_ids=ids).rewards, rm(input_ids=ids).rewards, atol=1e-5)


def test_unknown_pooling_is_a_one_line_error(backbone_config):
    import pytest

    from afm_align.errors import UserError

    with pytest.raises(UserError, match="pooling='max': choose one of last, attention"):
        MultiHeadRewardConfig(lm_config=backbone_config, pooling="max")
