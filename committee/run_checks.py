"""The shape of a run and its checks: which stages a round has, which settings are fixed, and the validation that
runs before `afm-align iterate` writes anything (committee.rounds calls `check_run` first).

`check_run(cfg, target)` checks the round number, the run stamp, every round manifest (a corrupt one, or one
of another format, is a one-line ValueError and nothing is touched), that the run's fixed settings
(`RUN_FIXED`) did not change, and that an unfinished round is resumed with the config it began with (only
`RESUME_FREE` settings may change). Once all of that passes, it removes the staging folders a killed run
left under the run directory (`afm_align.member_io.remove_stale_staging`: only `.<name>.tmp-<pid>-*` and
`.<name>.old-<pid>` entries whose process is gone; a concurrent process's are never touched).

Run: `python -m pytest tests/committee/test_rounds.py`.
"""
from __future__ import annotations

from pathlib import Path

from afm_align.config import config_dict
from afm_align.errors import UserError
from afm_align.member_io import remove_stale_staging
from afm_align.rundir import RunDir
from committee import manifest as mf
from committee.round_config import IterateConfig

ROUND0_STAGES = ("base", "data", "members/sft", "eval", "promotion", "test", "report")
# settings that define the run's fixed data: they cannot change after round 0
RUN_FIXED = ("seed", "families", "difficulty", "dev_fraction", "test_fraction", "eval_prompts", "sft_items",
             "rm_bootstrap_pairs", "preset")
# settings an unfinished round may be resumed with changed (e.g. accept fewer human labels)
RESUME_FREE = {"run", "human_min_labels", "init_threads"}  # init_threads: the base records the count it used


def recorded_setting(config: dict, key: str):
    """A setting as a manifest's `config` recorded it; a key added after the manifest was written ran as its
    default (IterateConfig), so that is what it reads as."""
    return config[key] if key in config else config_dict(IterateConfig()).get(key)


def changed_setting(recorded: dict, now: dict, keys) -> str | None:
    """The first of `keys` whose recorded value (`recorded_setting`) differs from `now`'s, or None."""
    return next((k for k in keys if recorded_setting(recorded, k) != now.get(k)), None)


def round_stages(n: int, members: list[str]) -> tuple[str, ...]:
    if n == 0:
        return ROUND0_STAGES
    return ("prompts", "responses", "preferences", "rm", *[f"members/{m}" for m in members],
            "eval", "promotion", "test", "report")


# ---- validation (nothing is written before all of it passes) -------------------------------------------

def existing_rounds(run: RunDir) -> dict[int, dict]:
    """{round: manifest} of the run's round folders; a corrupt manifest is a one-line ValueError."""
    found = {}
    if run.root.is_dir():
        for path in sorted(run.root.glob("round_*")):
            suffix = path.name[len("round_"):]
            data = mf.read(path / mf.MANIFEST_FILE) if suffix.isdigit() else None
            if data is not None:
                found[int(suffix)] = data
    return found


def check_run(cfg: IterateConfig, target: int) -> RunDir:
    """The run directory, after checking the target round, the run stamp and every round manifest."""
    if target < 1:
        raise UserError(f"--round must be 1 or more (got {target}); round 0 (init + SFT) runs as part of round 1")
    run = RunDir.named(cfg.run)
    run.check_format()
    rounds = existing_rounds(run)
    now = config_dict(cfg)
    if 0 in rounds:
        changed = changed_setting(rounds[0]["config"], now, RUN_FIXED)
        if changed:
            raise UserError(f"run '{cfg.run}' was made with another '{changed}' "
                             f"({recorded_setting(rounds[0]['config'], changed)!r}); it is fixed for a run: "
                             "start another --run")
    systems = sorted({data["config"].get("system", "afm") for n, data in rounds.items() if n >= 1})
    if systems and systems != [cfg.system]:
        raise UserError(f"run '{cfg.run}' ran its rounds with system {systems[0]}, not {cfg.system}: "
                        f"a run keeps one system; start another --run (round 0 may be copied from this one)")
    for n, data in sorted(rounds.items()):
        stages = round_stages(n, data["config"].get("members", []))
        done = all(data["stages"].get(s, {}).get("status") == "done" for s in stages)
        keys = sorted((set(now) | set(data["config"])) - RESUME_FREE)
        diff = changed_setting(data["config"], now, keys)
        if not done and n <= target and diff is not None:
            raise UserError(f"round {n} of run '{cfg.run}' was started with another '{diff}' "
                             f"({recorded_setting(data['config'], diff)!r}); resume it with the same settings")
    if cfg.annotator == "judge" and not cfg.judge_model and 1 not in rounds:
        raise UserError("the judge annotator needs an RM before round 1 has one: pass judge_model=PATH "
                         "(an RM directory), or label round 1 with --annotator oracle")
    if cfg.teacher_model and not (Path(cfg.teacher_model) / "config.json").is_file():
        raise UserError(f"teacher_model {cfg.teacher_model}: not a model directory (no config.json)")
    if cfg.judge_model and not (Path(cfg.judge_model) / "config.json").is_file():
        raise UserError(f"judge_model {cfg.judge_model}: not a reward-model directory")
    remove_stale_staging(run.root)  # what a killed run of this directory left (checked: nothing else goes)
    return run
