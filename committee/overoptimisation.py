"""Over-optimisation curves: the proxy reward (the round's RM) beside the hidden gold score of the same answers.

Open-ended prompts (synth.families.OPEN_ENDED) have no verifier: the policy is trained on the RM alone, and the
RM is only a proxy of the hidden gold rubric (committee.gold_store). Pushed far enough, the proxy keeps rising
while the gold turns down (Gao et al. 2022, "Scaling laws for reward model overoptimization"). Two views:
- `mdloo_curve(member_dir, gold)`: along an MDLOO run, per sampling step, the mean RM score (proxy) and the mean
  gold score of that step's open-ended rollouts (`rollouts.jsonl`, alignment.mdloo.RolloutLog), against the
  step's logged `kl` (`metrics.jsonl`; TRL's k1 estimate in nats/token, noisy, can dip below 0);
- `best_of_n_curve(prompts, samples, rm_scores, gold)`: best-of-N by RM score among the first N samples of each
  prompt, against N; the KL of best-of-N to the sampling policy is bounded analytically by log N - (N-1)/N
  (Stiennon et al. 2020, appendix; Gao et al. 2022, eq. 1), so N is an optimisation budget with no training.
`draw_overoptimisation` draws both (one run; `draw_over_seeds`: several, faint per seed and their mean bold;
`draw_mdloo_arms`: MDLOO runs of several rewards side by side; `coarsen` keeps a long run's curve short);
`round_overoptimisation(run_root, round_n)` computes both for a finished round and writes
`round_N/plots/overoptimisation.png` and `round_N/eval/overoptimisation.json`.

Step matching: a rollout's `step` is the trainer's `global_step` when its batch was sampled (0, m, 2m, ... with m
inner steps); TRL logs that batch's `kl` with the next log record, at step + 1. So a rollout step takes the first
logged `kl` after it and no later than the next sampling step.

What it simplifies: means only (no intervals per step); best-of-N over one member's committee samples, which are
few per prompt (K) and of one temperature; the proxy is the raw RM logit (unnormalised), hence two y axes.

Run: `python -m pytest tests/committee/test_overoptimisation.py`; over seeds: `benchmarks/overoptimisation.py`.
"""
from __future__ import annotations

import json
import math
from bisect import bisect_right
from pathlib import Path

from synth.families import OPEN_ENDED

PLOT_FILE = "overoptimisation.png"
JSON_FILE = "overoptimisation.json"
PROXY_LABEL = "proxy: RM score (logit, unnormalised)"
GOLD_LABEL = "gold: hidden rubric score (0-1)"


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def kl_bound(n: int) -> float:
    """The analytic KL (nats) of best-of-n to the sampling policy: log n - (n - 1) / n."""
    return math.log(n) - (n - 1) / n


def mdloo_curve(member_dir, gold: dict[str, dict], domains=OPEN_ENDED) -> list[dict]:
    """Per sampling step: {step, kl, proxy, gold, n} over the open-ended rollouts whose prompt has gold."""
    from committee.gold_store import gold_parts

    member_dir = Path(member_dir)
    by_step: dict[int, list[dict]] = {}
    for r in _jsonl(member_dir / "rollouts.jsonl"):
        by_step.setdefault(int(r["step"]), []).append(r)
    logged = sorted((int(m["step"]), float(m["kl"])) for m in _jsonl(member_dir / "metrics.jsonl")
                    if m.get("source", "trainer") == "trainer" and m.get("kl") is not None and "step" in m)
    kl_steps = [s for s, _ in logged]
    sampled = sorted(by_step)
    curve = []
    for i, step in enumerate(sampled):
        used = [r for r in by_step[step] if r.get("domain") in domains and r.get("prompt_id") in gold
                and r.get("reward_model") is not None]
        if not used:
            continue
        j = bisect_right(kl_steps, step)  # the first kl logged after the sampling step ...
        upto = sampled[i + 1] if i + 1 < len(sampled) else math.inf  # ... and not after the next one
        kl = logged[j][1] if j < len(logged) and logged[j][0] <= upto else None
        golds = [gold_parts(r["domain"], r["completion"], gold[r["prompt_id"]])["score"] for r in used]
        curve.append({"step": step, "kl": kl, "proxy": _mean([float(r["reward_model"]) for r in used]),
                      "gold": _mean(golds), "n": len(used)})
    return curve


def coarsen(curve: list[dict], points: int) -> list[dict]:
    """At most `points` points of an `mdloo_curve`, each over consecutive sampling steps: its last step, the mean
    of its logged KLs (None when none), and the proxy and gold means weighted by rollouts. Why: a long run (768
    steps) is kept in a result file and drawn as a few dozen points, which also smooths each step's noise."""
    if points < 1:
        raise ValueError("coarsen: points must be at least 1")
    size = max(1, math.ceil(len(curve) / points))
    out = []
    for at in range(0, len(curve), size):
        chunk = curve[at:at + size]
        n = sum(p["n"] for p in chunk)
        kls = [p["kl"] for p in chunk if p.get("kl") is not None]
        out.append({"step": chunk[-1]["step"], "kl": _mean(kls) if kls else None, "n": n,
                    **{key: sum(p[key] * p["n"] for p in chunk) / n for key in ("proxy", "gold")}})
    return out


def powers_of_two(k: int) -> list[int]:
    """1, 2, 4, ... up to k, and k itself."""
    ns = [2 ** i for i in range(k.bit_length()) if 2 ** i <= k]
    return ns + ([k] if k and ns[-1] != k else [])


def best_of_n_curve(prompts: list[str], samples: dict[str, list[str]], rm_scores: dict[str, list[float]],
                    gold: dict[str, list[float]], ns=None) -> list[dict]:
    """Per N: the best-of-N answer of each prompt with at least N samples (the highest RM score among its first N
    samples, in their fixed order; ties go to the earliest), and {n, kl_bound, proxy, gold, words, prompts}: the
    mean RM score, mean gold score and mean length in words of the picked answers over those prompts.

    `samples`, `rm_scores` and `gold` hold, per prompt id, the sample texts and each one's RM and gold score in
    the same order; `ns` defaults to 1, 2, 4, ... up to the most samples of a prompt.
    """
    k = max((len(samples.get(p, ())) for p in prompts), default=0)
    curve = []
    for n in ns or powers_of_two(k):
        picks = []
        for p in prompts:
            if len(samples.get(p, ())) >= n:
                scores = rm_scores[p][:n]
                best = scores.index(max(scores))  # index() returns the first maximum: ties go to the earliest
                picks.append((scores[best], gold[p][best], len(samples[p][best].split())))
        if picks:
            proxy, golds, words = zip(*picks)
            curve.append({"n": n, "kl_bound": round(kl_bound(n), 6), "proxy": _mean(proxy), "gold": _mean(golds),
                          "words": _mean(words), "prompts": len(picks)})
    return curve


# ---- figures -------------------------------------------------------------------------------------------------

def mean_curve(curves: list[list[dict]], keys=("proxy", "gold", "kl")) -> list[dict]:
    """Point-wise mean of curves (by position, up to the shortest); a key missing in any point is left out."""
    points = []
    for column in zip(*curves):
        point = dict(column[0])
        for key in keys:
            values = [c.get(key) for c in column]
            point[key] = _mean(values) if values and None not in values else None
        points.append(point)
    return points


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(ax, xs, ys, color, *, bold: bool, label: str | None):
    """A bold line (one run, or the mean over runs) or a faint one (one of several runs)."""
    ax.plot(xs, ys, color=color, linewidth=2.2 if bold else 1.0, alpha=1.0 if bold else 0.35, label=label,
            marker="." if bold else None)


def _mdloo_panel(ax, curves: list[list[dict]]) -> None:
    from committee.report_plots import KL_LABEL, KL_WINDOW, trailing_mean

    curves = [[p for p in c if p.get("kl") is not None] for c in curves]
    curves = [c for c in curves if c]
    if not curves:
        ax.text(0.5, 0.5, "no MDLOO member this round\n(or no open-ended rollouts with gold)", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    twin = ax.twinx()
    single = len(curves) == 1
    lines = [(c, single) for c in curves] + ([] if single else [(mean_curve(curves), True)])
    for c, bold in lines:
        kl = trailing_mean([p["kl"] for p in c], KL_WINDOW)
        for axis, key, color, label in ((ax, "proxy", "C0", PROXY_LABEL), (twin, "gold", "C1", GOLD_LABEL)):
            if single:  # single steps as faint dots, their trailing mean as the line
                axis.scatter([p["kl"] for p in c], [p[key] for p in c], s=9, alpha=0.3, color=color)
            _series(axis, kl, trailing_mean([p[key] for p in c], KL_WINDOW), color, bold=bold,
                    label=label if bold else None)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.locator_params(axis="x", nbins=5)
    ax.set_xlabel(KL_LABEL, fontsize=7)
    ax.set_ylabel(PROXY_LABEL, color="C0")
    twin.set_ylabel(GOLD_LABEL, color="C1")
    ax.set_title("(a) RL on the RM (MDLOO): proxy and gold against KL", fontsize=9)
    _legend(ax, twin)


def _bon_panel(ax, curves: list[list[dict]]) -> None:
    curves = [c for c in curves if c]
    if not curves:
        ax.text(0.5, 0.5, "no best-of-N samples\n(no open-ended prompts with gold)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return
    twin = ax.twinx()
    ns = sorted({p["n"] for c in curves for p in c})
    single = len(curves) == 1
    for c, bold in [(c, single) for c in curves] + ([] if single else [(_mean_by_n(curves), True)]):
        for axis, key, color, label in ((ax, "proxy", "C0", PROXY_LABEL), (twin, "gold", "C1", GOLD_LABEL)):
            _series(axis, [p["n"] for p in c], [p[key] for p in c], color, bold=bold,
                    label=label if bold else None)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [f"{n}\n{kl_bound(n):.2f}" for n in ns], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("N: samples per prompt, best of N by RM score (log2)\n"
                  "second row: its KL to the sampler, log N - (N-1)/N nats", fontsize=7)
    ax.set_ylabel(PROXY_LABEL, color="C0")
    twin.set_ylabel(GOLD_LABEL, color="C1")
    ax.set_title("(b) best-of-N on the RM: proxy and gold of the pick", fontsize=9)
    _legend(ax, twin)


def _mean_by_n(curves: list[list[dict]]) -> list[dict]:
    """The mean over curves at each N every curve has."""
    common = set.intersection(*({p["n"] for p in c} for c in curves))
    return mean_curve([[p for p in c if p["n"] in common] for c in curves], keys=("proxy", "gold"))


def _legend(ax, twin) -> None:
    handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="best")


def draw_over_seeds(mdloo: list[list[dict]], bon: list[list[dict]], title: str, plt=None):
    """Both panels for several runs: each run's line faint, the point-wise mean bold (one run: bold, with dots)."""
    plt = plt or _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _mdloo_panel(left, mdloo)
    _bon_panel(right, bon)
    fig.suptitle(title, fontsize=10)
    return fig


def draw_mdloo_arms(arms: dict[str, list[list[dict]]], title: str, plt=None):
    """One panel per MDLOO run kind (e.g. rewarded by the RM, rewarded by the gold): the RM score (proxy) and the
    gold of its rollouts against KL, each seed faint and their mean bold. Why: beside a run on the RM, a run on
    the gold shows whether the RM sees the gold rise when the policy does climb it."""
    plt = plt or _pyplot()
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(6 * max(1, len(arms)), 4.8), squeeze=False)
    for ax, (name, curves) in zip(axes[0], arms.items()):
        _mdloo_panel(ax, curves)
        ax.set_title(f"MDLOO rewarded by {name}: RM score and gold of its rollouts against KL", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def draw_overoptimisation(mdloo: list[dict], bon: list[dict], title: str, plt=None):
    """Both panels for one run: (a) proxy and gold against KL along the MDLOO run, (b) against best-of-N's N."""
    return draw_over_seeds([mdloo] if mdloo else [], [bon] if bon else [], title, plt)


# ---- a round of a run ----------------------------------------------------------------------------------------

def _bon_member(responses: list[dict], start: str | None) -> str:
    counts: dict[str, int] = {}
    for r in responses:
        counts[r["member"]] = counts.get(r["member"], 0) + 1
    return start if start in counts else max(counts, key=counts.get)


def _sample_index(row: dict) -> int:
    tail = str(row.get("id", "")).rsplit("-", 1)[-1]  # ids are f"{member}-{prompt_id}-{j}"
    return int(tail) if tail.isdigit() else 0


def _round_best_of_n(root: Path, gold: dict[str, dict], start: str | None,
                     batch_size: int) -> tuple[str | None, int, list]:
    """(member, K, curve): best-of-N for N = 1..K over one member's open-ended committee samples of the round."""
    from afm_align.store import read_rows
    from alignment import rewards
    from committee.gold_store import gold_scores

    responses = read_rows(root / "responses", "response") if (root / "responses").is_dir() else []
    member = _bon_member(responses, start) if responses else None
    rows = sorted((r for r in responses if r["member"] == member and r["domain"] in OPEN_ENDED
                   and r["prompt_id"] in gold), key=lambda r: (r["prompt_id"], _sample_index(r)))
    scores: list[float] = []
    if rows:  # only the open-ended answers are scored, in batches
        scorer = rewards.load_rm(root / "rm")
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            scores += [float(s) for s in scorer([r["prompt"] for r in chunk], [r["completion"] for r in chunk])]
    prompts, samples, rm, gd = [], {}, {}, {}
    for r, s, g in zip(rows, scores, gold_scores(rows, gold)):
        if r["prompt_id"] not in samples:
            prompts.append(r["prompt_id"])
        samples.setdefault(r["prompt_id"], []).append(r["completion"])
        rm.setdefault(r["prompt_id"], []).append(s)
        gd.setdefault(r["prompt_id"], []).append(g)
    k = max((len(v) for v in samples.values()), default=0)
    return member, k, best_of_n_curve(prompts, samples, rm, gd, ns=list(range(1, k + 1)))


def round_overoptimisation(run_root, round_n: int, *, batch_size: int = 64) -> dict | None:
    """Both curves of finished round `round_n` (>= 1): its MDLOO member's run and best-of-N over one member's
    committee samples (the round's start member, else the one with most responses), scored by the round's RM and
    the round's gold; writes the figure and the JSON. None when the round has no open-ended prompts, and for
    round 0 (its gold file holds the dev and test prompts', and it trains no member on an RM)."""
    from afm_align.store import write_json_atomic
    from committee.gold_store import GOLD_FILE, read_gold

    root = Path(run_root) / f"round_{round_n}"
    gold = read_gold(root / GOLD_FILE) if round_n >= 1 else {}
    if not gold:
        return None
    manifest_file = root / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else {}
    mdloo_dir = root / "members" / f"r{round_n}-mdloo"
    mdloo = mdloo_curve(mdloo_dir, gold)
    member, k, bon = _round_best_of_n(root, gold, manifest.get("start"), batch_size)
    out = {"round": round_n, "mdloo_member": mdloo_dir.name if mdloo else None, "mdloo": mdloo,
           "best_of_n_member": member, "best_of_n_k": k, "best_of_n_prompts": bon[0]["prompts"] if bon else 0,
           "best_of_n": bon, "domains": list(OPEN_ENDED), "rm": f"round_{round_n}/rm",
           "gold": f"round_{round_n}/{GOLD_FILE}", "plot": f"round_{round_n}/plots/{PLOT_FILE}"}
    plt = _pyplot()
    fig = draw_overoptimisation(mdloo, bon, f"Round {round_n}: over-optimisation on open-ended prompts "
                                            f"(best-of-N over {member}'s {k} samples per prompt)", plt)
    (root / "plots").mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(root / "plots" / PLOT_FILE, dpi=100)
    plt.close(fig)
    write_json_atomic(root / "eval" / JSON_FILE, out)
    return out
