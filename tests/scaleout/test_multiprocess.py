"""Scale-out: every training recipe runs unchanged under `accelerate launch` with 2 CPU processes (DDP, gloo).

For SFT, DPO and the RM, a run with global batch B in one process (per-device B) and a run with 2 processes
(per-device B/2, `configs/accelerate/ddp_cpu.yaml`) see the same rows at every step: the Trainer's sampler is
seeded (`seed`, `data_seed`), and under DDP accelerate hands out consecutive per-device batches of the same
sampler order to the ranks in turn, so the global batch is the concatenation of the per-rank slices. Dropout is
off (SFT sets `dropout=0`; TRL turns it off for DPO; the RM backbone has none). The logged losses are therefore
the same numbers computed in a different order: per-rank means averaged across ranks (DPO, RM: equal pairs per
rank), or token sums over the global token count (SFT: transformers' `average_tokens_across_devices`), and
gradients all-reduced by gloo instead of one backward pass. The tolerance (rel 1e-4, abs 1e-5) is what fp32
re-association can move a loss in three Adam steps; measured differences are at most 8e-7.

MDLOO cannot be compared number for number: each process samples its own completions with its own generator
state, so the 2-process run trains on different samples than the 1-process run. What is checked instead is what
holds for any sample set: the run completes, the main process alone publishes one member with one metrics log
(4 logged steps, not 8), every logged number is finite, rewards vary within groups (the RM of the RM test is
the reward), and on the first inner step of each sampled batch pi_theta equals pi_k, so the KL to pi_k is 0
and the loss is -mean(A) = 0 (leave-one-out advantages sum to zero within each group of K, and each group lives
whole on one process).

The launches are slow (each process imports torch and TRL): the file takes about a minute on 2 cores.
Run: `python -m pytest tests/scaleout/test_multiprocess.py`.
"""
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from afm_align.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE = ROOT / "configs" / "accelerate"
REL, ABS = 1e-4, 1e-5
BATCH = 4  # global batch: 4 rows in one process, 2 rows x 2 processes


def launch(args: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file ddp_cpu.yaml -m afm_align.cli ARGS` on CPU; fails the test on error."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "AFM_ALIGN_QUIET": "1", "OMP_NUM_THREADS": "1",
           "AFM_ALIGN_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / "ddp_cpu.yaml"),
           "--num_processes", str(processes), "-m", "afm_align.cli", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"launch failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def trainer_losses(member: Path) -> list[float]:
    records = [json.loads(line) for line in (member / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r.get("source") == "trainer" and "loss" in r]


def only_child(parent: Path) -> Path:
    """The one entry of `parent`: no staging or trash folder of another process may be left beside it."""
    entries = sorted(parent.iterdir())
    assert len(entries) == 1, f"expected one member folder, found {[e.name for e in entries]}"
    return entries[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_tokenizer):
    """A tiny base model and the sft / prompt / preference datasets, shared by the launches."""
    from afm_align.base_model import ModelShape, build_model
    from synth.builders import build

    root = tmp_path_factory.mktemp("scaleout")
    shape = ModelShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                       max_positions=256)
    build_model(tiny_tokenizer, shape, seed=0).save_pretrained(root / "base")
    tiny_tokenizer.save_pretrained(root / "base")
    build("math", 24, seed=0, out=root / "sft", kind="sft", difficulty=0)
    build("math", 24, seed=1, out=root / "prompts", difficulty=0)
    build("prefs", 40, seed=0, out=root / "prefs")
    return root


# ---- cheap checks (no launch) -----------------------------------------------------------------------

@pytest.mark.parametrize("name, kind, processes", [
    ("ddp_cpu", "MULTI_GPU", 2),  # torchrun launcher; ACCELERATE_USE_CPU=true makes it CPU + gloo
    ("ddp_gpu", "MULTI_GPU", 8), ("fsdp", "FSDP", 8), ("deepspeed_zero2", "DEEPSPEED", 8),
])
def test_accelerate_configs_load(name, kind, processes):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ACCELERATE / f"{name}.yaml"))
    assert cfg.distributed_type.value == kind and cfg.num_processes == processes
    assert cfg.mixed_precision == "no"  # precision is the recipe config's bf16, never the launcher's


@dataclass
class Knobs:
    """A stand-in recipe config (save_resolved needs a dataclass)."""

    lr: float = 0.1


def test_only_the_main_process_writes_a_member(tmp_path, tiny_lm, tiny_tokenizer, monkeypatch):
    """A non-main process trains but neither writes nor publishes, and leaves nothing behind."""
    from afm_align import member_io
    from alignment import members

    monkeypatch.setattr(members, "is_main_process", lambda: False)
    monkeypatch.setattr(member_io, "is_main_process", lambda: False)
    out = tmp_path / "members" / "m"
    with members.member_staging(out) as stage:
        members.write_member(stage, tiny_lm, tiny_tokenizer, meta={"member": "m"}, cfg=Knobs())
        assert not any(stage.iterdir())
    assert list((tmp_path / "members").iterdir()) == []
    monkeypatch.setattr(members, "is_main_process", lambda: True)
    monkeypatch.setattr(member_io, "is_main_process", lambda: True)
    with members.member_staging(out) as stage:
        members.write_member(stage, tiny_lm, tiny_tokenizer, meta={"member": "m"}, cfg=Knobs())
    assert members.is_member(out) and only_child(tmp_path / "members") == out


# ---- 2 processes against 1 --------------------------------------------------------------------------

@pytest.mark.slow
def test_sft_two_processes_match_one(setup, tmp_path):
    """Also runs checkpoint selection on held-out prompts: the trainer saves checkpoints in the main process only,
    so only the main process selects (another process would find no checkpoints in its own staging folder)."""
    common = ["--from", str(setup / "base"), "--data", str(setup / "sft"), "max_steps=3", "dropout=0",
              "logging_steps=1", "num_checkpoints=1", "seed=0", f"heldout={setup / 'prompts'}", "select_prompts=2",
              "max_new_tokens=4"]
    assert cli_main(["train", "sft", "--out", str(tmp_path / "one" / "sft"), *common, f"batch_size={BATCH}"]) == 0
    launch(["train", "sft", "--out", str(tmp_path / "two" / "sft"), *common, f"batch_size={BATCH // 2}"])
    one, two = trainer_losses(tmp_path / "one" / "sft"), trainer_losses(only_child(tmp_path / "two"))
    assert len(one) == len(two) == 3
    assert two == pytest.approx(one, rel=REL, abs=ABS)
    picked = [json.loads((tmp_path / run / "sft" / "meta.json").read_text())["selection"] for run in ("one", "two")]
    assert [c["step"] for c in picked[1]["checkpoints"]] == [c["step"] for c in picked[0]["checkpoints"]] != []
    assert picked[1]["chosen_step"] == picked[0]["chosen_step"]


@pytest.mark.slow
def test_dpo_two_processes_match_one(setup, tmp_path):
    common = ["--from", str(setup / "base"), "--data", str(setup / "prefs"), "max_steps=3", "min_level=0",
              "logging_steps=1", "learning_rate=1e-3", "seed=0"]
    assert cli_main(["train", "dpo", "--out", str(tmp_path / "one" / "dpo"), *common, f"batch_size={BATCH}"]) == 0
    launch(["train", "dpo", "--out", str(tmp_path / "two" / "dpo"), *common, f"batch_size={BATCH // 2}"])
    one, two = trainer_losses(tmp_path / "one" / "dpo"), trainer_losses(only_child(tmp_path / "two"))
    assert len(one) == len(two) == 3 and one[-1] != pytest.approx(one[0], abs=1e-4)  # the policy moved
    assert two == pytest.approx(one, rel=REL, abs=ABS)


@pytest.fixture(scope="module")
def rm_runs(setup):
    """The RM trained for 3 steps in 1 process (batch 4) and in 2 processes (batch 2 each)."""
    common = ["--data", str(setup / "prefs"), "--base", str(setup / "base"), "max_steps=3", "logging_steps=1",
              "seed=0"]
    one, two = setup / "rm_one" / "rm", setup / "rm_two" / "rm"
    assert cli_main(["rm", "train", "--out", str(one), *common, f"batch_size={BATCH}"]) == 0
    proc = launch(["rm", "train", "--out", str(two), *common, f"batch_size={BATCH // 2}"])
    return one, two, proc.stdout


def final_record(rm_dir: Path) -> dict:
    records = [json.loads(line) for line in (rm_dir / "metrics.jsonl").read_text().splitlines()]
    return next(r for r in records if r.get("event") == "final")


@pytest.mark.slow
def test_rm_two_processes_match_one(rm_runs):
    """Train loss (the mean of the 3 logged step losses, gathered across processes) and the held-out numbers
    computed with the final weights agree; only the main process published and printed."""
    one, two, stdout = rm_runs
    assert only_child(two.parent) == two and stdout.count("rm train: saved") == 1
    assert (two / "model.safetensors").is_file()  # the weights live in the main process's staging folder only
    a, b = final_record(one), final_record(two)
    assert a["train_steps"] == b["train_steps"] == 3
    for key in ("train_loss", "ece", "length_correlation"):
        assert b[key] == pytest.approx(a[key], rel=REL, abs=ABS), key
    assert b["pairwise_accuracy"] == a["pairwise_accuracy"]


@pytest.mark.slow
def test_mdloo_two_processes_complete_with_one_member(setup, rm_runs, tmp_path):
    _, rm_dir, _ = rm_runs
    launch(["train", "mdloo", "--from", str(setup / "base"), "--data", str(setup / "prompts"),
            "--out", str(tmp_path / "two" / "mdloo"), "--rm", str(rm_dir), "verifier_weight=0", "steps=2",
            "num_iterations=2", "prompts_per_step=2", "k=4", "max_new_tokens=8", "learning_rate=0.01", "seed=0"])
    member = only_child(tmp_path / "two")
    meta = json.loads((member / "meta.json").read_text())
    assert meta["recipe"] == "mdloo" and (member / "config.json").is_file()
    records = [json.loads(line) for line in (member / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r.get("source") == "trainer" and "loss" in r]
    assert len(steps) == 4  # 2 outer x 2 inner steps, logged once (by the main process)
    for r in steps:
        assert all(math.isfinite(r[k]) for k in ("loss", "kl_old", "entropy", "grad_norm"))
    sampled = [r for r in steps if "reward" in r]
    assert len(sampled) == 2 and all(math.isfinite(r["reward"]) and r["reward_std"] > 0 for r in sampled)
    first, second = steps[0::2], steps[1::2]
    assert all(r["kl_old"] == pytest.approx(0.0, abs=1e-6) and r["loss"] == pytest.approx(0.0, abs=1e-5)
               for r in first)
    assert all(r["kl_old"] > 0 for r in second)
