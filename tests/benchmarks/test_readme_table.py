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


def test_the_readme_systems_section_is_generated_from_its_json():
    """Issue 19: the four-system table in the README is `benchmarks/systems.py`'s JSON, regenerated."""
    proc = subprocess.run([sys.executable, "benchmarks/systems.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_systems_summary_means_and_intervals_over_seeds():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from systems import readme_section, summarise

    def run(system, seed, gain, curve):
        domains = {"math": 0.5 + gain, "tool": 0.1}
        return {"system": system, "seed": seed, "test_gain": gain, "test_mean": 0.3 + gain, "minutes": 5.0 + seed,
                "peak_gb": 1.0 + seed / 10, "member": f"r3-x{seed}", "test_per_domain": domains,
                "r0_sft_test": {"mean": 0.3}, "curve": [{"test_mean": v} for v in curve]}

    per_run = [run("afm", 0, 0.02, [0.3, 0.31, 0.32]), run("afm", 1, 0.04, [0.3, 0.33, 0.34]),
               run("qwen2", 0, -0.01, [0.3, 0.29, 0.29]), run("qwen2", 1, 0.01, [0.3, 0.3, 0.31])]
    out = summarise(per_run, ["afm", "qwen2"], 2)
    assert out["afm"]["test_gain_points"]["mean"] == 3.0 and out["afm"]["test_gain_points"]["per_seed"] == [2.0, 4.0]
    low, high = out["afm"]["test_gain_points"]["ci95"]
    assert low < 3.0 < high and abs((3.0 - low) - (high - 3.0)) < 1e-6  # a t-interval, symmetric about the mean
    assert out["qwen2"]["curve_test_mean"] == [0.3, 0.295, 0.3]
    assert out["afm"]["per_domain_test"]["math"] == 0.53 and out["afm"]["minutes"] == [5.0, 6.0]
    result = {"date": "d", "commit": "c" * 12, "command": "cmd", "seeds": [0, 1], "scale": "quick",
              "matmul_gflops_before": 200.0, "matmul_gflops_after": 201.0, "round": 2, "systems": out,
              "plot": "p.png", "base_note": "b", "round0_minutes": [1.0, 1.1], "gold_note": "g"}
    text = readme_section(result)
    assert "| AFM | 0.300 -> 0.330 | +3.0 [" in text and "| Qwen2 |" in text and "+2.0, +4.0" in text


def test_the_round_time_is_judged_at_the_budgets_reference_peak_per_seed():
    """The 20-minute budget is for a 200 GFLOP/s machine: each seed's wall minutes are scaled by the matmul peak
    read before it, so a slow host's 24 minutes can meet it and a fast host's 21 cannot."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from readme_table import round_row, scaled_minutes

    def data(*seeds):
        return {"command": "c", "date": "d", "commit": "abc", "matmul_gflops": 150.0, "peak_gb": [1.2] * len(seeds),
                "minutes": [m for m, _ in seeds],
                "per_seed": [{"seed": i, "minutes": m, "matmul_gflops_before": g} for i, (m, g) in enumerate(seeds)]}

    slow = data((24.0, 130.0), (22.0, None))  # the second seed falls back to the run's own reading, 150
    assert scaled_minutes(slow) == [15.6, 16.5]
    assert round_row(slow).endswith("| met |") and "15.6 min, 16.5 min" in round_row(slow)
    assert round_row(data((21.0, 200.0), (10.0, 130.0))).endswith("| **not met** |")
    heavy = data((10.0, 200.0))
    heavy["peak_gb"] = [6.5]
    assert round_row(heavy).endswith("| **not met** |")
