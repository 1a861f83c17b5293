"""The round benchmark reads a kept run only when the run was made with the command's settings."""
import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from benchmarks.iterate_round3 import check_reuse  # noqa: E402


def _kept_run(root: Path, overrides: list[str], drop: str | None = None) -> Path:
    from afm_align.config import config_dict
    from committee.round_config import load

    config = config_dict(load("tiny", overrides=["run=seed0", *overrides]))
    if drop:
        del config[drop]
    (root / "round_1").mkdir(parents=True)
    (root / "round_1" / "manifest.json").write_text(json.dumps({"config": config, "stages": {}}))
    return root


def test_a_kept_run_is_read_only_with_the_commands_settings(tmp_path):
    args = Namespace(round=1, members=None, overrides=[])
    plain = _kept_run(tmp_path / "plain", ["seed=0"])
    check_reuse(plain, 0, args)
    with pytest.raises(SystemExit, match="seed"):
        check_reuse(plain, 1, args)
    with pytest.raises(SystemExit, match="recipes"):
        check_reuse(plain, 0, Namespace(round=1, members=None, overrides=["recipes.rm=[epochs=3]"]))
    # without a base to read, the init override lists are compared as they are
    with pytest.raises(SystemExit, match="recipes"):
        check_reuse(plain, 0, Namespace(round=1, members=None, overrides=["recipes.init=[steps=4500]"]))
    # with one, the base's settings are check_base's to compare (with the base itself), not the override lists'
    (plain / "base").mkdir()
    (plain / "base" / "config.yaml").write_text("seed: 0\n")
    check_reuse(plain, 0, Namespace(round=1, members=None, overrides=["recipes.init=[steps=4500]"]))
    made_with = _kept_run(tmp_path / "muon", ["seed=0", "recipes.init=[optimizer=muon]"])
    with pytest.raises(SystemExit, match="recipes"):
        check_reuse(made_with, 0, args)
    (made_with / "base").mkdir()
    (made_with / "base" / "config.yaml").write_text("seed: 0\n")
    check_reuse(made_with, 0, args)
    with pytest.raises(SystemExit, match="recipes"):
        check_reuse(made_with, 0, Namespace(round=1, members=None, overrides=["recipes.rm=[epochs=3]"]))
    with pytest.raises(SystemExit, match="members"):
        check_reuse(plain, 0, Namespace(round=1, members="dpo", overrides=[]))
    check_reuse(_kept_run(tmp_path / "dpo", ["seed=0", "members=[dpo]"]), 0,
                Namespace(round=1, members="dpo", overrides=[]))
    check_reuse(_kept_run(tmp_path / "old", ["seed=0"], drop="curriculum"), 0, args)  # predates the key


def test_a_resumed_seed_reports_its_whole_runs_stage_minutes_not_the_rest_it_ran(tmp_path, monkeypatch):
    import benchmarks.iterate_round3 as bench

    class Done:
        returncode, stdout = 0, ""

    top = {"member": "r1-sft", "test_mean": 0.3, "r0_sft_test": {"mean": 0.2}, "test_gain": 0.1,
           "test_gain_ci95": [0.05, 0.15]}
    monkeypatch.setattr(bench, "matmul_gflops", lambda: 100.0)
    monkeypatch.setattr(bench, "outcome", lambda run, rounds: dict(top))
    monkeypatch.setattr(bench.subprocess, "run", lambda *a, **k: Done())
    args, runs = Namespace(round=1, members=None, overrides=[]), tmp_path / "runs"
    for n, stages in enumerate([{"base": (300.0, 900.0)}, {"sft": (600.0, 1200.0), "eval": (120.0, 800.0)}]):
        (runs / "seed0" / f"round_{n}").mkdir(parents=True)
        (runs / "seed0" / f"round_{n}" / "manifest.json").write_text(json.dumps({"stages": {
            name: {"status": "done", "seconds": s, "peak_rss_mb": mb} for name, (s, mb) in stages.items()}}))
    resumed = bench.run_seed(0, args, runs)
    assert resumed["resumed"] and resumed["minutes"] == 17.0 and resumed["minutes_this_call"] < 1
    assert resumed["peak_gb"] == round(1200 / 1024, 2) and "stage wall times" in resumed["timing_source"]
    monkeypatch.setattr(bench, "stage_seconds", lambda run, rounds: {})  # the fake iterate writes no manifests
    fresh = bench.run_seed(1, args, runs)  # no folder yet: the call's own wall clock
    assert "resumed" not in fresh and fresh["minutes"] < 1


def test_a_kept_runs_base_must_be_what_this_commands_init_builds(tmp_path):
    import yaml
    from afm_align.config import config_dict
    from afm_align.init_base import load as load_init
    from benchmarks.iterate_round3 import check_base

    args, run = Namespace(round=1, members=None, overrides=[]), tmp_path / "seed0"
    check_base(run, 0, args)  # no base yet: nothing to check
    (run / "base").mkdir(parents=True)
    made = config_dict(load_init("tiny", None, ["seed=0", "threads=2", f"run={run}"]))
    (run / "base" / "config.yaml").write_text(yaml.safe_dump(made))
    check_base(run, 0, args)
    check_base(run, 0, Namespace(round=1, members=None, overrides=["recipes.init=[optimizer=muon]"]))  # the same
    with pytest.raises(SystemExit, match="optimizer='muon', this command's init builds 'adamw'"):
        check_base(run, 0, Namespace(round=1, members=None, overrides=["recipes.init=[optimizer=adamw]"]))
    old = {k: v for k, v in made.items() if k not in ("optimizer", "family_counts")}  # a base from before the keys
    (run / "base" / "config.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(SystemExit, match="family_counts={}, this command's init builds {'tool': 6000}"):
        check_base(run, 0, args)
    with pytest.raises(SystemExit, match="seed=0"):
        (run / "base" / "config.yaml").write_text(yaml.safe_dump(made))
        check_base(run, 1, args)


def test_the_model_running_benchmarks_pin_their_threads_and_print_the_peak(monkeypatch, capsys):
    import os

    import torch

    import benchmarks.iterate_round3 as bench

    monkeypatch.setattr(bench, "matmul_gflops", lambda: 123.4)
    monkeypatch.setenv("AFM_ALIGN_THREADS", "16")
    before = torch.get_num_threads()
    try:
        assert bench.pin_threads_and_read_peak() == 123.4
        assert torch.get_num_threads() == min(2, os.cpu_count() or 1)
        assert os.environ["AFM_ALIGN_THREADS"] == str(torch.get_num_threads())
        assert "2-thread fp32 matmul peak 123.4 GFLOP/s" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)
