"""What a user told `afm-align iterate` about a run, recorded so that later rounds reuse it.

`afm-align iterate --round 1 --run r lr_scale=2 recipes.dpo=[beta=0.2]` followed by `afm-align iterate
--round 2 --run r` used to start round 2 from the preset's defaults and refuse to go on because the
settings no longer matched round 1's. Now the first command records its explicit settings (the keys of
`--config FILE`, then `key=value` overrides, `--annotator`, `--members`) and its preset in
`runs/<name>/iterate_settings.json`; every later `iterate` on the run starts from them, and what the new
command says on top wins (and is recorded in turn). Settings are recorded only once the run's checks
passed, so a refused command changes nothing.

Run: `cat runs/default/iterate_settings.json`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.config import read_yaml, parse_override
from afm_align.errors import UserError
from afm_align.rundir import RunDir
from afm_align.store import write_json_atomic

SETTINGS_FILE = "iterate_settings.json"
DEFAULT_PRESET = "tiny"


def explicit_settings(config_file: str | None, overrides: list[str]) -> dict:
    """{key: value} the user stated: the keys of `config_file`, then the overrides (later ones win)."""
    settings = dict(read_yaml(Path(config_file))) if config_file else {}
    settings.update(parse_override(o) for o in overrides)
    return settings


def read_settings(run: RunDir) -> dict:
    """{"preset": str | None, "settings": {key: value}} recorded for `run` (empty when none)."""
    file = run.root / SETTINGS_FILE
    if not file.is_file():
        return {"preset": None, "settings": {}}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return {"preset": data.get("preset"), "settings": dict(data.get("settings") or {})}
    except (ValueError, AttributeError, TypeError):
        raise UserError(f"{file}: corrupt recorded settings; fix or delete the file") from None


def as_overrides(settings: dict) -> list[str]:
    """`settings` as `key=value` strings that `parse_override` reads back to the same values."""
    return [f"{key}={json.dumps(value)}" for key, value in settings.items()]


def merged(run: RunDir, preset: str | None, stated: dict) -> tuple[str, dict, dict]:
    """(preset, settings to apply, recorded settings reused): the run's recorded settings under `stated`."""
    recorded = read_settings(run)
    reused = {k: v for k, v in recorded["settings"].items() if k not in stated and k != "run"}
    return preset or recorded["preset"] or DEFAULT_PRESET, {**reused, **stated}, reused


def record(run: RunDir, preset: str, settings: dict) -> None:
    """Write the settings a checked `iterate` command ran with (atomically; untouched when unchanged, so a
    finished run's files stay as they were)."""
    data = {"preset": preset, "settings": {k: v for k, v in settings.items() if k != "run"}}
    if data == read_settings(run):
        return
    run.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run.root / SETTINGS_FILE, data)
