"""DPO and IPO (one recipe, two configs) on the tiny LM: loss type, training moves, level filter, errors."""
import math

import pytest
import torch

from afm_align.config import load_config
from afm_align.store import write_dataset
from alignment import preference
from alignment.members import read_meta
from alignment.preference import PreferenceConfig

GRADES = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}


def pref_rows(n=8, level=None):
    rows = []
    for i in range(n):
        a, b = i + 1, i + 2
        rows.append({"id": f"q{i}", "prompt": [{"role": "user", "content": f"{a} + {b} ="}],
                     "chosen": f"{a + b}", "rejected": [{"role": "assistant", "content": f"{a + b + 3}"}],
                     "level": i % 4 if level is None else level, "grades_chosen": GRADES,
                     "grades_rejected": dict(GRADES, truthfulness=0), "annotator": "oracle", "source": "oracle",
                     "guideline_version": "v1"})
    return rows


def test_level_filter_keeps_better_and_significantly_better():
    rows = pref_rows(8)
    pairs = preference.preference_pairs(rows, min_level=2)
    assert len(pairs) == 4  # levels 2 and 3 of 0,1,2,3,0,1,2,3
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "7"}]  # row q2 (3 + 4): strings become messages
    assert pairs[0]["rejected"][0]["content"] == "10"
    assert len(preference.preference_pairs(rows, min_level=0)) == 8
    same = dict(rows[3], rejected=rows[3]["chosen"])
    assert preference.preference_pairs([same, rows[2]], min_level=2) == [preference.preference_pairs(rows, 2)[0]]


def test_no_pairs_after_filter_is_one_clear_error():
    with pytest.raises(ValueError, match=r"has no preference pairs with level >= 2 among its 3 rows\.$"):
        preference.preference_pairs(pref_rows(3, level=1), min_level=2)


@pytest.mark.parametrize("recipe,loss_type", [("dpo", "sigmoid"), ("ipo", "ipo")])
def test_dpo_and_ipo_train_a_member(recipe, loss_type, tiny_base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = load_config(PreferenceConfig, preset="tiny", recipe=recipe, overrides=[
        f"from_checkpoint={tiny_base_dir}", f"data={tmp_path / 'prefs'}", f"out={tmp_path / 'members' / recipe}",
        "max_steps=4", "batch_size=2", "learning_rate=1e-2", "max_length=64", "logging_steps=1"])
    assert cfg.loss_type == loss_type and cfg.min_level == 2
    write_dataset(pref_rows(8), "preference", tmp_path / "prefs", producer="test")
    out = preference.main(cfg)

    meta = read_meta(out)
    assert meta["recipe"] == recipe and meta["loss_type"] == loss_type
    assert meta["pairs"] == {"rows": 8, "kept": 4, "min_level": 2}
    assert meta["train"]["last_loss"] != meta["train"]["first_loss"]
    member = AutoModelForCausalLM.from_pretrained(out)
    start = dict(AutoModelForCausalLM.from_pretrained(tiny_base_dir).named_parameters())
    assert any(not torch.equal(p, start[n]) for n, p in member.named_parameters())


def test_trainer_uses_the_configured_loss(tiny_lm, tiny_tokenizer, tmp_path):
    pairs = preference.preference_pairs(pref_rows(4), min_level=0)
    cfg = PreferenceConfig(loss_type="ipo", nll_weight=0.2, max_steps=1, batch_size=2)
    trainer = preference.build_trainer(tiny_lm, tiny_tokenizer, pairs, cfg, tmp_path / "work")
    assert trainer.args.loss_type == ["ipo", "sft"] and trainer.args.loss_weights == [1.0, 0.2]
    assert trainer.args.bf16 is False and trainer.args.gradient_checkpointing is False
    assert trainer.args.report_to in ([], ["none"], "none")
    assert trainer.ref_model is not None and trainer.ref_model is not trainer.model


def test_lora_member_is_merged(tiny_base_dir, tmp_path):
    write_dataset(pref_rows(4, level=3), "preference", tmp_path / "prefs", producer="test")
    cfg = PreferenceConfig(from_checkpoint=str(tiny_base_dir), data=str(tmp_path / "prefs"),
                           out=str(tmp_path / "members" / "dpo-lora"), lora_rank=8, max_steps=2, batch_size=2,
                           learning_rate=1e-2, max_length=64)
    out = preference.main(cfg)
    assert read_meta(out)["lora_rank"] == 8
    assert not (out / "adapter_config.json").exists()
    from safetensors.torch import load_file

    names = set(load_file(str(out / "model.safetensors")))
    assert names and not any("lora" in n for n in names)


def test_bad_config_raises(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        preference.main(PreferenceConfig(from_checkpoint=str(tmp_path / "missing"), data="d", out="o"))
    with pytest.raises(ValueError, match="loss_type must be one of sigmoid, ipo"):
        preference.main(PreferenceConfig(from_checkpoint=str(tmp_path), data="d", out="o", loss_type="hinge"))


# ---- Llama 3's special-token masking ------------------------------------------------------------

def test_mask_special_zeroes_special_ids_by_hand():
    ids = torch.tensor([[5, 9, 3, 0], [5, 3, 7, 1]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 1]])
    out = preference.mask_special(mask, ids, special_ids=[3, 0, 1])
    # row 0: id 3 at 2 -> 0 (pad 0 was already 0); row 1: id 3 at 1 -> 0, id 1 at 3 -> 0, id 7 stays
    assert out.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]
    assert mask.tolist() == [[0, 1, 1, 0], [0, 1, 1, 1]]  # the input is not changed
    assert preference.mask_special(mask, ids, special_ids=[]).tolist() == mask.tolist()


def _collated(tiny_lm, tiny_tokenizer, tmp_path, masked):
    pairs = preference.preference_pairs(pref_rows(4), min_level=0)
    cfg = PreferenceConfig(max_steps=1, batch_size=2, mask_special_tokens=masked)
    trainer = preference.build_trainer(tiny_lm, tiny_tokenizer, pairs, cfg, tmp_path / f"work-{masked}")
    return trainer.data_collator([trainer.train_dataset[i] for i in range(4)])


def test_collator_given_to_dpo_trainer_masks_the_end_of_turn_token(tiny_lm, tiny_tokenizer, tmp_path):
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    default = _collated(tiny_lm, tiny_tokenizer, tmp_path, masked=False)
    masked = _collated(tiny_lm, tiny_tokenizer, tmp_path, masked=True)
    end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert torch.equal(default["input_ids"], masked["input_ids"])
    assert torch.equal(default["attention_mask"], masked["attention_mask"])
    at_end = default["input_ids"] == end
    # every response ends its turn with <|im_end|>: TRL's default counts it, in each of the 8 sequences
    assert int((default["completion_mask"].bool() & at_end).sum(1).min()) >= 1
    assert int(masked["completion_mask"][at_end].sum()) == 0
    special = torch.isin(default["input_ids"], torch.tensor(tiny_tokenizer.all_special_ids))
    assert torch.equal(masked["completion_mask"], default["completion_mask"] * ~special)
    assert int(masked["completion_mask"].sum(1).min()) >= 1  # the answer digits still count
    trainer = preference.build_trainer(tiny_lm, tiny_tokenizer, preference.preference_pairs(pref_rows(2), 0),
                                       PreferenceConfig(max_steps=1), tmp_path / "plain")
    assert isinstance(trainer.data_collator, DataCollatorForPreference)  # off: TRL's own collator, unwrapped


def _chosen_token_logps(model, example, skip_ids):
    """Log-probs of the chosen completion's tokens under `model`, by hand, leaving out the ids in `skip_ids`."""
    ids = torch.tensor([example["prompt_ids"] + example["chosen_ids"]])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    start = len(example["prompt_ids"])
    return [logps[j - 1, ids[0, j]] for j in range(start, ids.size(1)) if int(ids[0, j]) not in skip_ids]


def test_first_masked_step_logs_the_hand_computed_logps_and_nll(tiny_lm, tiny_tokenizer, tmp_path):
    """Step 1 (policy == reference): DPO's loss is log 2, so loss = log 2 + 0.2 * NLL over the unmasked tokens."""
    pairs = preference.preference_pairs(pref_rows(2, level=3), min_level=0)
    cfg = PreferenceConfig(max_steps=1, batch_size=2, nll_weight=0.2, mask_special_tokens=True, logging_steps=1)
    trainer = preference.build_trainer(tiny_lm, tiny_tokenizer, pairs, cfg, tmp_path / "work")
    start = trainer.ref_model  # a frozen copy of the start
    special = set(tiny_tokenizer.all_special_ids)
    kept = [_chosen_token_logps(start, ex, special) for ex in trainer.train_dataset]
    every = [_chosen_token_logps(start, ex, set()) for ex in trainer.train_dataset]
    assert all(len(e) == len(k) + 1 for e, k in zip(every, kept))  # exactly one special token: <|im_end|>
    trainer.train()
    logged = trainer.state.log_history[0]
    expected_logps = sum(float(sum(k)) for k in kept) / 2
    unmasked_logps = sum(float(sum(e)) for e in every) / 2
    assert logged["logps/chosen"] == pytest.approx(expected_logps, rel=1e-4)
    assert abs(unmasked_logps - expected_logps) > 1e-2  # would fail if <|im_end|> still counted
    nll = -float(sum(sum(k) for k in kept)) / sum(len(k) for k in kept)  # TRL: mean over the batch's kept tokens
    assert logged["loss"] == pytest.approx(math.log(2) + 0.2 * nll, rel=1e-4)


def test_masked_dpo_trains_and_records_it(tiny_base_dir, tmp_path):
    write_dataset(pref_rows(4, level=3), "preference", tmp_path / "prefs", producer="test")
    cfg = PreferenceConfig(from_checkpoint=str(tiny_base_dir), data=str(tmp_path / "prefs"),
                           out=str(tmp_path / "members" / "dpo-masked"), mask_special_tokens=True, nll_weight=0.2,
                           max_steps=2, batch_size=2, learning_rate=1e-2, max_length=64)
    out = preference.main(cfg)
    meta = read_meta(out)
    assert meta["mask_special_tokens"] is True and meta["train"]["steps"] == 2
    assert math.isfinite(meta["train"]["first_loss"]) and meta["train"]["last_loss"] != meta["train"]["first_loss"]
