"""The `afm-align iterate` command: its flags and key=value settings, merged with what the run recorded.

`cli_main(args)` turns the flags into settings, starts from the settings the run recorded on earlier
commands (`committee.run_settings`), checks everything (recipe keys, the run's fixed settings and manifests)
before any work, records what it will run with, and hands over to `committee.rounds.iterate`. A round that
waits for human labels (`RoundPaused`) ends the command with exit code 0 and a line saying what it waits for.

Run: `afm-align iterate --round 3 [--run NAME] [key=value ...]`.
"""
from __future__ import annotations

from afm_align.errors import UserError
from afm_align.rundir import RunDir
from committee import rounds, run_settings
from committee.round_config import check_recipe_keys, load, parse_members
from committee.run_checks import check_run


def cli_main(args) -> int:
    """`afm-align iterate --round N [--run] [--annotator] [--members] [--system] [--preset] [--config] [key=value]`."""
    if args.round < 1:
        raise UserError(f"--round must be 1 or more (got {args.round}); round 0 (init + SFT) runs as part of round 1")
    overrides = list(args.overrides)
    if args.run:
        overrides.append(f"run={args.run}")
    if args.annotator:
        overrides.append(f"annotator={args.annotator}")
    if getattr(args, "system", None):
        overrides.append(f"system={args.system}")  # checked where the system layer is read (committee.systems)
    if args.members is not None:
        overrides.append(f"members=[{','.join(parse_members(args.members))}]")
    stated = run_settings.explicit_settings(args.config, overrides)
    name = stated.get("run") or load(args.preset or run_settings.DEFAULT_PRESET).run
    run = RunDir.named(str(name))
    preset, settings, reused = run_settings.merged(run, args.preset, stated)
    if reused:
        rounds.say(f"run '{name}': reusing its recorded settings {' '.join(run_settings.as_overrides(reused))}"
            f" (from {run.root / run_settings.SETTINGS_FILE}; state a key again to change it)")
    cfg = load(preset, None, run_settings.as_overrides(settings))
    check_recipe_keys(cfg)  # every recipe override is checked before any work starts
    check_run(cfg, args.round)
    run_settings.record(run, preset, settings)
    try:
        manifests = rounds.iterate(cfg, args.round)
    except rounds.RoundPaused as paused:
        print(f"afm-align iterate: {paused}")
        return 0
    last = manifests[-1].data.get("promotion") or {}
    rounds.say(f"round {args.round} complete; committee: {', '.join(last.get('committee', []))}")
    return 0
