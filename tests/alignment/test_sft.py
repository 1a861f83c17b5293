"""SFT recipe on the tiny LM: completion-only labels, loss falls, checkpoint selection, the member loads."""
import json

import pytest
import torch

from afm_align.store import write_dataset
from alignment import sft
from alignment.members import read_meta, read_metrics
from alignment.sft import SFTRecipeConfig


def sft_rows(n=8):
    rows = []
    for i in range(n):
        a, b = i + 1, 2 * i + 3
        rows.append({"id": f"s{i}", "prompt": [{"role": "user", "content": f"{a} + {b} ="}],
                     "completion": f"{a + b}", "member": "oracle", "round": 0, "score": 1.0})
    return rows


def heldout_prompts(n=3):
    return [{"id": f"h{i}", "prompt": [{"role": "user", "content": f"{i} + 2 ="}], "domain": "math",
             "verifier": json.dumps({"answer": str(i + 2)}), "source": "test", "split": "dev"}
            for i in range(n)]


def small_cfg(tmp_path, base, data, **kw):
    fields = dict(from_checkpoint=str(base), data=str(data), out=str(tmp_path / "members" / "sft"),
                  learning_rate=5e-3, max_steps=6, batch_size=4, num_checkpoints=2, select_prompts=3,
                  best_of_n=2, max_new_tokens=6, gen_batch_size=8, max_length=64)
    fields.update(kw)
    return SFTRecipeConfig(**fields)


def test_labels_cover_completion_tokens_only(tiny_lm, tiny_tokenizer, tmp_path):
    cfg = small_cfg(tmp_path, "unused", "unused", max_steps=1)
    trainer = sft.build_trainer(tiny_lm, tiny_tokenizer, sft_rows(2), cfg, tmp_path / "work")
    dropouts = {m.attention_dropout for m in tiny_lm.modules() if hasattr(m, "attention_dropout")}
    assert dropouts == {0.1}  # AFM's SFT dropout, set on every attention layer
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = labels != -100
    assert trained.any() and not trained.all()
    assert torch.equal(labels[trained], ids[trained])
    # everything up to the generation prompt is masked; the answer, <|im_end|> and the newline are trained
    prompt_ids = tiny_tokenizer.apply_chat_template(sft_rows(2)[0]["prompt"], add_generation_prompt=True,
                                                    tokenize=True, return_dict=True)["input_ids"]
    assert not trained[: len(prompt_ids)].any()
    assert tiny_tokenizer.decode(ids[trained]) == "4<|im_end|>\n"


def test_messages_rows_train_the_last_assistant_turn():
    row = {"id": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": "hello"}]}
    out = sft.to_prompt_completion(row)
    assert [m["role"] for m in out["prompt"]] == ["system", "user"]
    assert out["completion"] == [{"role": "assistant", "content": "hello"}]
    with pytest.raises(ValueError, match="no assistant turn"):
        sft.to_prompt_completion({"id": "x", "messages": [{"role": "user", "content": "hi"}]})


def test_sft_main_writes_a_selected_member(tiny_base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    data = tmp_path / "data" / "sft"
    write_dataset(sft_rows(), "sft", data, producer="test")
    held = tmp_path / "data" / "prompts"
    write_dataset(heldout_prompts(), "prompt", held, producer="test")
    cfg = small_cfg(tmp_path, tiny_base_dir, data, heldout=str(held))
    out = sft.main(cfg)

    meta = read_meta(out)
    assert meta["recipe"] == "sft" and meta["member"] == "sft" and meta["lora_rank"] == 0
    assert meta["train"]["last_loss"] < meta["train"]["first_loss"]
    steps = [c["step"] for c in meta["selection"]["checkpoints"]]
    assert steps == [3, 6] and meta["selection"]["chosen_step"] in steps
    assert all(c["verifier_accuracy"] is not None and c["verified"] == 3 for c in meta["selection"]["checkpoints"])
    assert any(r.get("source") == "selection" for r in read_metrics(out))
    assert (out / "recipe_config.yaml").is_file() and not (out / "work").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers

    member = AutoModelForCausalLM.from_pretrained(out)
    start = AutoModelForCausalLM.from_pretrained(tiny_base_dir)
    changed = [n for n, p in member.named_parameters() if not torch.equal(p, dict(start.named_parameters())[n])]
    assert changed
    assert member.config.attention_dropout == start.config.attention_dropout  # dropout was for training only


def test_select_checkpoint_normalises_and_breaks_ties_late():
    scores = [{"verifier_accuracy": 0.5, "rm_best_of_n": 2.0},
              {"verifier_accuracy": 1.0, "rm_best_of_n": -1.0},
              {"verifier_accuracy": 0.75, "rm_best_of_n": 1.5}]
    # normalised: acc 0, 1, .5; rm 1, 0, 5/6 -> sums 1, 1, 4/3
    assert sft.select_checkpoint(scores) == 2
    assert scores[2]["selection_score"] == pytest.approx(0.5 + 2.5 / 3)
    tie = [{"verifier_accuracy": 1.0, "rm_best_of_n": None}, {"verifier_accuracy": 1.0, "rm_best_of_n": None}]
    assert sft.select_checkpoint(tie) == 1


def test_rm_best_of_n_takes_the_max_per_prompt(tiny_lm, tiny_tokenizer, tmp_path):
    cfg = small_cfg(tmp_path, "unused", "unused", best_of_n=3)

    def length_rm(prompts, completions, **columns):
        return [float(len(c)) for c in completions]

    from afm_align.generation import generate
    rows = heldout_prompts(2)
    result = sft.evaluate_policy(tiny_lm, tiny_tokenizer, rows, cfg, scorer=length_rm)
    samples = generate(tiny_lm, tiny_tokenizer, [r["prompt"] for r in rows], k=3, max_new_tokens=6,
                       temperature=1.0, top_p=1.0, batch_size=8, seed=0)
    assert result["rm_best_of_n"] == pytest.approx(sum(max(len(c) for c in s) for s in samples) / 2)


def test_missing_checkpoint_and_bad_lora_rank_raise(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        sft.main(small_cfg(tmp_path, tmp_path / "nope", tmp_path / "data"))
    with pytest.raises(ValueError, match="lora_rank"):
        sft.main(small_cfg(tmp_path, tmp_path, tmp_path / "data", lora_rank=4))


def test_lora_sft_selects_among_adapter_checkpoints_and_saves_a_plain_model(tiny_base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    write_dataset(sft_rows(4), "sft", tmp_path / "sft", producer="test")
    write_dataset(heldout_prompts(2), "prompt", tmp_path / "prompts", producer="test")
    cfg = small_cfg(tmp_path, tiny_base_dir, tmp_path / "sft", heldout=str(tmp_path / "prompts"), lora_rank=8,
                    max_steps=2, num_checkpoints=2, learning_rate=5e-2)
    out = sft.main(cfg)
    meta = read_meta(out)
    assert meta["lora_rank"] == 8 and [c["step"] for c in meta["selection"]["checkpoints"]] == [1, 2]
    assert not (out / "adapter_config.json").exists()
    member = AutoModelForCausalLM.from_pretrained(out)
    start = dict(AutoModelForCausalLM.from_pretrained(tiny_base_dir).named_parameters())
    assert not any("lora" in n for n, _ in member.named_parameters())
    assert any(not torch.equal(p, start[n]) for n, p in member.named_parameters())


def test_tiny_presets_load():
    from afm_align.config import load_config
    from alignment.rejection_sampling import RSConfig

    cfg = load_config(SFTRecipeConfig, preset="tiny", recipe="sft")
    assert cfg.lr_scheduler == "constant" and cfg.dropout == 0.1
    rs_cfg = load_config(RSConfig, preset="tiny", recipe="rs", overrides=["sft.lora_rank=16", "min_score=null"])
    assert rs_cfg.sft.dropout == 0.1 and rs_cfg.sft.lora_rank == 16 and rs_cfg.min_score is None
