"""The distill recipe: hand-checked losses, the baselines, loss falls, a seeded run repeats, bad input is one line."""
import math

import pytest
import torch

from afm_align.base_model import ModelShape, build_model, load_base, train_tokenizer
from afm_align.config import load_config
from afm_align.errors import UserError
from alignment import distill, pruning
from alignment.distill import DistillConfig
from alignment.members import read_meta, read_metrics
from alignment.pruning import PruneConfig


@pytest.fixture
def student_dir(tiny_base_dir, tmp_path):
    """The tiny base pruned to 24 MLP channels by weight magnitude (a student of the teacher's vocabulary)."""
    out = tmp_path / "members" / "pruned"
    pruning.main(PruneConfig(from_checkpoint=str(tiny_base_dir), out=str(out), importance="magnitude",
                             intermediate_size=24))
    return out


def cfg_for(tmp_path, student, teacher, data, **kw):
    fields = [f"from_checkpoint={student}", f"teacher={teacher}", f"data={data}",
              f"out={tmp_path / 'members' / 'distilled'}", "steps=12", "batch_size=4", "seq_len=64",
              "learning_rate=0.01", "warmup_steps=2", "logging_steps=3"]
    return load_config(DistillConfig, preset="tiny", recipe="distill",
                       overrides=fields + [f"{k}={v}" for k, v in kw.items()])


def test_top1_mix_loss_by_hand():
    student = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]])
    teacher = torch.tensor([[[0.0, 5.0, 1.0], [4.0, 0.0, 0.0]]])  # top-1: token 1, then token 0
    labels = torch.tensor([[1, 2]])
    log_p = student.log_softmax(-1)[0]
    first = -(0.9 * log_p[0, 1] + 0.1 * log_p[0, 1])  # teacher and label agree: plain CE
    second = -(0.9 * log_p[1, 0] + 0.1 * log_p[1, 2])
    both = distill.loss_top1_mix(student, teacher, labels, torch.tensor([[1, 1]]), 0.9, 1.0)
    assert both.item() == pytest.approx(((first + second) / 2).item())
    only_first = distill.loss_top1_mix(student, teacher, labels, torch.tensor([[1, 0]]), 0.9, 1.0)
    assert only_first.item() == pytest.approx(first.item())


def test_top1_mix_on_one_batch_matches_a_hand_computation(tiny_lm, tiny_tokenizer):
    teacher = build_model(tiny_tokenizer, ModelShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                                     intermediate_size=64, max_positions=256), seed=1).eval()
    msgs = [{"role": "user", "content": "3 + 4 ="}, {"role": "assistant", "content": "7"}]
    batch = distill.collate([distill.encode(tiny_tokenizer, msgs, 64, "all"),
                             distill.encode(tiny_tokenizer, msgs[:1], 64, "all")], tiny_tokenizer.pad_token_id)
    cfg = DistillConfig(kd_mode="top1_mix")
    loss = distill.batch_loss(tiny_lm, teacher, batch, cfg)
    ids, attn, _ = batch
    with torch.no_grad():
        log_p = tiny_lm(input_ids=ids, attention_mask=attn).logits.log_softmax(-1)
        top1 = teacher(input_ids=ids, attention_mask=attn).logits.argmax(-1)
    terms = []
    for b in range(ids.size(0)):
        for t in range(ids.size(1) - 1):
            if attn[b, t + 1]:
                terms.append(-0.9 * log_p[b, t, top1[b, t]] - 0.1 * log_p[b, t, ids[b, t + 1]])
    assert loss.item() == pytest.approx(float(sum(terms) / len(terms)), rel=1e-5)


def test_kd_none_equals_plain_cross_entropy(tiny_lm, tiny_tokenizer):
    msgs = [{"role": "user", "content": "1 + 2 ="}, {"role": "assistant", "content": "3"}]
    batch = distill.collate([distill.encode(tiny_tokenizer, msgs, 64, "assistant"),
                             distill.encode(tiny_tokenizer, msgs + msgs, 64, "assistant")], tiny_tokenizer.pad_token_id)
    ids, attn, mask = batch
    loss = distill.batch_loss(tiny_lm, None, batch, DistillConfig(kd_mode="none"))
    plain = tiny_lm(input_ids=ids, attention_mask=attn, labels=ids.masked_fill((mask * attn) == 0, -100)).loss
    assert loss.item() == pytest.approx(plain.item(), rel=1e-6)


def test_assistant_mask_covers_the_assistant_turn_only(tiny_tokenizer):
    msgs = [{"role": "user", "content": "1 + 2 ="}, {"role": "assistant", "content": "3"}]
    ids, mask = distill.encode(tiny_tokenizer, msgs, 64, "assistant")
    assert tiny_tokenizer.decode([i for i, m in zip(ids, mask) if m]) == "3<|im_end|>"
    assert distill.encode(tiny_tokenizer, msgs, 5, "all") == (ids[:5], [1] * 5)
    assert distill.encode(tiny_tokenizer, msgs, 5, "assistant") == (ids[-5:], mask[-5:])  # the turn survives


def test_batch_order_is_seeded_and_covers_every_row():
    order = distill.batch_order(5, steps=4, batch_size=3, seed=0)
    assert order == distill.batch_order(5, steps=4, batch_size=3, seed=0) != distill.batch_order(5, 4, 3, seed=1)
    assert sorted(sum(order, [])[:5]) == [0, 1, 2, 3, 4] and all(len(b) == 3 for b in order)


def test_distill_loss_falls_parameters_change_and_meta(student_dir, tiny_base_dir, recipe_data, tmp_path):
    cfg = cfg_for(tmp_path, student_dir, tiny_base_dir, recipe_data / "sft")
    meta = distill.main(cfg)
    assert read_meta(cfg.out) == meta and meta["recipe"] == "distill" and meta["kd_mode"] == "top1_mix"
    assert meta["teacher"] == str(tiny_base_dir) and meta["train"]["steps"] == 12
    assert meta["train"]["last_loss"] < meta["train"]["first_loss"]
    assert meta["compute"]["tokens_seen"] > 0 and meta["compute"]["teacher_parameters"] > 0
    logged = [r["step"] for r in read_metrics(cfg.out) if "loss" in r]
    assert logged == [1, 4, 7, 10, 12]
    before, _ = load_base(student_dir)
    after, _ = load_base(cfg.out)
    assert not torch.equal(before.model.layers[0].mlp.down_proj.weight, after.model.layers[0].mlp.down_proj.weight)


def test_kl_and_on_policy_run(student_dir, tiny_base_dir, recipe_data, tmp_path):
    cfg = cfg_for(tmp_path, student_dir, tiny_base_dir, recipe_data / "sft", kd_mode="kl", on_policy="true",
                  steps=2, max_new_tokens=4, temperature=2.0)
    meta = distill.main(cfg)
    assert meta["on_policy"] and math.isfinite(meta["train"]["last_loss"]) and meta["train"]["loss_tokens"] > 0


def test_seeded_runs_repeat_and_random_init_differs(student_dir, recipe_data, tmp_path):
    runs = {}
    for name, init, seed, lr in (("a", "checkpoint", 0, 0.0), ("b", "random", 0, 0.01), ("c", "random", 0, 0.01),
                                 ("d", "random", 1, 0.01)):
        cfg = cfg_for(tmp_path, student_dir, "", recipe_data / "sft", init=init, seed=seed, learning_rate=lr,
                      kd_mode="none", steps=2)
        cfg.out = str(tmp_path / "members" / name)
        meta = distill.main(cfg)
        assert meta["teacher"] is None
        runs[name] = (load_base(cfg.out)[0].state_dict(), meta["train"]["last_loss"])
    start = load_base(student_dir)[0].state_dict()
    weight = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(runs["a"][0][weight], start[weight])  # learning rate 0: the checkpoint as it was
    assert not torch.equal(runs["b"][0][weight], start[weight])
    assert torch.equal(runs["b"][0][weight], runs["c"][0][weight]) and runs["b"][1] == runs["c"][1]  # seeded
    assert not torch.equal(runs["b"][0][weight], runs["d"][0][weight])
    assert runs["b"][0][weight].shape == start[weight].shape


def test_bad_inputs_are_one_line_errors(student_dir, tiny_base_dir, recipe_data, tmp_path):
    data = recipe_data / "sft"
    with pytest.raises(UserError, match="kd_mode must be one of"):
        distill.main(cfg_for(tmp_path, student_dir, tiny_base_dir, data, kd_mode="soft"))
    with pytest.raises(UserError, match="needs a teacher"):
        distill.main(cfg_for(tmp_path, student_dir, "", data))
    with pytest.raises(UserError, match="steps must be at least 1"):
        distill.main(DistillConfig(from_checkpoint=str(student_dir), teacher=str(tiny_base_dir), data=str(data),
                                   out=str(tmp_path / "o"), steps=0))
    other = tmp_path / "other_vocab"
    tokenizer = train_tokenizer(["1 + 1 = 2", "hello there"], vocab_size=280)
    build_model(tokenizer, ModelShape(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                                      intermediate_size=32)).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(UserError, match="shared tokenizer"):
        distill.main(cfg_for(tmp_path, student_dir, other, data))
    assert not (tmp_path / "members" / "distilled").exists()
