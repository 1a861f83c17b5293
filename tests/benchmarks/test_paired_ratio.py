"""The paired-ratio harness every README speed figure goes through (issue 21): ratio direction, interleaving,
and an interval that says "no measurable difference" when it holds 1.0."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.paired_ratio import bootstrap_median_interval, paired_ratio, verdict  # noqa: E402


def _sequence(values):
    it = iter(values)
    return lambda: next(it)


def test_throughput_and_time_ratios_both_read_above_one_when_ours_is_faster():
    calls = []
    ours = lambda: calls.append("a") or 20.0  # noqa: E731
    base = lambda: calls.append("b") or 10.0  # noqa: E731
    out = paired_ratio(ours, base, pairs=10, warmup=1)
    assert out["ratio"] == 2.0 and out["ci95"] == [2.0, 2.0] and out["verdict"] == "ours faster"
    assert calls[:2] == ["a", "b"] and calls[2:4] == ["a", "b"] and calls[4:6] == ["b", "a"]  # warm-up, interleaved
    out = paired_ratio(lambda: 1.0, lambda: 1.5, pairs=10, higher_is_better=False)
    assert out["ratio"] == 1.5 and out["verdict"] == "ours faster"


def test_an_interval_holding_one_is_no_measurable_difference():
    ours = _sequence([1.0] + [1.2, 0.8] * 5)
    base = _sequence([1.0] * 11)
    out = paired_ratio(ours, base, pairs=10)
    assert out["ci95"][0] <= 1.0 <= out["ci95"][1] and out["verdict"] == "no measurable difference"
    assert verdict(1.01, 1.3) == "ours faster" and verdict(0.7, 0.9) == "ours slower"


def test_the_bootstrap_interval_brackets_the_median():
    values = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]
    low, high = bootstrap_median_interval(values)
    assert low < 1.45 < high and low >= 1.0 and high <= 1.9
