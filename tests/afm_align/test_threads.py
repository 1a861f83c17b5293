"""Issue 17, finding 16: a thread count left to us (`threads: 0`) follows the cores actually free, and `init`
records the count it used. No timing is asserted: the logic is tested on synthetic /proc/stat samples."""
import json
import os

import pytest
import yaml

from afm_align import member_io
from afm_align.member_io import available_cores, busy_cores, free_cores, resolve_threads


def test_available_cores_are_this_process_s_cores():
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert available_cores() <= len(os.sched_getaffinity(0))


def test_the_resolver_keeps_a_fixed_count_and_resolves_auto_within_the_cores():
    assert resolve_threads(3) == 3 and resolve_threads(1) == 1
    assert 1 <= resolve_threads(0) <= available_cores()
    assert 1 <= free_cores(0.05) <= available_cores()


def fake_proc(monkeypatch, busy_per_cpu: dict[int, float], allowed=(0, 1), own_seconds: float = 0.0):
    """/proc/stat as it reads before and after a 1 s window in which each cpu was busy that share."""
    samples = iter([{c: (0, 0) for c in busy_per_cpu},
                    {c: (int(100 * b), 100) for c, b in busy_per_cpu.items()}])
    own = iter([0.0, own_seconds])
    monkeypatch.setattr(member_io, "cpu_times", lambda: next(samples))
    monkeypatch.setattr(member_io, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(member_io.time, "sleep", lambda s: None)
    monkeypatch.setattr(member_io.os, "sched_getaffinity", lambda pid: set(allowed), raising=False)
    monkeypatch.setattr(member_io, "available_cores", lambda: len(allowed))


@pytest.mark.parametrize("busy, expected", [
    ({0: 0.02, 1: 0.03}, 2),  # quiet: both cores
    ({0: 1.0, 1: 0.05}, 1),  # one core busy (the case): one thread
    ({0: 0.3, 1: 0.0}, 1),  # part of one core busy: a second thread would wait on it
    ({0: 1.0, 1: 1.0}, 1),  # everything busy: still one
])
def test_free_cores_subtracts_the_busy_ones(monkeypatch, busy, expected):
    fake_proc(monkeypatch, busy)
    assert free_cores(1.0) == expected


def test_busy_cores_counts_only_our_cpus_and_not_our_own_time(monkeypatch):
    fake_proc(monkeypatch, {0: 0.5, 1: 0.25, 2: 1.0}, allowed=(0, 1), own_seconds=0.25)
    assert busy_cores(1.0) == pytest.approx(0.5)  # 0.5 + 0.25 on cpus 0, 1, less our own 0.25; cpu 2 is not ours


def test_busy_cores_is_zero_without_proc_stat(monkeypatch):
    monkeypatch.setattr(member_io, "cpu_times", lambda: {})
    assert busy_cores(0.01) == 0.0


def test_init_with_auto_threads_records_the_count_it_used(tmp_path):
    from afm_align.init_base import InitConfig, main
    from afm_align.config import load_config
    from afm_align.rundir import RunDir

    cfg = load_config(InitConfig, overrides=[
        f"run={tmp_path / 'run'}", "threads=0", "steps=2", "drill_problems=300", "probes=4", "vocab_size=280",
        "shape.hidden_size=16", "shape.num_layers=1", "shape.num_heads=2", "shape.num_kv_heads=1",
        "shape.intermediate_size=32", "batch_size=4", "seq_len=16", "warmup_steps=1", "heldout_sequences=2"])
    RunDir.named(cfg.run).ensure()
    report = main(cfg)
    base = tmp_path / "run" / "base"
    meta = json.loads((base / "meta.json").read_text())
    saved = yaml.safe_load((base / "config.yaml").read_text())
    assert 1 <= report["threads"] == meta["threads"] == saved["threads"] <= available_cores()


INIT_PROBE = """
import os, sys, types
fake = types.ModuleType("synth.corpus")  # no corpus: the probe only looks at the environment
fake.pretraining_corpus = lambda cfg: ([], None)
import synth
sys.modules["synth.corpus"] = fake
import afm_align.init_base as init_base

def probe(cfg, *rest):
    before = "torch" in sys.modules
    import torch  # loads OpenMP, which reads its wait policy now
    print(os.environ.get("OMP_WAIT_POLICY"), before, torch.get_num_threads() >= 1)
    return {}

init_base.main = probe
from afm_align.cli import main
sys.exit(main(["init", "--run", "probe"]))
"""


@pytest.mark.parametrize("preset, seen", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_init_sets_the_passive_wait_policy_before_torch_loads_unless_the_user_did(preset, seen, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(root), AFM_ALIGN_RUNS=str(tmp_path / "runs"), **({"OMP_WAIT_POLICY": preset} if preset else {}))
    out = subprocess.run([sys.executable, "-c", INIT_PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [seen, "False", "True"]  # set before the first torch import in the process


def test_the_cli_module_and_help_leave_the_wait_policy_alone(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import os, sys\nfrom afm_align.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(root)}, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split()[-1] == "None"
