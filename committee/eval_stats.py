"""Statistics of the evaluation protocol: honest intervals for accuracies and their differences.

What it does (pure functions over graded sample rows `{member, domain, prompt_id, identity, verifier_score}`):
- a prompt is **solved** when its verifier score is 1.0 (code: every hidden test passes); accuracy is the
  share of solved prompts, so every outcome is binary and binomial intervals apply;
- `wilson(k, n)`: the Wilson score 95% interval, which stays inside [0, 1] and keeps a real width at 0% and
  100% (0/200 -> [0, 0.019], where a percentile bootstrap would say [0, 0]);
- `accuracy_report(samples, member)`: per-domain accuracy, n and Wilson interval, the headline mean over
  domains (each domain counts once) and its 95% interval by a **cluster bootstrap over problem identities**:
  within each domain, whole identities are resampled with replacement (prompts of one problem move together,
  so near-copies cannot shrink the interval), then the mean of the domain means is taken;
- `paired_report(samples, a, b)`: a - b on the prompts both members answered, per domain and as the mean
  over domains, with the same cluster bootstrap applied to the per-prompt differences (paired, so the
  problem-to-problem variance that both members share cancels).
A bootstrap interval of a mean that sits at 0 or 1 is widened to the Wilson interval of that extreme, so a
headline of 100% never reports [1, 1].

What it simplifies: domains are weighted equally whatever their size; the cluster bootstrap is a
percentile interval (no BCa correction).

Run: `python -m pytest tests/committee/test_eval_stats.py`.
"""
from __future__ import annotations

import math

import numpy as np

from afm_align.errors import UserError

Z95 = 1.959963984540054


def solved(score) -> float | None:
    """1.0 when a verifier score means solved (1.0), 0.0 otherwise, None when no verifier applies."""
    return None if score is None else float(float(score) >= 1.0 - 1e-9)


def wilson(k: float, n: int, z: float = Z95) -> list[float]:
    """Wilson score interval of a binomial proportion k/n (95% by default); [0, 1] when n is 0."""
    if n <= 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def _clusters(samples: list[dict], member: str, value) -> dict[str, dict[str, list[float]]]:
    """{domain: {identity: [value per prompt]}} of one member's graded samples (identity: prompt id if absent)."""
    out: dict[str, dict[str, list[float]]] = {}
    for s in samples:
        v = value(s)
        if s.get("member") == member and v is not None:
            key = s.get("identity") or s["prompt_id"]
            out.setdefault(s["domain"], {}).setdefault(key, []).append(v)
    return out


def cluster_bootstrap(domains: dict[str, dict[str, list[float]]], n_boot: int = 1000, seed: int = 0) -> list[float]:
    """Percentile 95% interval of the mean over domains, resampling whole identities within each domain."""
    rng = np.random.default_rng(seed)
    means = np.zeros(n_boot)
    for clusters in domains.values():
        sums = np.array([sum(v) for v in clusters.values()])
        counts = np.array([len(v) for v in clusters.values()])
        idx = rng.integers(0, len(sums), size=(n_boot, len(sums)))
        means += sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    means /= max(1, len(domains))
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def _domain_stats(clusters: dict[str, list[float]]) -> dict:
    values = [v for vs in clusters.values() for v in vs]
    k, n = sum(values), len(values)
    return {"accuracy": round(k / n, 4), "n": n, "problems": len(clusters), "ci95": wilson(k, n)}


def accuracy_report(samples: list[dict], member: str, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """{"per_domain": {d: {accuracy, n, problems, ci95}}, "mean", "ci95", "n"} of one member (solved = 1.0)."""
    domains = _clusters(samples, member, lambda s: solved(s.get("verifier_score")))
    if not domains:
        raise UserError(f"member '{member}' has no verifier-graded samples.")
    per_domain = {d: _domain_stats(c) for d, c in sorted(domains.items())}
    mean = round(float(np.mean([v["accuracy"] for v in per_domain.values()])), 4)
    ci = cluster_bootstrap(domains, n_boot, seed)
    n = sum(v["n"] for v in per_domain.values())
    if mean in (0.0, 1.0):  # a bootstrap of an all-or-nothing mean has no width: use the exact extreme
        ci = wilson(mean * n, n)
    return {"per_domain": per_domain, "mean": mean, "ci95": ci, "n": n}


def paired_report(samples: list[dict], member_a: str, member_b: str, *, n_boot: int = 1000,
                  seed: int = 0) -> dict:
    """{"per_domain": {d: {delta, ci95, n}}, "delta", "ci95"}: a - b on the prompts both solved-or-not."""
    def solved_of(member):
        return {(s["domain"], s["prompt_id"]): (solved(s.get("verifier_score")), s.get("identity") or s["prompt_id"])
                for s in samples if s.get("member") == member and s.get("verifier_score") is not None}

    a, b = solved_of(member_a), solved_of(member_b)
    for name, graded in ((member_a, a), (member_b, b)):
        if not graded:
            raise UserError(f"member '{name}' has no verifier-graded samples.")
    domains: dict[str, dict[str, list[float]]] = {}
    for key in sorted(set(a) & set(b)):
        domains.setdefault(key[0], {}).setdefault(a[key][1], []).append(a[key][0] - b[key][0])
    if not domains:
        raise UserError(f"members '{member_a}' and '{member_b}' share no graded prompt.")
    per_domain = {}
    for d, clusters in sorted(domains.items()):
        values = [v for vs in clusters.values() for v in vs]
        per_domain[d] = {"delta": round(float(np.mean(values)), 4), "n": len(values),
                         "ci95": cluster_bootstrap({d: clusters}, n_boot, seed)}
    delta = round(float(np.mean([v["delta"] for v in per_domain.values()])), 4)
    return {"per_domain": per_domain, "delta": delta, "ci95": cluster_bootstrap(domains, n_boot, seed)}


def seed_interval(values: list[float]) -> list[float] | None:
    """95% t-interval of the mean over pipeline seeds (covers seed-to-seed variance); None below 2 seeds."""
    from statistics import mean, stdev

    if len(values) < 2:
        return None
    t975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}
    half = t975.get(len(values), 1.96) * stdev(values) / math.sqrt(len(values))
    return [round(mean(values) - half, 4), round(mean(values) + half, 4)]
