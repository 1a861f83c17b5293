"""The evaluation protocol's statistics on hand-worked numbers: Wilson intervals, cluster bootstrap, pairing."""
import pytest

from committee.eval_stats import accuracy_report, paired_report, seed_interval, solved, wilson


def _row(member, pid, domain, score, identity=None):
    return {"member": member, "prompt_id": pid, "domain": domain, "verifier_score": score, "identity": identity}


def test_wilson_stays_honest_at_zero_and_one_hundred_percent():
    assert wilson(0, 200) == [0.0, 0.0188]
    assert wilson(200, 200) == [0.9812, 1.0]
    lo, hi = wilson(9, 9)  # 9/9: the percentile bootstrap said [1, 1]
    assert lo == pytest.approx(0.7009, abs=1e-4) and hi == 1.0
    assert wilson(5, 10) == [pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4)]
    assert wilson(0, 0) == [0.0, 1.0]


def test_solved_means_a_verifier_score_of_one():
    assert [solved(x) for x in (1.0, 0.99, 0.5, 0, None)] == [1.0, 0.0, 0.0, 0.0, None]


def test_accuracy_is_the_mean_over_domains_of_solved_shares_with_wilson_per_domain():
    samples = [_row("a", f"m{i}", "math", s) for i, s in enumerate([1, 0, 1, 1])]
    samples += [_row("a", "c0", "code", 1.0), _row("a", "c1", "code", 0.5), _row("a", "g0", "general", None)]
    report = accuracy_report(samples, "a", n_boot=500, seed=0)
    assert {d: v["accuracy"] for d, v in report["per_domain"].items()} == {"code": 0.5, "math": 0.75}
    assert report["mean"] == pytest.approx(0.625)  # each domain counts once, general (no verifier) left out
    assert report["per_domain"]["math"]["ci95"] == wilson(3, 4)
    assert report["ci95"][0] < 0.625 < report["ci95"][1]
    assert accuracy_report(samples, "a", n_boot=500, seed=0) == report  # seeded
    with pytest.raises(ValueError, match="no verifier-graded"):
        accuracy_report(samples, "nobody")


def test_an_all_solved_member_gets_a_wilson_interval_not_a_point():
    samples = [_row("a", f"p{i}", "safety", 1.0) for i in range(9)]
    report = accuracy_report(samples, "a", n_boot=200)
    assert report["mean"] == 1.0 and report["ci95"] == wilson(9, 9) and report["ci95"][0] < 0.71


def test_the_cluster_bootstrap_moves_near_copies_together():
    # 4 problems, 25 near-copies each: 2 problems solved, 2 not. Distinct prompts would give a narrow interval;
    # clustered by identity, the effective sample is 4 problems and the interval must be wide.
    clustered = [_row("a", f"p{k}-{j}", "math", float(k < 2), identity=f"id{k}") for k in range(4) for j in range(25)]
    distinct = [{**r, "identity": None} for r in clustered]
    wide = accuracy_report(clustered, "a", n_boot=2000, seed=1)["ci95"]
    narrow = accuracy_report(distinct, "a", n_boot=2000, seed=1)["ci95"]
    assert wide[1] - wide[0] > 2 * (narrow[1] - narrow[0])
    assert wide[0] <= 0.25 and wide[1] >= 0.75


def test_paired_report_is_paired_on_shared_prompts_per_domain():
    a = [_row("a", f"p{i}", "math", 1.0) for i in range(10)] + [_row("a", "x", "math", 0.0)]
    b = [_row("b", f"p{i}", "math", float(i < 4)) for i in range(10)]
    report = paired_report(a + b, "a", "b", n_boot=500, seed=0)
    assert report["delta"] == pytest.approx(0.6) and report["per_domain"]["math"]["n"] == 10
    assert 0 < report["ci95"][0] < 0.6 < report["ci95"][1] <= 1.0
    with pytest.raises(ValueError, match="share no graded"):
        paired_report([_row("a", "x", "math", 1), _row("b", "y", "math", 1)], "a", "b")


def test_seed_interval_is_a_t_interval_over_seeds():
    lo, hi = seed_interval([0.05, 0.10, 0.15])  # mean 0.1, sd 0.05, t(2) = 4.303
    assert lo == pytest.approx(0.1 - 4.303 * 0.05 / 3 ** 0.5, abs=1e-4) and hi == pytest.approx(0.1 + 4.303 * 0.05 / 3 ** 0.5, abs=1e-4)
    assert seed_interval([0.1]) is None
