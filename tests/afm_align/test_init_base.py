"""`afm-align init` on a very small config: it trains, reports, saves, and loads with the Auto classes."""
import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from afm_align.cli import main as cli_main
from afm_align.init_base import InitConfig, heldout_probes, drill_lines

SMALL = ["steps=30", "drill_problems=3000", "family_items=20", "family_counts.tool=20", "math_items=30", "probes=40",
         "vocab_size=300", "shape.hidden_size=32", "shape.num_layers=1", "shape.intermediate_size=64", "batch_size=16",
         "seq_len=48", "warmup_steps=5", "threads=1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("AFM_ALIGN_RUNS", str(runs))
    assert cli_main(["init", "--run", "t", *SMALL]) == 0
    mp.undo()
    return runs / "t"


def test_init_saves_a_loadable_afm_architecture_model(tiny_run):
    base = tiny_run / "base"
    model = AutoModelForCausalLM.from_pretrained(base)
    tok = AutoTokenizer.from_pretrained(base)
    cfg = model.config
    assert cfg.tie_word_embeddings is True
    assert cfg.rope_parameters["rope_theta"] == 500000.0
    assert cfg.num_key_value_heads < cfg.num_attention_heads
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    # digits are single tokens, and the chat template knows all four roles
    assert tok.tokenize("12345")[-5:] == list("12345")
    text = tok.apply_chat_template([{"role": r, "content": "x"} for r in ("system", "user", "assistant", "tool")],
                                   tokenize=False)
    assert all(f"<|im_start|>{r}" in text for r in ("system", "user", "assistant", "tool"))


def test_init_reports_loss_and_probe_accuracy(tiny_run):
    meta = json.loads((tiny_run / "base" / "meta.json").read_text())
    assert 0.0 <= meta["probe_exact_match"] <= 1.0 and meta["probes"] == 40
    assert meta["heldout_lm_loss"] > 0
    losses = [r["loss"] for r in map(json.loads, (tiny_run / "base" / "metrics.jsonl").read_text().splitlines())
              if "loss" in r]
    assert losses[-1] < losses[0]  # pre-training made progress
    assert (tiny_run / "base" / "config.yaml").is_file()
    assert set(meta["copy_score"]) == {"first", "repeat"}  # the in-context copying diagnostic (context_copy)


def test_probes_are_held_out_of_the_drill():
    cfg = InitConfig(drill_problems=20000)
    probes = heldout_probes(200, cfg.seed)
    prompts = {p for p, _ in probes}
    drill = drill_lines(cfg, exclude=prompts)
    assert not any(line.rsplit("= ", 1)[0] + "= " in prompts for line in drill)
    assert all(0 <= abs(int(a)) < 200 for _, a in probes)


def test_base_path_is_used_instead(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "other", "--base", str(tiny_run / "base")]) == 0
    assert json.loads((tmp_path / "other" / "base" / "base.json").read_text())["path"] == str(tiny_run / "base")


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--base", "/no/such/dir"], "no such directory"),
    (["stepz=1"], "unknown config key 'stepz'"),
    (["optimizer=sgd"], "optimizer must be one of adamw, muon (got 'sgd')"),
])
def test_bad_input_is_one_line_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    assert cli_main(["init", "--run", "bad", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad" / "base").exists()


def test_base_dir_that_is_not_a_causal_lm(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_type": "vit"}))
    assert cli_main(["init", "--run", "x", "--base", str(tmp_path / "m")]) == 2
    assert "not a causal LM" in capsys.readouterr().err
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_type": "qwen3"}))  # but no weights
    assert cli_main(["init", "--run", "x", "--base", str(tmp_path / "m")]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_chat_rows_hold_one_conversation_each():
    from afm_align.base_model import train_tokenizer
    from afm_align.init_base import chat_rows

    chats = ["<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n12 + 30 = 42<|im_end|>\n",
             "x " * 200]
    tok = train_tokenizer(chats * 3, 300)
    lengths = [len(t) for t in tok(chats, add_special_tokens=False)["input_ids"]]
    assert lengths[0] < 48 < lengths[1]
    ids, mask = chat_rows(tok, chats, 48, seed=0)
    assert ids.shape == (3, 48)  # the short one whole; the long one as its first and last windows
    padded = [(row, m) for row, m in zip(ids.tolist(), mask.tolist()) if not all(m)]
    assert len(padded) == 1
    row, row_mask = padded[0]
    assert sum(row_mask) == lengths[0]
    assert row[: lengths[0]] == tok(chats[0], add_special_tokens=False)["input_ids"]
    assert all(t == tok.pad_token_id for t in row[lengths[0]:])


def test_length_groups_cut_padding_and_keep_the_loss():
    """Rows sorted into groups, each cut to its longest row: every real token kept, padding dropped, and the
    token-weighted loss the same as on the whole padded batch."""
    import torch

    from afm_align.base_model import ModelShape, build_model, train_tokenizer
    from afm_align.init_base import length_groups, masked_lm_loss

    lengths = [5, 40, 7, 33, 12, 6, 38, 9]
    mask = torch.tensor([[True] * n + [False] * (48 - n) for n in lengths])
    ids = torch.randint(5, 50, (8, 48)).masked_fill(~mask, 0)
    parts = length_groups(ids, mask, groups=4)
    assert len(parts) == 4
    assert sum(int(m.sum()) for _, m in parts) == sum(lengths)
    assert [m.shape[1] for _, m in parts] == [6, 9, 33, 40]  # sorted: (5, 6), (7, 9), (12, 33), (38, 40)
    assert sum(i.numel() for i, _ in parts) < ids.numel() / 2
    tok = train_tokenizer(["a b c d e f g"] * 3, 300)
    model = build_model(tok, ModelShape(hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1,
                                        intermediate_size=32, max_positions=64), seed=0)
    whole = masked_lm_loss(model, [(ids, mask)])
    grouped = masked_lm_loss(model, parts)
    assert torch.allclose(whole, grouped, atol=1e-5)


def test_init_on_a_run_with_a_base_refuses_without_force(tiny_run, monkeypatch, capsys):
    """Issue 20 item 2: a second `init` would have silently pre-trained again and replaced the base."""
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tiny_run.parent))
    (tiny_run / "round_0").mkdir(exist_ok=True)
    before = (tiny_run / "base" / "model.safetensors").stat().st_mtime_ns
    assert cli_main(["init", "--run", "t", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "already has a base and 1 round(s) trained from it; pass --force" in err and len(err.splitlines()) == 1
    assert (tiny_run / "base" / "model.safetensors").stat().st_mtime_ns == before


def test_sigterm_during_init_leaves_no_staging_folder(tmp_path):
    """Issue 20 item 2: `kill` (SIGTERM) unwinds like Ctrl-C: the hidden `.base.tmp-*` folder is removed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "AFM_ALIGN_RUNS": str(tmp_path), "AFM_ALIGN_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "afm_align.cli", "init", "--run", "k", *SMALL[1:], "steps=100000"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "k").glob(".base.tmp-*")):
        time.sleep(0.2)
    assert list((tmp_path / "k").glob(".base.tmp-*")), "init never started pre-training"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated" in err
    assert list((tmp_path / "k").glob(".*")) == [] and not (tmp_path / "k" / "base").exists()


def test_isolated_spaces_give_a_copied_word_the_same_tokens():
    """With isolate_spaces a word has one token sequence after a space, a quote or a line start (what copying a
    tool argument from the question needs); the default tokenizer gives it another first token after a space.
    Both decode back to the exact text."""
    from afm_align.base_model import train_tokenizer

    texts = ['Find flights to Paris please. {"city":"Paris"}', "Paris is big.\nParis again"] * 20

    def pieces(tok, text):
        return [tok.decode([i]) for i in tok(text, add_special_tokens=False)["input_ids"]]

    default, isolated = train_tokenizer(texts, 300), train_tokenizer(texts, 300, isolate_spaces=True)
    word = pieces(isolated, "Paris")
    after_space = pieces(isolated, "to Paris please")
    assert after_space[2:2 + len(word)] == word and after_space[1] == " "
    assert pieces(isolated, '{"city":"Paris"}')[-len(word) - 1:-1] == word
    assert pieces(default, "to Paris")[-1].startswith(" ")  # the default's ' Paris' differs from its 'Paris'
    for tok in (default, isolated):
        for text in texts[:2] + ["a  b\n\n c\t d"]:
            assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_drill_loss_covers_each_lines_answer_after_its_own_mark():
    from afm_align.base_model import train_tokenizer
    from afm_align.init_base import drill_tokens
    from synth.corpus import recall_lines

    recall = recall_lines(3, seed=0)
    lines = ["12 + 30 = 42", *recall]
    tokenizer = train_tokenizer(lines * 20, vocab_size=300)
    ids, mask = drill_tokens(tokenizer, lines)
    answers = [tokenizer.decode([i for i, m in zip(ids, mask) if m])]
    assert answers[0] == "42\n" + "".join(line.rsplit("? ", 1)[1] + "\n" for line in recall)
    assert "= " not in "".join(recall)  # a recall answer never follows the arithmetic drill's mark


def test_drill_share_ramps_from_its_start_to_drill_fraction(monkeypatch):
    import torch

    from afm_align import init_base
    from afm_align.init_base import InitConfig, drill_share, pretrain

    flat = InitConfig(drill_fraction=0.5, batch_size=16, steps=5)
    assert [drill_share(s, flat) for s in range(5)] == [0.5] * 5  # no ramp: the default's constant share
    ramp = InitConfig(drill_fraction=0.5, drill_fraction_start=1.0, drill_ramp_steps=4, batch_size=16, steps=6,
                      warmup_steps=1)
    assert [drill_share(s, ramp) for s in range(6)] == [1.0, 0.875, 0.75, 0.625, 0.5, 0.5]

    rows = []  # drill rows and chat rows of each step, as pretrain draws them

    def fake_loss(model, parts):
        rows.append(tuple(int(ids.shape[0]) for ids, _ in parts))
        return sum(p.sum() for p in model.parameters()) * 0.0

    class Log:
        def log(self, **_):
            pass

    monkeypatch.setattr(init_base, "masked_lm_loss", fake_loss)
    drill = (torch.zeros(10, 8, dtype=torch.long), torch.ones(10, 8, dtype=torch.bool))
    chat = (torch.zeros(10, 12, dtype=torch.long), torch.ones(10, 12, dtype=torch.bool))
    pretrain(torch.nn.Linear(2, 2), drill, chat, ramp, Log(), (4, 10))
    assert rows == [(16,), (14, 2), (12, 4), (10, 6), (8, 8), (8, 8)]
