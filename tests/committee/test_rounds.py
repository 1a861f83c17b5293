"""The round runner: bad input touches nothing; a round completes; a run killed with SIGKILL at several stages
resumes to exactly the files of an uninterrupted run; done stages are skipped; humans pause a round.

The slow tests run a micro config (a 1-layer, hidden-32 base; 3 prompts per family; 1-2 steps per recipe).
Leaderboards are compared exactly (every number, bit for bit, after dropping the run-specific `path`).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from afm_align.cli import main as cli_main
from committee import manifest as mf
from afm_align.rundir import RUN_FORMAT
from committee.rounds import round_stages, stage_seed

REPO = Path(__file__).resolve().parents[2]
MICRO = {
    "sft_items": 8, "eval_prompts": 3, "prompts_per_round": 3, "k": 2, "max_new_tokens": 12,
    "eval_max_new_tokens": 12, "rm_bootstrap_pairs": 24, "rm_eval_pairs": 10, "eval_bootstrap": 50,
    "rs_min_score": -100.0, "rs_verifier_min": 0.0,  # the micro model rarely passes a verifier: RS must keep some
    "recipes": {
        "init": ["shape.hidden_size=32", "shape.num_layers=1", "shape.num_heads=2", "shape.num_kv_heads=1",
                 "shape.intermediate_size=64", "steps=10", "drill_problems=500", "family_items=20",
                 "family_counts.tool=20", "math_items=20", "vocab_size=400", "probes=10", "batch_size=8",
                 "heldout_sequences=4", "seq_len=32"],
        "sft0": ["max_steps=2"], "sft": ["max_steps=2"], "rs": ["sft.max_steps=2"],
        "dpo": ["max_steps=1", "min_level=0"], "ipo": ["max_steps=1", "min_level=0"],
        "mdloo": ["steps=1", "prompts_per_step=2", "k=2", "max_new_tokens=8"], "rm": ["max_steps=2"],
    },
}


def _snapshot(root: Path) -> dict:
    """Every file under `root` with its modification time and bytes."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(capsys, code: int, needle: str) -> None:
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert err.count("\n") == 1 and err.startswith("afm-align iterate: error: ")


def test_stage_seeds_depend_on_seed_round_and_stage_only():
    assert stage_seed(0, 1, "rm") == stage_seed(0, 1, "rm")
    assert len({stage_seed(0, 1, "rm"), stage_seed(1, 1, "rm"), stage_seed(0, 2, "rm"), stage_seed(0, 1, "eval")}) == 4
    assert round_stages(0, ["dpo"])[:3] == ("base", "data", "members/sft")
    assert round_stages(2, ["dpo", "mdloo"]) == ("prompts", "responses", "preferences", "rm", "members/dpo",
                                                 "members/mdloo", "eval", "promotion", "test", "report")


def _fake_run(root: Path) -> Path:
    """A run with a finished round 0 and an unfinished round 1 (manifests only, as the runner writes them)."""
    from afm_align.config import config_dict
    from committee.round_config import load

    cfg = config_dict(load("tiny", None, ["run=fake"]))
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"format": RUN_FORMAT, "afm_align": "0.1.0"}))
    done = {s: {"status": "done", "outputs": {}} for s in round_stages(0, cfg["members"])}
    for n, stages in ((0, done), (1, {"prompts": {"status": "running"}})):
        (root / f"round_{n}").mkdir()
        (root / f"round_{n}" / "manifest.json").write_text(json.dumps(
            {"format": 1, "round": n, "config": cfg, "stages": stages, "committee": [], "start": "base"}))
    (root / "round_0" / "members").mkdir()
    (root / "round_0" / "members" / "weights.bin").write_bytes(b"\x00" * 16)
    return root


@pytest.mark.parametrize("argv, spoil, needle", [
    (["--round", "0"], None, "--round must be 1 or more (got 0)"),
    (["--round", "-2"], None, "--round must be 1 or more (got -2)"),
    (["--round", "2", "--members", "sft,nope"], None, "unknown member 'nope'"),
    (["--round", "1", "recipes.dpo=[lr=1]"], None, "recipes.dpo: config key 'lr' was renamed to 'learning_rate'"),
    (["--round", "1", "recipes.rm=[num_epochs=1]"], None, "recipes.rm: config key 'num_epochs' was renamed to 'epochs'"),
    (["--round", "2", "--annotator", "crowd"], None, "unknown annotator 'crowd'"),
    (["--round", "2"], ("round_0/manifest.json", "{ half a manifest"), "corrupt round manifest"),
    (["--round", "2"], ("round_1/manifest.json", '{"format": 7, "round": 1}'), "format 7"),
    (["--round", "2"], ("run.json", '{"format": 99}'), "made by run format 99"),
    (["--round", "2", "--members", "dpo"], None, "round 1 of run 'fake' was started with another 'members'"),
    (["--round", "2", "seed=5"], None, "made with another 'seed'"),
])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, capsys, argv, spoil, needle):
    root = _fake_run(Path(os.environ["AFM_ALIGN_RUNS"]) / "fake")
    if spoil:
        (root / spoil[0]).write_text(spoil[1])
    before = _snapshot(root)
    code = cli_main(["iterate", *argv, "--run", "fake"])
    _one_line_error(capsys, code, needle)
    assert _snapshot(root) == before


def test_a_run_recorded_before_a_setting_existed_resumes_with_its_default():
    """An unfinished round whose manifest predates a config key (here `curriculum`) ran as the key's default, so
    it resumes; a stated non-default value is still a changed setting."""
    from afm_align.errors import UserError
    from committee.round_config import load
    from committee.run_checks import check_run

    root = _fake_run(Path(os.environ["AFM_ALIGN_RUNS"]) / "fake")
    for n in (0, 1):
        path = root / f"round_{n}" / "manifest.json"
        data = json.loads(path.read_text())
        del data["config"]["curriculum"]
        path.write_text(json.dumps(data))
    assert check_run(load("tiny", None, ["run=fake"]), 2).root == root
    with pytest.raises(UserError, match="started with another 'curriculum'"):
        check_run(load("tiny", None, ["run=fake", "curriculum.tool=[0,1]"]), 2)


def test_the_judge_needs_an_rm_before_round_1_has_one(capsys):
    code = cli_main(["iterate", "--round", "1", "--run", "fresh", "--annotator", "judge"])
    _one_line_error(capsys, code, "the judge annotator needs an RM")
    assert not (Path(os.environ["AFM_ALIGN_RUNS"]) / "fresh").exists()


# ---- slow: real rounds on the micro config ----------------------------------------------------------

@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """(config file, a micro base model directory) shared by the slow tests."""
    from afm_align import init_base
    from synth.corpus import pretraining_corpus

    root = tmp_path_factory.mktemp("micro")
    config = root / "micro.yaml"
    config.write_text(yaml.safe_dump(MICRO))
    cfg = init_base.load("tiny", None, [*MICRO["recipes"]["init"], "threads=1"])
    cfg.run = str(root / "baserun")
    init_base.main(cfg, *pretraining_corpus(cfg))
    return config, root / "baserun" / "base"


def _new_run(runs: Path, name: str, base: Path) -> Path:
    run = runs / name
    shutil.copytree(base, run / "base")
    return run


def _cmd(config: Path, run: str, round_n: int = 1, *extra: str) -> list[str]:
    return [sys.executable, "-m", "afm_align.cli", "iterate", "--round", str(round_n), "--run", run,
            "--config", str(config), *extra]


def _iterate(config: Path, run: str, env: dict, round_n: int = 1, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(config, run, round_n, *extra), check=False, env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def _env(runs: Path) -> dict:
    return {**os.environ, "AFM_ALIGN_RUNS": str(runs), "AFM_ALIGN_QUIET": "1"}


def _kill_during(cmd, env, manifest: Path, stage: str, timeout: float = 120) -> bool:
    """Start `cmd`; SIGKILL its process group once `stage` is running or done in `manifest`.
    Returns True when the kill happened while the stage was still running."""
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline, status = time.time() + timeout, None
    try:
        while proc.poll() is None and time.time() < deadline:
            try:
                status = json.loads(manifest.read_text())["stages"].get(stage, {}).get("status")
            except (OSError, ValueError):
                status = None
            if status in ("running", "done"):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and time.time() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert status in ("running", "done"), f"stage {stage} never started"
    return status == "running"


def _board(run: Path, n: int) -> list[dict]:
    entries = json.loads((run / f"round_{n}" / "eval" / "leaderboard.json").read_text())
    return [{k: v for k, v in e.items() if k != "path"} for e in entries]


def _check_open_ended(run: Path) -> None:
    """The default families include open-ended ones: their gold sits only in the side-stores; the gold oracle labels
    their pairs; evaluation grades them by gold; MDLOO logged its rollouts; no dataset row carries a gold."""
    from afm_align.store import read_rows

    for n in (0, 1):
        gold = json.loads((run / f"round_{n}" / "gold.json").read_text())
        assert gold and all(k.startswith(("general-", "summarize-")) for k in gold)
    prompts = read_rows(run / "round_1" / "prompts", "prompt")
    assert {"general", "summarize"} <= {r["domain"] for r in prompts}
    texts = [p.read_text() for p in run.rglob("rows.jsonl")]
    assert texts and not any('"gold"' in t or '"_gold"' in t for t in texts)
    prefs = read_rows(run / "round_1" / "preferences", "preference")
    assert {r["annotator"] for r in prefs if r["domain"] in ("general", "summarize")} == {"gold-oracle"}
    assert {r["annotator"] for r in prefs if r["domain"] not in ("general", "summarize")} == {"oracle"}
    entry = _board(run, 1)[0]
    assert set(entry["dev_gold"]) == {"general", "summarize"} and {"general", "summarize"} <= set(entry["dev"])
    samples = [json.loads(line) for line in (run / "round_1" / "eval" / "samples.jsonl").read_text().splitlines()]
    assert all(0.0 <= s["verifier_score"] <= 1.0 for s in samples if s["domain"] in ("general", "summarize"))
    rollouts = (run / "round_1" / "members" / "r1-mdloo" / "rollouts.jsonl").read_text().splitlines()
    assert rollouts and {"step", "prompt_id", "reward_model"} <= set(json.loads(rollouts[0]))
    from committee.member_eval import evaluate_member, report_lines

    report = evaluate_member(str(run), "r0-sft", split="test", n_boot=20, max_new_tokens=8)  # `afm-align eval`
    assert set(report["gold"]) == {"general", "summarize"} and {"general", "summarize"} <= set(report["per_domain"])
    assert any("mean gold score" in line for line in report_lines(report))
    curves = json.loads((run / "round_1" / "eval" / "overoptimisation.json").read_text())
    assert curves["best_of_n"] and curves["best_of_n"][0]["n"] == 1 and (run / "round_1" / "plots" /
                                                                        "overoptimisation.png").is_file()
    assert "## Over-optimisation" in (run / "round_1" / "report.md").read_text()


@pytest.mark.slow
def test_a_killed_round_resumes_to_the_uninterrupted_result_and_done_stages_are_skipped(micro, tmp_path):
    config, base = micro
    runs = tmp_path / "runs"
    env = _env(runs)
    whole = _new_run(runs, "whole", base)
    done = _iterate(config, "whole", env)
    assert done.returncode == 0, done.stderr[-2000:]
    m1 = mf.read(whole / "round_1" / "manifest.json")
    members = MICRO.get("members") or ["sft", "rs", "dpo", "ipo", "mdloo"]
    # every step of every stage asked the one member I/O module for its device (here the CPU)
    devices = {(st, step): dev for st, rec in m1["stages"].items() for step, dev in rec.get("devices", {}).items()}
    assert set(devices.values()) == {"cpu"}
    assert {("responses", "committee-sampling"), ("rm", "rm-training"), ("members/sft", "sft-training"),
            ("members/rs", "sft-training"), ("members/dpo", "dpo-training"), ("members/ipo", "ipo-training"),
            ("members/mdloo", "mdloo-training"), ("eval", "evaluation"), ("test", "test-evaluation")} <= set(devices)
    assert mf.read(whole / "round_0" / "manifest.json")["stages"]["members/sft"]["devices"] == {"sft-training": "cpu"}
    from synth.sandbox import isolation_mode
    assert m1["sandbox"]["isolation"] == isolation_mode() != "unavailable"  # the sandbox mode of every round
    assert all(m1["stages"][s]["status"] == "done" for s in round_stages(1, members))
    assert m1["committee"] == ["r0-sft"] and m1["start"] == "r0-sft" and 0 <= m1["rm_accuracy"]["accuracy"] <= 1
    assert m1["promotion"]["committee"] and m1["promotion"]["rule"]["top_k"] == 2
    assert {e["member"] for e in _board(whole, 1)} == {"r0-sft", *(f"r1-{m}" for m in members)}
    assert (whole / "round_1" / "report.md").is_file()
    _check_open_ended(whole)

    killed = _new_run(runs, "killed", base)
    mid_stage = [_kill_during(_cmd(config, "killed"), env, killed / f"round_{n}" / "manifest.json", stage)
                 for n, stage in ((0, "members/sft"), (1, "responses"), (1, "rm"), (1, "members/rs"),
                                  (1, "members/mdloo"), (1, "eval"))]
    assert any(mid_stage)  # at least one kill landed while a stage was running
    rerun = _iterate(config, "killed", env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "done before, skipped" in rerun.stdout
    for n in (0, 1):
        assert _board(killed, n) == _board(whole, n)  # exact equality, floats included
    for part in ("preferences/rows.jsonl", "responses/rows.jsonl", "eval/samples.jsonl"):
        assert (killed / "round_1" / part).read_bytes() == (whole / "round_1" / part).read_bytes()
    assert mf.read(killed / "round_1" / "manifest.json")["promotion"] == m1["promotion"]

    before = _snapshot(killed)
    again = _iterate(config, "killed", env)
    assert again.returncode == 0 and "round 1: complete, nothing to do" in again.stdout
    assert _snapshot(killed) == before  # done stages are skipped: nothing rewritten

    judged = _iterate(config, "whole", env, 2, "--annotator", "judge", "--members", "dpo")  # round 1's RM judges
    assert judged.returncode == 0, judged.stderr[-2000:]
    rows = [json.loads(line) for line in (whole / "round_2" / "preferences" / "rows.jsonl").read_text().splitlines()]
    assert rows and {r["source"] for r in rows} == {"judge"}
    assert mf.read(whole / "round_2" / "manifest.json")["committee"] == m1["promotion"]["committee"]
    rm1, rm2 = ([json.loads(line) for line in (whole / f"round_{n}" / "rm-data" / "rows.jsonl").read_text().splitlines()]
                for n in (1, 2))
    ids2 = {r["id"] for r in rm2}  # the warm-started RM: every new pair and held-out pair, a share of the rest
    assert {r["id"] for r in rows} <= ids2 and {r["id"] for r in rm1 if r["split"] != "train"} <= ids2
    replay = mf.read(whole / "round_2" / "manifest.json")["config"]["rm_replay"]
    assert 0 < replay < 1 and len(ids2 & {r["id"] for r in rm1 if r["split"] == "train"}) == round(
        replay * sum(r["split"] == "train" for r in rm1))

    (killed / "round_1" / "manifest.json").write_text('{"format": 1, "round": 1, "stag')
    before = _snapshot(killed)
    bad = _iterate(config, "killed", env, 2)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "corrupt round manifest" in bad.stderr
    assert _snapshot(killed) == before


@pytest.mark.slow
def test_the_human_annotator_pauses_the_round_until_the_pairs_are_labelled(micro, capsys):
    from afm_align.label_store import LabelStore
    from afm_align.store import read_rows

    config, base = micro
    run = _new_run(Path(os.environ["AFM_ALIGN_RUNS"]), "humans", base)
    argv = ["iterate", "--round", "1", "--run", "humans", "--config", str(config), "--annotator", "human",
            "--members", "sft,dpo"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "pairs labelled; run `afm-align annotate --run humans`" in out and "round 1 complete" not in out
    m1 = mf.read(run / "round_1" / "manifest.json")
    assert m1["stages"]["preferences"]["status"] == "waiting" and "members/sft" not in m1["stages"]
    store = LabelStore(run / "labels.sqlite", seed=0)
    store.add_user("ann", "a-long-password")
    grades = {"instruction_following": 2, "verbosity": 1, "truthfulness": 2, "harmlessness": 2}
    while (a := store.next_pair("ann", round=1)) is not None:
        store.submit("ann", a.id, "A", 2, grades, grades)
    assert cli_main(argv) == 0
    assert "round 1 complete" in capsys.readouterr().out
    rows = read_rows(run / "round_1" / "preferences", "preference")
    assert rows and {r["source"] for r in rows} == {"human"}
    board = {e["member"] for e in _board(run, 1)}
    assert board == {"r0-sft", "r1-sft", "r1-dpo"}
