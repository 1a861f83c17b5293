"""The base-budget benchmark: its settings are valid init overrides, a kept run is reused only when its base was
built with the setting's values, and a finished round 0 is read into the dev figures it reports and plots."""
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.base_budget import (ROUND0, SETTINGS, check_run_matches, overrides_of, plot, read_setting,  # noqa: E402
                                    round0_done)

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_a_valid_init_config():
    from afm_align import init_base

    steps = {name: init_base.load("tiny", overrides=init).steps for name, init in SETTINGS.items()}
    assert steps["whole-3x"] == 3 * steps["whole"] == 3 * steps["default"]
    assert init_base.load("tiny", overrides=SETTINGS["whole"]).chat_seq_len > init_base.load("tiny").chat_seq_len
    assert overrides_of(SETTINGS["whole-2x"], "w", 1)[-1] == "recipes.init=[chat_seq_len=384,chat_groups=4,steps=3000]"
    assert overrides_of([], "d", 0) == ["run=d", "seed=0"]


def test_the_round_0_snippet_names_what_exists():
    import committee.round_config
    import committee.rounds
    import committee.run_checks

    compile(ROUND0, "ROUND0", "exec")
    for module, name in ((committee.round_config, "check_recipe_keys"), (committee.round_config, "load"),
                         (committee.rounds, "run_round"), (committee.run_checks, "check_run")):
        assert f"import {name}" in ROUND0 or f", {name}" in ROUND0
        assert callable(getattr(module, name))


def _finished_run(root: Path, base_config: dict, status: str = "done", seed: int = 0) -> Path:
    (root / "base").mkdir(parents=True)
    (root / "base" / "config.yaml").write_text(yaml.safe_dump(base_config))
    (root / "base" / "meta.json").write_text(json.dumps(
        {"train_seconds": 300.0, "threads": 2, "heldout_lm_loss": 0.35, "probe_exact_match": 0.95}))
    (root / "round_0" / "eval").mkdir(parents=True)
    from afm_align.config import config_dict
    from committee.round_config import load

    config = config_dict(load("tiny", overrides=[f"seed={seed}"]))
    (root / "round_0" / "manifest.json").write_text(json.dumps({"config": config,
                                                                "stages": {"eval": {"status": status}}}))
    domain = {"accuracy": 0.5, "ci95": [0.4, 0.6], "n": 140, "problems": 140}
    board = [{"member": "r1-x", "dev": {}},
             {"member": "r0-sft", "dev": {"mean": 0.3, "math": 0.5, "general": 0.0}, "dev_ci95": [0.28, 0.32],
              "dev_domains": {"math": domain, "general": {**domain, "accuracy": 0.0, "ci95": [0.0, 0.03]}},
              "dev_gold": {"general": {"mean": 0.04, "ci95": [0.03, 0.05], "n": 140}}}]
    (root / "round_0" / "eval" / "leaderboard.json").write_text(json.dumps(board))
    return root


def test_a_kept_run_is_reused_only_with_the_settings_base_and_seed(tmp_path):
    tiny = yaml.safe_load((ROOT / "configs" / "tiny" / "init.yaml").read_text())
    plain = _finished_run(tmp_path / "plain", {**tiny, "shape": None})
    assert round0_done(plain)
    check_run_matches(plain, SETTINGS["default"], 0)  # a base saved before chat_groups existed reads its default
    with pytest.raises(SystemExit, match="chat_seq_len"):
        check_run_matches(plain, SETTINGS["whole"], 0)
    with pytest.raises(SystemExit, match="seed"):
        check_run_matches(plain, SETTINGS["default"], 1)
    long = _finished_run(tmp_path / "long", {**tiny, "chat_seq_len": 384, "chat_groups": 4, "steps": 3000}, seed=2)
    check_run_matches(long, SETTINGS["whole-2x"], 2)
    with pytest.raises(SystemExit, match="steps"):
        check_run_matches(long, SETTINGS["whole-3x"], 2)
    assert not round0_done(_finished_run(tmp_path / "killed", tiny, status="running"))


def test_a_finished_round_0_is_read_and_plotted(tmp_path):
    run = _finished_run(tmp_path / "run", {})
    got = read_setting(run)
    assert got["dev_mean"] == 0.3 and got["probe_exact_match"] == 0.95 and got["base_seconds"] == 300.0
    assert got["dev"]["math"] == {"accuracy": 0.5, "ci95": [0.4, 0.6], "n": 140}
    assert got["dev_gold"]["general"]["mean"] == 0.04
    plot({"default": got, "whole": {**got, "base_seconds": 456.0}}, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
