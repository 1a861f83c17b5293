"""The README's performance table is what the committed result JSON says (issue 21): regenerate it with
`python benchmarks/readme_table.py --write` after `benchmarks/run_all.py`; this test fails when they differ."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_table_is_generated_from_the_committed_json():
    proc = subprocess.run([sys.executable, "benchmarks/readme_table.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_ratio_the_readme_quotes_has_an_interval_and_its_json_says_where_it_came_from():
    import json

    latest = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    for name in ("mdloo_vs_trl_rloo", "rm_step_vs_trl_reward", "rs_generation_vs_naive", "rm_scoring_vs_naive"):
        ratio = latest["ratios"][name]
        assert ratio["value"] is not None and len(ratio["ci95"]) == 2, name
        assert ratio["ci95"][0] <= ratio["value"] <= ratio["ci95"][1], name
    for key in ("date", "commit", "machine", "command"):
        assert latest[key], key
    for bench in latest["details"]:
        figure = json.loads((ROOT / "benchmarks" / "results" / f"{bench}.json").read_text())
        assert figure["command"].startswith("python benchmarks/") and figure["commit"], bench


def test_the_readme_on_device_section_is_generated_from_its_json():
    """Issue 18: the on-device tables in the README are `benchmarks/on_device.py`'s JSON, regenerated."""
    proc = subprocess.run([sys.executable, "benchmarks/on_device.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
