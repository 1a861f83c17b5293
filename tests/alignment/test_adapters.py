"""The adapter recipe: a LoRA adapter on a frozen base (recovery: corpus then SFT; task: from a recovery
adapter), its base fingerprint, and serving several adapters over one base with per-request switching."""
import json
import shutil

import pytest
import torch

from afm_align.adapter_io import base_fingerprint, check_adapter_base, load_adapted, load_any_base
from afm_align.cli import main as cli_main
from afm_align.errors import UserError
from alignment.adapters import AdapterConfig, main as train_adapter, next_token_loss
from alignment.adapter_serving import AdapterServer, memory_report, parse_adapters


def adapter(base, data, out, **fields):
    cfg = AdapterConfig(from_checkpoint=str(base), data=str(data / "sft"), corpus=str(data / "sft"), out=str(out),
                        lora_rank=8, corpus_steps=12, sft_steps=12, batch_size=8, learning_rate=1e-2, logging_steps=4)
    for key, value in fields.items():
        setattr(cfg, key, value)
    return train_adapter(cfg)


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_an_adapter_lowers_the_loss_and_leaves_the_base_untouched(tiny_base_dir, recipe_data, tmp_path):
    before = weights(tiny_base_dir)
    meta = adapter(tiny_base_dir, recipe_data, tmp_path / "ara")
    assert meta["recipe"] == "adapter" and meta["lora_rank"] == 8
    assert meta["base_fingerprint"] == base_fingerprint(tiny_base_dir)
    assert meta["train"]["corpus"]["last_loss"] < meta["train"]["corpus"]["first_loss"]
    assert meta["adapter_bytes_16bit"] == 2 * meta["trainable_parameters"] > 0
    after = weights(tiny_base_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "ara" / "adapter_model.safetensors").is_file()
    base, tok = load_any_base(tiny_base_dir)
    adapted, _ = load_adapted(tiny_base_dir, {"ara": tmp_path / "ara"})
    ids = tok("1 + 2 = 3", return_tensors="pt").input_ids
    assert not torch.allclose(base(ids).logits, adapted(ids).logits)
    log = [json.loads(line) for line in (tmp_path / "ara" / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["corpus"] * 3 + ["sft"] * 3


def test_a_task_adapter_starts_from_the_recovery_adapter(tiny_base_dir, recipe_data, tmp_path):
    adapter(tiny_base_dir, recipe_data, tmp_path / "ara")
    task = adapter(tiny_base_dir, recipe_data, tmp_path / "task", corpus_steps=0, sft_steps=1, learning_rate=0.0,
                   init_adapter=str(tmp_path / "ara"), task="math")
    assert task["init_adapter"] == str(tmp_path / "ara") and task["task"] == "math"
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / p / "adapter_model.safetensors")) for p in ("ara", "task"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # lr 0: exactly the recovery weights


def test_the_teacher_target_is_the_kl_to_its_distribution():
    logits = torch.randn(2, 5, 7)
    ids = torch.randint(0, 7, (2, 5))
    mask = torch.ones(2, 5)
    assert float(next_token_loss(logits, ids, mask, teacher_logits=logits.clone())) == pytest.approx(0.0, abs=1e-6)
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), ids[:, 1:].reshape(-1))
    assert float(next_token_loss(logits, ids, mask)) == pytest.approx(float(ce), rel=1e-5)


def test_an_adapter_on_another_base_is_refused(tiny_base_dir, recipe_data, tmp_path):
    adapter(tiny_base_dir, recipe_data, tmp_path / "ara")
    other = tmp_path / "other"
    shutil.copytree(tiny_base_dir, other)
    model, tok = load_any_base(other)
    with torch.no_grad():
        model.model.norm.weight.add_(0.5)
    model.save_pretrained(other)
    with pytest.raises(UserError, match="was trained on base"):
        check_adapter_base(tmp_path / "ara", other)
    assert cli_main(["serve", "--base", str(other), "--adapter", f"a={tmp_path / 'ara'}"]) == 2


@pytest.mark.parametrize("fields, message", [
    ({"lora_rank": 0}, "lora_rank must be a positive integer"),
    ({"corpus_steps": 0, "sft_steps": 0}, "not both 0"),
    ({"from_checkpoint": "/no/such/base"}, "no such base directory"),
])
def test_bad_adapter_input_is_one_line(fields, message, tiny_base_dir, recipe_data, tmp_path):
    with pytest.raises(UserError, match=message):
        adapter(fields.pop("from_checkpoint", tiny_base_dir), recipe_data, tmp_path / "a", **fields)
    assert not (tmp_path / "a").exists()


def test_rank_zero_from_the_command_line_is_exit_2(tiny_base_dir, recipe_data, tmp_path, capsys):
    code = cli_main(["train", "adapter", "--from", str(tiny_base_dir), "--data", str(recipe_data / "sft"),
                     "--out", str(tmp_path / "a"), "lora_rank=0", "corpus_steps=0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "lora_rank" in err


def test_the_server_switches_adapters_per_request_and_loses_none(tiny_base_dir, recipe_data, tmp_path):
    adapter(tiny_base_dir, recipe_data, tmp_path / "a1", seed=1)
    adapter(tiny_base_dir, recipe_data, tmp_path / "a2", seed=2, learning_rate=3e-2)
    adapters = {"one": tmp_path / "a1", "two": tmp_path / "a2"}
    server = AdapterServer(tiny_base_dir, adapters, max_new_tokens=6)
    prompts = [[{"role": "user", "content": f"{i} + {i} ="}] for i in range(3)]
    stream = [{"id": i, "adapter": name, "messages": prompts[i % 3]}
              for i, name in enumerate(["one", "two", "none", "two", "one", "nope", "none"])]
    responses = list(server.serve(stream))
    assert [r["id"] for r in responses] == list(range(7))  # one response per request, in order
    assert "unknown adapter 'nope'" in responses[5]["error"]
    assert all("completion" in r for i, r in enumerate(responses) if i != 5)
    assert len([s for s in server.switches if s > 0]) == 6
    for request, response in zip(stream, responses):
        if request["adapter"] == "nope":
            continue
        alone = AdapterServer(tiny_base_dir, {k: v for k, v in adapters.items() if k == request["adapter"]} or
                              {"one": adapters["one"]}, max_new_tokens=6)
        assert alone.answer(request)["completion"] == response["completion"]
    report = memory_report(tiny_base_dir, adapters)
    assert report["shared_bytes"] < report["merged_16bit_bytes"] * 2 and report["adapters"] == 2


def test_serve_reads_json_lines_and_answers_each(tiny_base_dir, recipe_data, tmp_path, capsys):
    adapter(tiny_base_dir, recipe_data, tmp_path / "a1")
    requests = tmp_path / "req.jsonl"
    requests.write_text('{"id": 1, "adapter": "a", "prompt": "1 + 1 ="}\nnot json\n{"id": 3, "prompt": "2 + 2 ="}\n')
    assert cli_main(["serve", "--base", str(tiny_base_dir), "--adapter", f"a={tmp_path / 'a1'}",
                     "--requests", str(requests), "--max-new-tokens", "4"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in out] == [1, "line 2", 3] and "error" in out[1] and out[2]["adapter"] == "none"


@pytest.mark.parametrize("items, message", [([], "at least one"), (["a"], "NAME=DIR"), (["a=x", "a=y"], "twice")])
def test_bad_adapter_flags_are_one_line(items, message):
    with pytest.raises(UserError, match=message):
        parse_adapters(items)
