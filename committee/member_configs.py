"""Two members' resolved recipe configs side by side: the keys that differ (`afm-align compare`).

What it does: every member folder holds `recipe_config.yaml`, the resolved config it was trained with
(`alignment.members.write_member`). `find_config(run, member)` finds it under `round_<N>/members/<member>/`
(member names are unique within a run); `config_diff(a, b)` lists the keys whose values differ, nested
mappings flattened to dotted keys (RS nests its SFT config under `sft.`), a key one config lacks shown as
`(absent)`, a string that is empty or padded quoted; `diff_lines` renders them as aligned text columns. Keys
both configs set come first, then keys only one sets; the keys that name the member itself (`out`, `member`,
`round`) differ between any two members and are listed last.

Run: `afm-align compare r1-dpo r0-sft --run default`; tests: `python -m pytest tests/committee/test_compare_config.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

CONFIG_FILE = "recipe_config.yaml"  # alignment.members.CONFIG_FILE (not imported: that pulls in the trainers)
ABSENT = "(absent)"
IDENTITY_KEYS = ("out", "member", "round")  # differ between any two members: listed after the recipe's knobs


def find_config(run, member: str) -> Path | None:
    """`round_<N>/members/<member>/recipe_config.yaml` of the latest round that has it; None when none does."""
    rounds = [p for p in run.root.glob("round_*") if p.name[len("round_"):].isdigit()]
    for round_dir in sorted(rounds, key=lambda p: -int(p.name[len("round_"):])):
        file = round_dir / "members" / member / CONFIG_FILE
        if file.is_file():
            return file
    return None


def read_config(file: Path) -> dict:
    import yaml

    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _text(value) -> str:
    if value is ABSENT:
        return ABSENT
    return value if isinstance(value, str) and value.strip() == value and value else json.dumps(value)


def config_diff(a: dict, b: dict) -> list[tuple[str, str, str]]:
    """[(key, a's value, b's value)] for every key whose values differ, in A's key order then B's: keys both
    set first, then keys only one sets, then the identity keys."""
    fa, fb = _flatten(a), _flatten(b)
    keys = [k for k in dict.fromkeys([*fa, *fb]) if fa.get(k, ABSENT) != fb.get(k, ABSENT)]
    keys.sort(key=lambda k: (k in IDENTITY_KEYS, k not in fa or k not in fb))  # stable sort keeps file order
    return [(k, _text(fa.get(k, ABSENT)), _text(fb.get(k, ABSENT))) for k in keys]


def diff_lines(name_a: str, a: dict, name_b: str, b: dict) -> list[str]:
    """The differing keys as aligned columns `key  A's value  B's value` (one line when none differ)."""
    rows = config_diff(a, b)
    if not rows:
        return [f"config: {name_a} and {name_b} were trained with the same {CONFIG_FILE}"]
    table = [("key", name_a, name_b), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(2)]
    lines = [f"config: {len(rows)} keys of {CONFIG_FILE} differ"]
    lines += ["  " + f"{k.ljust(widths[0])}  {va.ljust(widths[1])}  {vb}".rstrip() for k, va, vb in table]
    return lines
