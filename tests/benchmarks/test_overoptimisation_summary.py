"""The over-optimisation benchmark's summary over seeds: gold gains of best-of-n-max over N = 1 and of the RM-only
MDLOO policy over r0-sft, with a t-interval only from two seeds on."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.overoptimisation import summary  # noqa: E402


def _seed(gold_1, gold_n, proxy_1, proxy_n, sft, mdloo):
    return {"best_of_n": [{"n": 1, "gold": gold_1, "proxy": proxy_1}, {"n": 16, "gold": gold_n, "proxy": proxy_n}],
            "dev_gold_r0_sft": sft, "dev_gold_mdloo": mdloo}


def test_summary_gains_and_intervals():
    s = summary([_seed(0.5, 0.4, 0.0, 2.0, 0.3, 0.2), _seed(0.6, 0.4, 1.0, 2.0, 0.3, 0.4)])
    assert s["bon_gold_gain"]["per_seed"] == [-0.1, -0.2] and s["bon_gold_gain"]["mean"] == pytest.approx(-0.15)
    assert s["bon_proxy_gain"]["mean"] == 1.5
    assert s["mdloo_gold_gain"]["per_seed"] == [-0.1, 0.1] and s["mdloo_gold_gain"]["mean"] == pytest.approx(0.0)
    low, high = s["bon_gold_gain"]["ci95"]
    assert low < -0.15 < high  # t-interval with 1 degree of freedom: 12.706 * 0.05 around the mean
    assert high - low == pytest.approx(2 * 12.706 * 0.05, abs=2e-4)
    assert summary([_seed(0.5, 0.4, 0.0, 2.0, 0.3, 0.2)])["mdloo_gold_gain"]["ci95"] is None
