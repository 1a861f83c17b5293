"""Honest speed ratios: interleaved, warmed-up pairs, their median and a bootstrap 95% interval.

Every ratio the README quotes comes from here. A benchmark gives two callables, ours and the baseline, each
returning one measurement (a throughput: larger is better, or a time: smaller is better). `paired_ratio`
warms both up, then runs `pairs` pairs in alternating order (ours first in even pairs, the baseline first in
odd ones, so drift in machine load hits both sides alike), takes the ratio within each pair, and reports the
median ratio with a percentile-bootstrap 95% interval of the median over pairs. A ratio whose interval
contains 1.0 is reported as "no measurable difference": the machines are shared and noisy, and a single
pair or an unpaired median of each side can swing by 1.5x (issue 21's audit).

Run: `python -c "from benchmarks.paired_ratio import demo; demo()"` (a self-check on two sleeps).
"""
from __future__ import annotations

import random
import statistics
from typing import Callable

MIN_PAIRS = 10


def bootstrap_median_interval(values: list[float], *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of the median of `values` resampled with replacement."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n_boot))
    return medians[int(0.025 * n_boot)], medians[min(n_boot - 1, int(0.975 * n_boot))]


def verdict(low: float, high: float, name: str = "ours") -> str:
    """One phrase for a ratio interval: faster / slower, or no measurable difference when it holds 1.0."""
    if low <= 1.0 <= high:
        return "no measurable difference"
    return f"{name} faster" if low > 1.0 else f"{name} slower"


def summarise(ratios: list[float], ours: list[float], base: list[float]) -> dict:
    """The JSON of a paired measurement: median ratio, its interval, the verdict and every raw value."""
    low, high = bootstrap_median_interval(ratios)
    return {"ratio": statistics.median(ratios), "ci95": [low, high], "verdict": verdict(low, high),
            "pairs": len(ratios), "ratios": ratios, "ours": ours, "baseline": base,
            "method": "median of interleaved warmed-up pairs; 95% percentile bootstrap of the median"}


def paired_ratio(ours: Callable[[], float], baseline: Callable[[], float], *, pairs: int = MIN_PAIRS,
                 warmup: int = 1, higher_is_better: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    """Measure `pairs` interleaved pairs (after `warmup` untimed calls of each) and summarise them.

    The ratio is ours / baseline for throughputs and baseline / ours for times, so above 1 always means
    ours is faster.
    """
    if pairs < 2:
        raise ValueError("paired_ratio needs at least 2 pairs")
    for _ in range(warmup):
        ours()
        baseline()
    a_vals, b_vals, ratios = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            a, b = ours(), baseline()
        else:
            b, a = baseline(), ours()
        a_vals.append(a)
        b_vals.append(b)
        ratios.append(a / b if higher_is_better else b / a)
        if progress:
            progress(f"pair {i + 1}/{pairs}: ours {a:.4g}, baseline {b:.4g}, ratio {ratios[-1]:.3f}")
    return summarise(ratios, a_vals, b_vals)


def demo() -> None:
    import time

    def sleeper(seconds):
        def run():
            start = time.perf_counter()
            time.sleep(seconds)
            return time.perf_counter() - start
        return run

    print(paired_ratio(sleeper(0.01), sleeper(0.02), pairs=10, higher_is_better=False)["ratio"])
