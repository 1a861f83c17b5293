"""The round report's figures: each `draw_*` builds one matplotlib figure from plain data and returns it.

What it does (`committee.report` reads the round files, calls these and saves each figure with `save`):
- `draw_accuracy`: dev accuracy by domain for one member per round, with 95% intervals as error bars
  (per domain: Wilson over the domain's n prompts; mean: cluster bootstrap over problems). A bar of 0 has
  no height, so every bar under `SMALL` gets a stub marker at the axis and its value written above it
  ("0", "0.01"); a domain with no score says "n/a" - a missing score is never drawn as a zero.
- `draw_rm_accuracy`: the RM's pairwise accuracy by round, with each grading head's accuracy when recorded.
- `draw_winrates`: the verifier-judged win-rate matrix as a heat map.
- `draw_reward_kl`: reward against KL to the reference for the RL members. The logged `kl` is TRL RLOO's
  k1 estimate: the mean over sampled tokens of log pi_old(y) - log pi_ref(y), in nats per token. It is
  unbiased for KL(pi_old || pi_ref) >= 0, but one batch's estimate is a noisy mean of signed log-ratios and
  dips below zero when the policy is still close to the reference. So single logged steps are drawn as
  faint dots and the path as a trailing mean over `KL_WINDOW` logged steps; a line at KL = 0 marks the
  floor of the true divergence. (A non-negative estimator - k3, exp(r) - 1 - r per token - needs per-token
  log-ratios, which metrics.jsonl does not hold.)

What it simplifies: fixed figure sizes; no styling beyond matplotlib's defaults.

Run: through `committee.report.write_report`; tests: `python -m pytest tests/committee/test_report_plots.py`.
"""
from __future__ import annotations

from pathlib import Path

SMALL = 0.03  # bars below this height are hard to see: they get a stub marker and their value written
KL_WINDOW = 5  # logged steps in the trailing mean of the reward-KL path
KL_LABEL = ("KL to the reference, nats/token (k1: mean log pi/pi_ref over sampled tokens;\n"
            f"one batch's estimate can dip below 0; lines: trailing mean of {KL_WINDOW} logged steps)")


def trailing_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and up to `window - 1` values before it (same length as `values`)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def save(fig, file: Path, plt) -> None:
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    plt.close(fig)


def _error(value: float, ci) -> tuple[float, float]:
    if not ci:
        return 0.0, 0.0
    return max(0.0, value - ci[0]), max(0.0, ci[1] - value)


def draw_accuracy(reps: dict[int, dict], stats: dict[str, dict], plt):
    """Bars of dev accuracy by domain, one colour per round (`reps`: {round: entry}); `stats`: {member: {domain:
    {accuracy, n, ci95}}} for the error bars (the mean's interval is the entry's `dev_ci95`)."""
    domains = sorted({d for e in reps.values() for d in e["dev"] if d != "mean"}) + ["mean"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(reps), 1)
    for k, (round_n, e) in enumerate(reps.items()):
        xs = [i + k * width for i in range(len(domains))]
        values = [e["dev"].get(d) for d in domains]
        cis = [e.get("dev_ci95") if d == "mean" else (stats.get(e["member"], {}).get(d) or {}).get("ci95")
               for d in domains]
        heights = [v or 0.0 for v in values]
        errors = list(zip(*[_error(h, ci) if v is not None else (0.0, 0.0) for h, v, ci in zip(heights, values, cis)]))
        bars = ax.bar(xs, heights, width, yerr=errors, capsize=2, error_kw={"elinewidth": 0.8},
                      label=f"round {round_n}: {e['member']}")
        colour = bars.patches[0].get_facecolor()
        for x, v, above in zip(xs, values, errors[1]):
            if v is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            elif v < SMALL:  # a stub at the axis, the value above the error bar
                ax.plot([x], [0.0], marker="_", markersize=max(6, 200 * width), markeredgewidth=3, color=colour,
                        clip_on=False, gid="small-bar-stub")
                ax.text(x, v + above + 0.01, "0" if v == 0 else f"{v:.3f}", ha="center", va="bottom", fontsize=6,
                        rotation=90)
    ax.set_xticks([i + width * (len(reps) - 1) / 2 for i in range(len(domains))], domains)
    ax.set_ylim(0, 1)
    ax.set_ylabel("dev accuracy (solved share)")
    ax.set_title("Dev accuracy by domain and round (what promotion reads); bars: 95% intervals", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def draw_rm_accuracy(by_round: dict[int, float], heads: dict[int, dict[str, float]], plt):
    """The RM's pairwise accuracy by round (solid) and each grading head's accuracy (dashed) where recorded."""
    fig, ax = plt.subplots(figsize=(6, 4))
    rounds = sorted(by_round)
    ax.plot(rounds, [by_round[r] for r in rounds], marker="o", linewidth=2, label="pairwise (ranking)")
    for dim in sorted({d for h in heads.values() for d in h}):
        points = [(r, heads[r][dim]) for r in sorted(heads) if isinstance(heads[r].get(dim), (int, float))]
        if points:
            ax.plot(*zip(*points), marker=".", linestyle="--", label=f"head: {dim}")
    ax.set_xticks(sorted(set(rounds) | set(heads)))
    ax.set_ylim(0, 1)
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.set_title("RM accuracy on test-split synthetic pairs")
    ax.legend(fontsize=7)
    return fig


def draw_winrates(members: list[str], matrix: list[list], plt):
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    size = 2.5 + 0.6 * len(members)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(grid, cmap="RdBu", vmin=0, vmax=1)
    ax.set_xticks(range(len(members)), members, rotation=45, ha="right")
    ax.set_yticks(range(len(members)), members)
    for i in range(len(members)):
        for j in range(len(members)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("opponent")
    ax.set_title("Verifier-judged win rate (row beats column)")
    fig.colorbar(image, ax=ax)
    return fig


def draw_reward_kl(paths: dict[str, list[tuple[float, float]]], plt):
    """Per RL member: logged (kl, reward) steps as faint dots, their trailing mean as the path, a star at its end."""
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for name, points in paths.items():
        kl, reward = (list(v) for v in zip(*points))
        kl_s, reward_s = trailing_mean(kl, KL_WINDOW), trailing_mean(reward, KL_WINDOW)
        (line,) = ax.plot(kl_s, reward_s, marker="." if len(points) > 1 else "o", label=f"{name} (trailing mean)")
        ax.scatter(kl, reward, s=10, alpha=0.3, color=line.get_color())
        ax.scatter([kl_s[-1]], [reward_s[-1]], marker="*", s=120, color=line.get_color())
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(KL_LABEL, fontsize=8)
    ax.set_ylabel("reward (per sampling step)")
    ax.set_title("Reward against KL (RL members; dots: single steps, star: final)", fontsize=10)
    ax.legend(fontsize=8)
    return fig
