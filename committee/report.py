"""The round report: `round_<N>/report.md` and its plots `round_<N>/plots/*.png`, from round files only.

What it does: `write_report(run_dir, round_n)` reads
- `round_<N>/eval/leaderboard.json` (required; dev scores of all members of rounds 0..N: what promotion
  used), `eval/test_leaderboard.json` (test scores of the members scored for reports, with their paired
  difference against r0-sft) and `eval/winrates.json` (falls back to recomputing win rates from
  `eval/samples.jsonl`);
- every `round_<M>/manifest.json` (M <= N) if present, for `rm_accuracy` (a number, or a dict with
  `accuracy` / `pairwise_accuracy`), `promotion` ({promoted, committee, reason}) and stage timings
  (`stages`: {stage: {status, seconds}} or `timings`: {stage: seconds});
- each RL member's `metrics.jsonl` (records holding both `kl` and `reward`) for its reward-KL path;
and writes four plots with matplotlib's Agg backend: dev accuracy by domain and round (the round's
promoted member, else its best), RM accuracy by round, the verifier-judged win-rate matrix as a heat map, and
reward against KL for RL members (mdloo / rloo, or any member with `kl` in its entry). A plot without
data is skipped and the report says so. No model is loaded.

What it simplifies: one member per round in the accuracy plot; the full table is in the report.

Run: `python -c "from committee.report import write_report; write_report('runs/default', 1)"`;
tests: `python -m pytest tests/committee/test_report.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

from committee.evaluation import (
    JUDGE,
    WINRATES_FILE,
    as_run,
    read_leaderboard,
    read_samples,
    win_rates,
)
from committee.report_eval import read_test
from committee.promotion import rank_key

RL_RECIPES = ("mdloo", "rloo")
_SECONDS_KEYS = ("seconds", "duration_s", "elapsed_s", "wall_s", "time_s")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _rm_accuracy(manifest: dict | None) -> float | None:
    value = (manifest or {}).get("rm_accuracy")
    if isinstance(value, dict):
        value = value.get("accuracy", value.get("pairwise_accuracy"))
    return float(value) if isinstance(value, (int, float)) else None


def _timings(manifest: dict | None) -> dict[str, float]:
    manifest = manifest or {}
    out = {k: float(v) for k, v in (manifest.get("timings") or {}).items() if isinstance(v, (int, float))}
    for stage, info in (manifest.get("stages") or {}).items():
        info = info if isinstance(info, dict) else {}
        secs = [info[k] for k in _SECONDS_KEYS if isinstance(info.get(k), (int, float))]
        if secs:
            out.setdefault(stage, float(secs[0]))
    return out


def _round_representatives(entries: list[dict]) -> dict[int, dict]:
    """Per round: its promoted member with the best dev mean, else its best member."""
    out: dict[int, dict] = {}
    rank = sorted(entries, key=lambda e: (not e.get("promoted"), -((e.get("dev") or {}).get("mean") or -1.0)))
    for e in rank:
        out.setdefault(e["round"], e)
    return dict(sorted(out.items()))


def plot_accuracy(entries: list[dict], file: Path, plt) -> str:
    reps = _round_representatives(entries)
    domains = sorted({d for e in reps.values() for d in e["dev"] if d != "mean"}) + ["mean"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(reps), 1)
    for k, (round_n, e) in enumerate(reps.items()):
        values = [e["dev"].get(d) or 0.0 for d in domains]
        ax.bar([i + k * width for i in range(len(domains))], values, width, label=f"round {round_n}: {e['member']}")
    ax.set_xticks([i + width * (len(reps) - 1) / 2 for i in range(len(domains))], domains)
    ax.set_ylim(0, 1)
    ax.set_ylabel("dev accuracy (solved share)")
    ax.set_title("Dev accuracy by domain and round (what promotion reads)")
    ax.legend(fontsize=8)
    _save(fig, file, plt)
    return "accuracy by domain and round (each round's promoted member, else its best)"


def plot_rm_accuracy(by_round: dict[int, float], file: Path, plt) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    rounds = sorted(by_round)
    ax.plot(rounds, [by_round[r] for r in rounds], marker="o")
    ax.set_xticks(rounds)
    ax.set_ylim(0, 1)
    ax.set_xlabel("round")
    ax.set_ylabel("pairwise accuracy")
    ax.set_title("RM accuracy on test-split synthetic pairs")
    _save(fig, file, plt)
    return "reward-model accuracy by round"


def plot_winrates(members: list[str], matrix: list[list], file: Path, plt) -> str:
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
    ax.set_title("RM-judged win rate (row beats column)")
    fig.colorbar(image, ax=ax)
    _save(fig, file, plt)
    return "win-rate matrix"


def plot_reward_kl(paths: dict[str, list[tuple[float, float]]], file: Path, plt) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in paths.items():
        kl, reward = zip(*points)
        (line,) = ax.plot(kl, reward, marker="." if len(points) > 1 else "o", label=name)
        ax.scatter([kl[-1]], [reward[-1]], marker="*", s=120, color=line.get_color())
    ax.set_xlabel("KL to the reference")
    ax.set_ylabel("reward")
    ax.set_title("Reward against KL (RL members; star = final)")
    ax.legend(fontsize=8)
    _save(fig, file, plt)
    return "reward against KL for the RL members"


def _save(fig, file: Path, plt) -> None:
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    plt.close(fig)


def _reward_kl_paths(run, entries: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """{RL member: [(kl, reward), ...]} from its metrics.jsonl, else its entry's final values."""
    out = {}
    for e in entries:
        if e.get("recipe") not in RL_RECIPES and "kl" not in e:
            continue
        path = Path(e.get("path") or run.member(e["round"], e["member"])) / "metrics.jsonl"
        records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
        points = [(float(r["kl"]), float(r["reward"])) for r in records
                  if isinstance(r.get("kl"), (int, float)) and isinstance(r.get("reward"), (int, float))]
        if not points and isinstance(e.get("kl"), (int, float)) and isinstance(e.get("reward"), (int, float)):
            points = [(float(e["kl"]), float(e["reward"]))]
        if points:
            out[e["member"]] = points
    return out


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _mean_ci(scores: dict | None, ci) -> str:
    return _fmt((scores or {}).get("mean")) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _table(entries: list[dict], test: list[dict] = ()) -> list[str]:
    tests = {e["member"]: e for e in test}
    domains = sorted({d for e in entries for d in (e.get("dev") or {}) if d != "mean"})
    head = ["member", "round", "recipe", "promoted", "dev mean [95% CI]", "test mean [95% CI]",
            *[f"dev {d}" for d in domains], "Elo [95% CI]", "win rate vs prev. best"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in sorted(entries, key=rank_key):
        t, eci = tests.get(e["member"], {}), e.get("elo_ci95")
        elo = _fmt(e.get("elo"), 0) + (f" [{eci[0]:.0f}, {eci[1]:.0f}]" if eci else "")
        cells = [e["member"], str(e["round"]), str(e.get("recipe")), "yes" if e.get("promoted") else "",
                 _mean_ci(e.get("dev"), e.get("dev_ci95")), _mean_ci(t.get("test"), t.get("test_ci95")),
                 *[_fmt(e["dev"].get(d)) for d in domains], elo, _fmt(e.get("winrate_vs_prev_best"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _winrate_matrix(run, round_n: int, entries: list[dict]) -> tuple[list[str], list[list]]:
    stored = _read_json(run.round(round_n) / "eval" / WINRATES_FILE)
    if stored:
        return stored["members"], stored["matrix"]
    members = [e["member"] for e in entries]
    rates = win_rates(read_samples(run, round_n), members)
    return members, [[rates.get((a, b)) for b in members] for a in members]


def write_report(run_dir, round_n: int) -> Path:
    """Write `round_<N>/report.md` and `round_<N>/plots/*.png`; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = as_run(run_dir)
    entries = read_leaderboard(run, round_n)
    manifests = {m: _read_json(run.round(m) / "manifest.json") for m in range(round_n + 1)}
    rm_acc = {m: a for m, a in ((m, _rm_accuracy(x)) for m, x in manifests.items()) if a is not None}
    members, matrix = _winrate_matrix(run, round_n, entries)
    rl_paths = _reward_kl_paths(run, entries)
    plots_dir = run.round(round_n) / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = {  # file -> (data present, draw)
        "accuracy_by_domain.png": (bool(entries), lambda f: plot_accuracy(entries, f, plt)),
        "rm_accuracy.png": (bool(rm_acc), lambda f: plot_rm_accuracy(rm_acc, f, plt)),
        "winrate_matrix.png": (any(v is not None for row in matrix for v in row),
                               lambda f: plot_winrates(members, matrix, f, plt)),
        "reward_vs_kl.png": (bool(rl_paths), lambda f: plot_reward_kl(rl_paths, f, plt)),
    }
    figures = []
    for name, (present, draw) in plots.items():
        if present:
            figures.append(f"![{draw(plots_dir / name)}](plots/{name})")
        else:
            (plots_dir / name).unlink(missing_ok=True)
            figures.append(f"*{name}: skipped, no data for it in this round's files.*")
    test = read_test(run, round_n)
    lines = _markdown(round_n, entries, test, manifests.get(round_n), rm_acc, figures)
    lines[lines.index("## Reward model"):lines.index("## Reward model")] = _versus_round_zero(test)
    report = run.round(round_n) / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _versus_round_zero(test: list[dict]) -> list[str]:
    """Paired test differences of the members scored on test against r0-sft (reports only)."""
    scored = [e for e in test if e.get("vs_baseline")]
    if not scored:
        return []
    lines = ["## Against r0-sft on the test split", "",
             ("Paired difference of test accuracy (mean over domains) on the same prompts, 95% cluster-bootstrap "
              "interval over problems. Test is scored after promotion and never read by it."), ""]
    for e in scored:
        v = e["vs_baseline"]
        low, high = v["ci95"]
        lines.append(f"- {e['member']} - {v['baseline']}: {100 * v['delta']:+.1f} points "
                     f"[{100 * low:+.1f}, {100 * high:+.1f}]")
    return lines + [""]


def _markdown(round_n: int, entries: list[dict], test: list[dict], manifest: dict | None,
              rm_acc: dict[int, float], figures: list[str]) -> list[str]:
    promotion = (manifest or {}).get("promotion") or {}
    promoted = promotion.get("promoted", [e["member"] for e in entries if e.get("promoted") and e["round"] == round_n])
    lines = [f"# Round {round_n} report", "",
             (f"Members evaluated: {len(entries)} (rounds 0..{round_n}). "
              f"Promoted this round: {', '.join(promoted) or 'none'}.")]
    if promotion.get("committee"):
        lines.append(f"Next committee: {', '.join(promotion['committee'])}.")
    if promotion.get("reason"):
        lines += ["", f"Promotion: {promotion['reason']}"]
    lines += ["", "## Leaderboard", "",
              ("Promotion used the **dev** split; the **test** split is scored after promotion, for reports "
               "only, for the best member promoted in each round (`-`: not scored on test). Accuracy is the share "
               "of solved prompts (verifier score 1.0), mean over domains, with a 95% cluster-bootstrap "
               f"interval over problem identities. Elo and win rates are judged by {JUDGE} on dev "
               "(Bradley-Terry, 1000 = average member)."), "",
              *_table(entries, test), "", "## Reward model", ""]
    rm_lines = [f"- round {m}: pairwise accuracy {a:.3f} on test-split synthetic pairs"
                for m, a in sorted(rm_acc.items())]
    lines += rm_lines or ["- no RM accuracy recorded"]
    oracle = (manifest or {}).get("rm_on_committee_answers")
    if oracle and oracle.get("accuracy") is not None:
        lo, hi = oracle["ci95"]
        lines.append(f"- this round's RM on {oracle['pairs']} pairs of the scored members' test answers "
                     f"({oracle['label']}): {oracle['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]")
    timings = _timings(manifest)
    if timings:
        lines += ["", "## Stage timings", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {stage} | {secs:.1f} |" for stage, secs in timings.items()]
    lines += ["", "## Plots", ""]
    for figure in figures:
        lines += [figure, ""]
    return lines
