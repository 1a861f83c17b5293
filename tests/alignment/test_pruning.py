"""The prune recipe: importance picks the known largest units, slices copy exactly, the student runs and is written."""
import json

import pytest
import torch

from afm_align.base_model import load_base
from afm_align.config import load_config
from afm_align.errors import UserError
from alignment import pruning
from alignment.members import load_member, read_meta
from alignment.pruning import PruneConfig


def magnitude_plan(model, cfg: PruneConfig):
    shape = pruning.model_shape(model.config)
    target = pruning.target_shape(cfg, shape)
    plan = pruning.prune_plan(pruning.importance_scores(pruning.weight_norms(model), None), shape, target)
    return plan, target


def test_top_indices_keeps_the_largest_in_index_order():
    scores = torch.tensor([0.1, 5.0, 0.3, 5.0, 2.0, 0.0])
    assert pruning.top_indices(scores, 3).tolist() == [1, 3, 4]
    assert pruning.top_indices(torch.ones(4), 2).tolist() == [0, 1]  # ties go to the lower index


def test_weight_norms_by_hand():
    gate = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    up = torch.tensor([[0.0, 4.0], [0.0, 0.0]])
    down = torch.tensor([[0.0, 2.0], [0.0, 0.0]])  # [hidden, intermediate]: column j is channel j
    assert pruning.mlp_weight_norms(gate, up, down).tolist() == pytest.approx([5.0, (1 + 4) ** 0.5])
    q = torch.zeros(4, 3)  # two heads of head_dim 2
    q[2, 0] = 3.0
    o = torch.zeros(3, 4)
    o[1, 3] = 4.0
    assert pruning.head_weight_norms(q, o, head_dim=2).tolist() == pytest.approx([0.0, 5.0])


def test_block_influence_by_hand():
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    same, count = pruning.block_influence(x, 3 * x, torch.ones(1, 2))
    assert same == pytest.approx(0.0, abs=1e-6) and count == 2
    turned, _ = pruning.block_influence(x, torch.tensor([[[0.0, 1.0], [5.0, 5.0]]]), torch.tensor([[1.0, 0.0]]))
    assert turned == pytest.approx(1.0)  # orthogonal on the one real token; the padded one is left out


def test_select_heads_keeps_whole_groups_then_their_best_heads():
    scores = torch.tensor([0.1, 0.2, 3.0, 0.5, 1.0, 1.5])  # 3 KV groups of 2 query heads
    kv, q = pruning.select_heads(scores, num_kv_heads=3, keep_groups=2, heads_per_group=1)
    assert kv.tolist() == [1, 2] and q.tolist() == [2, 5]
    assert pruning.head_rows(torch.tensor([1, 3]), 2).tolist() == [2, 3, 6, 7]


def test_target_shape_resolves_zeros_and_rejects_what_cannot_be_cut(tiny_lm):
    teacher = pruning.model_shape(tiny_lm.config)  # hidden 32, 2 layers, 4 heads, 2 KV heads, 64 channels
    assert pruning.target_shape(PruneConfig(), teacher) == teacher
    assert pruning.target_shape(PruneConfig(num_kv_heads=1), teacher)["num_heads"] == 2  # heads per group kept
    for bad in (dict(intermediate_size=65), dict(num_layers=3), dict(num_heads=3, num_kv_heads=2),
                dict(num_heads=4, num_kv_heads=1)):
        with pytest.raises(UserError):
            pruning.target_shape(PruneConfig(**bad), teacher)


def test_importance_picks_the_known_largest_mlp_channels_and_copies_them(tiny_lm):
    chosen = [5, 17, 40, 63]
    with torch.no_grad():
        for layer in tiny_lm.model.layers:
            layer.mlp.down_proj.weight[:, chosen] *= 50.0
    plan, target = magnitude_plan(tiny_lm, PruneConfig(intermediate_size=4))
    student = pruning.build_student(tiny_lm, plan, target)
    for t_layer, s_layer, kept in zip(tiny_lm.model.layers, student.model.layers, plan["per_layer"]):
        assert kept["mlp"].tolist() == chosen
        assert torch.equal(s_layer.mlp.gate_proj.weight, t_layer.mlp.gate_proj.weight[chosen])
        assert torch.equal(s_layer.mlp.up_proj.weight, t_layer.mlp.up_proj.weight[chosen])
        assert torch.equal(s_layer.mlp.down_proj.weight, t_layer.mlp.down_proj.weight[:, chosen])
        assert torch.equal(s_layer.self_attn.q_proj.weight, t_layer.self_attn.q_proj.weight)


def test_full_shape_prune_gives_the_teacher_back(tiny_lm):
    ids = torch.randint(0, tiny_lm.config.vocab_size, (2, 12))
    batches = [(ids, torch.ones(2, 12))]
    means = pruning.activation_means(tiny_lm.eval(), batches)
    shape = pruning.model_shape(tiny_lm.config)
    for scored in (None, means):
        plan = pruning.prune_plan(pruning.importance_scores(pruning.weight_norms(tiny_lm), scored),
                                  shape, shape)
        student = pruning.build_student(tiny_lm, plan, shape)
        with torch.no_grad():
            assert torch.equal(student(ids).logits, tiny_lm(ids).logits)


def test_fewer_mlp_channels_have_the_predicted_parameter_count(tiny_lm):
    plan, target = magnitude_plan(tiny_lm, PruneConfig(intermediate_size=24))
    student = pruning.build_student(tiny_lm, plan, target)
    removed = 2 * 3 * 32 * (64 - 24)  # 2 layers x (gate rows + up rows + down columns) x hidden 32 x 40 channels
    assert pruning.parameter_count(student) == pruning.parameter_count(tiny_lm) - removed
    out = student(torch.randint(0, 320, (1, 8)))
    assert out.logits.shape == (1, 8, 320) and torch.isfinite(out.logits).all()


def test_everything_smaller_runs_and_slices_consistently(tiny_lm):
    cfg = PruneConfig(hidden_size=20, num_layers=1, num_heads=1, num_kv_heads=1, intermediate_size=16)
    plan, target = magnitude_plan(tiny_lm, cfg)
    student = pruning.build_student(tiny_lm, plan, target)
    hidden, kept = plan["hidden"], plan["per_layer"][0]
    t_layer = tiny_lm.model.layers[plan["layers"][0]]
    q_rows = pruning.head_rows(kept["q"], 8)
    assert torch.equal(student.model.embed_tokens.weight, tiny_lm.model.embed_tokens.weight[:, hidden])
    assert torch.equal(student.model.layers[0].self_attn.q_proj.weight, t_layer.self_attn.q_proj.weight[q_rows][:, hidden])
    assert torch.equal(student.model.layers[0].self_attn.k_norm.weight, t_layer.self_attn.k_norm.weight)
    assert torch.equal(student.model.norm.weight, tiny_lm.model.norm.weight[hidden])
    assert student.lm_head.weight.data_ptr() == student.model.embed_tokens.weight.data_ptr()  # still tied
    assert student(torch.randint(0, 320, (2, 6))).logits.shape == (2, 6, 320)


def test_layers_are_dropped_by_block_influence(tiny_lm):
    shape = pruning.model_shape(tiny_lm.config)
    means = pruning.activation_means(tiny_lm.eval(), [(torch.randint(0, 320, (2, 10)), torch.ones(2, 10))])
    means[("layer", 0)], means[("layer", 1)] = 0.01, 0.5  # layer 0 barely changes the residual stream
    scores = pruning.importance_scores(pruning.weight_norms(tiny_lm), means)
    plan = pruning.prune_plan(scores, shape, pruning.target_shape(PruneConfig(num_layers=1), shape))
    assert plan["layers"] == [1]


def test_prune_recipe_writes_a_member(tiny_base_dir, recipe_data, tmp_path):
    out = tmp_path / "members" / "pruned"
    cfg = load_config(PruneConfig, preset="tiny", recipe="prune", overrides=[
        f"from_checkpoint={tiny_base_dir}", f"data={recipe_data / 'sft'}", f"out={out}", "hidden_size=24",
        "num_layers=2", "num_heads=2", "num_kv_heads=1", "intermediate_size=32", "calibration_rows=6",
        "seq_len=48", "batch_size=3"])
    meta = pruning.main(cfg)
    assert read_meta(out) == meta and meta["recipe"] == "prune" and meta["importance"] == "activation"
    assert meta["student_shape"]["intermediate_size"] == 32 and meta["teacher_shape"]["hidden_size"] == 32
    assert meta["parameters"]["student"] < meta["parameters"]["teacher"]
    assert meta["kept"]["mlp_kept"] == [32, 32] and len(meta["kept"]["kv_heads"][0]) == 1
    model, tokenizer, _ = load_member(out)
    assert model.config.hidden_size == 24 and len(tokenizer) == 320
    teacher, _ = load_base(tiny_base_dir)
    plan = json.loads((out / "prune_plan.json").read_text())
    layer = plan["per_layer"][1]
    want = teacher.model.layers[plan["layers"][1]].mlp.down_proj.weight[plan["hidden"]][:, layer["mlp"]]
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight, want)


def test_bad_prune_configs_are_one_line_errors(tiny_base_dir, tmp_path):
    with pytest.raises(UserError, match="importance"):
        pruning.main(PruneConfig(from_checkpoint=str(tiny_base_dir), out=str(tmp_path / "o"), importance="random"))
    with pytest.raises(UserError, match="data"):
        pruning.main(PruneConfig(from_checkpoint=str(tiny_base_dir), out=str(tmp_path / "o")))
    with pytest.raises(UserError, match="intermediate_size"):
        pruning.main(PruneConfig(from_checkpoint=str(tiny_base_dir), out=str(tmp_path / "o"),
                                 importance="magnitude", intermediate_size=1000))
    assert not (tmp_path / "o").exists()
