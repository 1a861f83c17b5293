"""`afm-align iterate --system`: the four systems' presets load, bad input is one line, and the Llama 3.1, Qwen2
and Gemma 2 rounds run on the micro config with their chains, merges and teacher as the presets say.

The slow test runs round 1 of each system from one micro round 0 (copied, as benchmarks/systems.py does), then
checks each member's provenance and the merges' weights against the members they merged.
"""
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from afm_align.cli import main as cli_main
from afm_align.errors import UserError
from committee.round_config import load
from committee.systems import SYSTEMS, candidate_spec, requested_system

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rounds import MICRO  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_every_system_preset_loads_with_its_round_structure():
    shapes = {"afm": ["sft", "rs", "dpo", "ipo", "mdloo"], "llama3.1": ["rs", "dpo", "dpo_lr", "avg"],
              "qwen2": ["sft", "dpo", "online_dpo"], "gemma2": ["distill", "rl_a", "rl_b", "warp"]}
    for system in SYSTEMS:
        cfg = load("tiny", None, [f"system={system}"])
        assert cfg.system == system and cfg.members == shapes[system]
    llama = load("tiny", None, ["system=llama3.1"])
    assert llama.recipes["rm"] == ["epochs=1", "copy_ngram=4", "hard_labels=true", "min_level=1"]  # after iterate.yaml's
    assert not llama.rm_warm_start and llama.promotion.top_k == 1 and llama.promotion.keep_best_earlier == 0
    spec = candidate_spec(llama, "avg")
    assert (spec.recipe, spec.start, spec.of) == ("merge", "rs", ("dpo", "dpo_lr"))
    assert candidate_spec(llama, "rs").start == "round"
    gemma = load("tiny", None, ["system=gemma2"])
    assert candidate_spec(gemma, "distill").teacher == "run"
    assert "ema_anchor=0.1" in candidate_spec(gemma, "rl_b").overrides
    # the user's keys win over the system layer; their recipe lists go after the system's
    assert load("tiny", None, ["system=qwen2", "k=4"]).k == 4
    assert load("tiny", None, ["system=llama3.1", "recipes.rm=[epochs=2]"]).recipes["rm"] == [
        "epochs=1", "copy_ngram=4", "hard_labels=true", "min_level=1", "epochs=2"]
    assert load("tiny", None, ["system=llama3.1", 'recipes={"rm": ["max_steps=2"]}']).recipes["rm"][-2:] == [
        "min_level=1", "max_steps=2"]


def test_requested_system_takes_the_last_override():
    assert requested_system([]) == "afm"
    assert requested_system(["k=2", "system=qwen2", "system=\"gemma2\""]) == "gemma2"


@pytest.mark.parametrize("candidates, members, needle", [
    ({"b": {"recipe": "dpo", "start": "c"}}, ["b", "c"], "must be 'round' or a member listed before it"),
    ({"m": {"recipe": "merge", "of": ["sft"]}}, ["sft", "m"], "a merge needs 'of' with two or more members"),
    ({"m": {"recipe": "merge", "of": ["sft", "dpo"]}}, ["sft", "m", "dpo"], "(not before it: dpo)"),
    ({"d": {"recipe": "distill"}}, ["d"], "needs teacher: run"),
    ({"x": {"recipe": "dpo", "lr": 1}}, ["x"], "unknown key 'lr'"),
    ({"x": {"recipe": "nosuch"}}, ["x"], "unknown member 'x'"),
    ({"x": {"recipe": "dpo", "overrides": ["beta"]}}, ["x"], "must be a list of key=value strings"),
])
def test_bad_candidates_are_one_line_errors(candidates, members, needle):
    with pytest.raises(UserError, match=None) as err:
        load("tiny", None, [f"candidates={json.dumps(candidates)}", f"members={json.dumps(members)}"])
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_bad_candidate_override_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    code = cli_main(["iterate", "--round", "1", "--run", "x", "--system", "qwen2",
                     'candidates={"dpo": {"recipe": "dpo", "start": "sft", "overrides": ["nosuch=1"]}}'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "candidates.dpo" in err and "nosuch" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_an_unknown_system_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    code = cli_main(["iterate", "--round", "1", "--run", "x", "--system", "llama4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown system 'llama4'" in err and "llama3.1" in err
    code = cli_main(["iterate", "--round", "1", "--run", "x", "system=llama4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown system 'llama4'" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_teacher_model_that_is_not_a_model_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path / "runs"))
    code = cli_main(["iterate", "--round", "1", "--run", "x", "--system", "gemma2", f"teacher_model={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "teacher_model" in err and "not a model directory" in err
    assert not (tmp_path / "runs").exists()


# ---- slow: round 1 of each system on the micro config -----------------------------------------------------

def _micro_config(root: Path) -> Path:
    m = copy.deepcopy(MICRO)
    m["recipes"].update({
        "online_dpo": ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"],
        "rloo": ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"],
        "distill": ["steps=2", "batch_size=2"],
        "teacher": ["max_steps=2"],
    })
    file = root / "micro.yaml"
    file.write_text(yaml.safe_dump(m))
    return file


def _iterate(config: Path, run: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "afm_align.cli", "iterate", "--round", "1", "--run", str(run),
                           "--config", str(config), "threads=1", *extra], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _meta(run: Path, member: str) -> dict:
    return json.loads((run / "round_1" / "members" / member / "meta.json").read_text())


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def system_runs(tmp_path_factory):
    """{system: run dir} after round 1 of llama3.1, qwen2 and gemma2 from one micro round 0."""
    import os

    root = tmp_path_factory.mktemp("systems")
    config = _micro_config(root)
    env = {**os.environ, "AFM_ALIGN_QUIET": "1"}
    code = ("import sys; from committee.round_config import load; from committee.run_checks import check_run; "
            "from committee.rounds import run_round; cfg = load('tiny', sys.argv[2], ['run=' + sys.argv[1], "
            "'threads=1']); run = check_run(cfg, 1); run.ensure(); run_round(cfg, run, 0)")
    proc = subprocess.run([sys.executable, "-c", code, str(root / "r0"), str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = {}
    for system in ("llama3.1", "qwen2", "gemma2"):
        run = root / system
        shutil.copytree(root / "r0", run)
        proc = _iterate(config, run, env, "--system", system)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        runs[system] = run
    return config, env, runs


@pytest.mark.slow
def test_llama_round_chains_rs_to_two_dpo_runs_and_averages_them(system_runs):
    _, _, runs = system_runs
    run = runs["llama3.1"]
    rs = run / "round_1" / "members" / "r1-rs"
    for name, lr in (("r1-dpo", None), ("r1-dpo_lr", 1e-4)):
        meta = _meta(run, name)
        assert Path(meta["from_checkpoint"]) == rs and meta["mask_special_tokens"] is True
    config = yaml.safe_load((run / "round_1" / "members" / "r1-dpo" / "recipe_config.yaml").read_text())
    assert config["nll_weight"] == 0.2 and config["beta"] == 0.1
    avg = _meta(run, "r1-avg")
    assert avg["method"] == "average"
    a, b, merged = (_weights(run / "round_1" / "members" / m) for m in ("r1-dpo", "r1-dpo_lr", "r1-avg"))
    for key in merged:
        assert float((merged[key] - (a[key] + b[key]) / 2).abs().max()) < 1e-6
    rm_config = yaml.safe_load((run / "round_1" / "rm" / "config.yaml").read_text())
    assert rm_config["hard_labels"] is True and rm_config["min_level"] == 1  # kept under the micro config's rm list
    assert rm_config["max_steps"] == 2 and rm_config["init_from"] == ""


@pytest.mark.slow
def test_qwen2_round_chains_sft_offline_dpo_online_dpo_with_online_merging(system_runs):
    _, _, runs = system_runs
    run = runs["qwen2"]
    dpo, online = _meta(run, "r1-dpo"), _meta(run, "r1-online_dpo")
    assert Path(dpo["from_checkpoint"]) == run / "round_1" / "members" / "r1-sft"
    assert Path(online["from_checkpoint"]) == run / "round_1" / "members" / "r1-dpo"
    assert dpo["online_merging"]["variant"] == "ondare" and online["online_merging"]["variant"] == "ondare"
    assert online["reward_model"] == str(run / "round_1" / "rm")


@pytest.mark.slow
def test_gemma2_round_distils_from_the_run_teacher_then_warp_merges_two_rl_runs(system_runs):
    from transformers import AutoConfig, AutoTokenizer

    config, env, runs = system_runs
    run = runs["gemma2"]
    teacher = run / "teacher" / "sft"
    assert _meta(run, "r1-distill")["teacher"] == str(teacher)
    layers = AutoConfig.from_pretrained(teacher).num_hidden_layers
    assert layers == 2 * AutoConfig.from_pretrained(run / "base").num_hidden_layers
    assert AutoTokenizer.from_pretrained(teacher).get_vocab() == AutoTokenizer.from_pretrained(run / "base").get_vocab()
    distill = run / "round_1" / "members" / "r1-distill"
    for rl in ("r1-rl_a", "r1-rl_b"):
        meta = _meta(run, rl)
        assert Path(meta["from_checkpoint"]) == distill and meta["ema_anchor"] == 0.1 and meta["recipe"] == "rloo"
    warp = _meta(run, "r1-warp")
    assert warp["method"] == "warp" and Path(warp["from_checkpoint"]) == distill
    a, b = _weights(run / "round_1" / "members" / "r1-rl_a"), _weights(run / "round_1" / "members" / "r1-rl_b")
    assert any(float((a[k] - b[k]).abs().max()) > 0 for k in a)  # two RL runs with their own seeds
    # a finished round is not redone, and its teacher is not rebuilt
    stamp = (teacher / "meta.json").stat().st_mtime_ns
    proc = _iterate(config, run, env, "--system", "gemma2")
    assert proc.returncode == 0 and "complete, nothing to do" in proc.stdout
    assert (teacher / "meta.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_run_keeps_its_system(system_runs):
    config, env, runs = system_runs
    proc = subprocess.run([sys.executable, "-m", "afm_align.cli", "iterate", "--round", "2", "--run",
                           str(runs["qwen2"]), "--config", str(config), "--system", "gemma2"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "a run keeps one system" in err
