"""The round report: `round_<N>/report.md` and its plots `round_<N>/plots/*.png`, from round files only.

What it does: `write_report(run_dir, round_n)` reads
- `round_<N>/eval/leaderboard.json` (required; dev scores of all members of rounds 0..N: what promotion
  used, with per-domain n and Wilson intervals in `dev_domains`), `eval/test_leaderboard.json` of rounds 0..N
  (test scores of the members scored for reports, with `test_domains` and their paired difference against
  r0-sft), `eval/winrates.json` (else win rates recomputed from `eval/samples.jsonl`) and `eval/samples.jsonl`
  (sample outputs; per-domain intervals where an entry has no stored `dev_domains`);
- every `round_<M>/manifest.json` (M <= N) if present, for `rm_accuracy` (a number, or a dict with
  `accuracy`, `n_pairs`, `grading` {head: accuracy}), `promotion` ({promoted, committee, reason}) and stage
  timings (`stages`: {stage: {status, seconds}} or `timings`: {stage: seconds}); `round_<M>/rm/rm_metrics.json`
  for each grading head's majority-class baseline (and its accuracy where the manifest lacks it);
- each RL member's `metrics.jsonl` (records holding both `kl` and `reward`) for its reward-KL path, and
  every round-N member's `metrics.jsonl` for its training curves (`committee.training_curves`);
and writes report.md: the leaderboard (per-domain cells with 95% intervals and n), test accuracy by domain,
a cross-round summary (each round's promoted member, dev and test means, deltas), the paired test difference
against r0-sft, the RM's pairwise and grading-head accuracies per round, sample outputs of the top members
(`committee.report_samples`), stage timings, the plots (`committee.report_plots`: dev accuracy by domain
and round, RM accuracy by round, the verifier-judged win-rate matrix, reward against KL) and each member's
training curves. A plot without data is skipped and the report says so. No model is loaded.

What it simplifies: one member per round in the accuracy plot and the cross-round table; the full
table is the leaderboard.

Run: `python -c "from committee.report import write_report; write_report('runs/default', 1)"`;
tests: `python -m pytest tests/committee/test_report.py tests/committee/test_report_sections.py
tests/committee/test_report_plots.py`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from afm_align.context_copy import copies
from committee.evaluation import JUDGE, WINRATES_FILE, as_run, read_leaderboard, read_samples, win_rates
from committee.promotion import rank_key
from committee.report_eval import BASELINE, read_test
from committee.report_plots import draw_accuracy, draw_reward_kl, draw_rm_accuracy, draw_winrates, save
from committee.report_samples import sample_section
from committee.report_tables import (
    cross_round_table,
    domain_stats,
    gold_table,
    leaderboard_table,
    rm_heads,
    rm_heads_table,
    test_domain_table,
)
from committee.training_curves import write_training_plots

RL_RECIPES = ("mdloo", "rloo")
SAMPLE_PROMPTS = 4  # prompts in the report's sample outputs
TOP_MEMBERS = 3  # members whose answers are shown (by rank_key), plus r0-sft as the reference
_SECONDS_KEYS = ("seconds", "duration_s", "elapsed_s", "wall_s", "time_s")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


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


def _reward_kl_paths(run, entries: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """{RL member: [(kl, reward), ...]} from its metrics.jsonl, else its entry's final values."""
    out = {}
    for e in entries:
        if e.get("recipe") not in RL_RECIPES and "kl" not in e:
            continue
        path = Path(e.get("path") or run.member(e["round"], e["member"])) / "metrics.jsonl"
        if not path.is_file():  # a run moved from another machine: its recorded paths point elsewhere
            path = run.member(e["round"], e["member"]) / "metrics.jsonl"
        records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
        points = [(float(r["kl"]), float(r["reward"])) for r in records
                  if isinstance(r.get("kl"), (int, float)) and isinstance(r.get("reward"), (int, float))]
        if not points and isinstance(e.get("kl"), (int, float)) and isinstance(e.get("reward"), (int, float)):
            points = [(float(e["kl"]), float(e["reward"]))]
        if points:
            out[e["member"]] = points
    return out


def _winrate_matrix(run, round_n: int, entries: list[dict], samples) -> tuple[list[str], list[list]]:
    stored = _read_json(run.round(round_n) / "eval" / WINRATES_FILE)
    if stored:
        return stored["members"], stored["matrix"]
    members = [e["member"] for e in entries]
    rates = win_rates(samples(), members)
    return members, [[rates.get((a, b)) for b in members] for a in members]


def _promoted_by_round(entries: list[dict], manifests: dict[int, dict | None]) -> dict[int, list[str]]:
    """{round: members promoted in it}: the round's manifest when it records promotion, else the entries' flags."""
    out = {}
    for m, manifest in manifests.items():
        recorded = ((manifest or {}).get("promotion") or {}).get("promoted")
        out[m] = list(recorded) if recorded is not None else [
            e["member"] for e in entries if e["round"] == m and e.get("promoted")]
    return out


def _draw_plots(run, round_n: int, entries: list[dict], rm: dict[int, dict], samples, plt) -> list[str]:
    """Draw the round's plots into `round_<N>/plots/`; the report's figure lines (skipped ones said so)."""
    reps = _round_representatives(entries)
    dev_stats = domain_stats(list(reps.values()), "dev", samples)
    rm_acc = {m: r["pairwise"] for m, r in rm.items() if r.get("pairwise") is not None}
    heads = {m: {d: a for d, (a, _) in r["heads"].items()} for m, r in rm.items() if r["heads"]}
    members, matrix = _winrate_matrix(run, round_n, entries, samples)
    rl_paths = _reward_kl_paths(run, entries)
    plots_dir = run.round(round_n) / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = {  # file -> (caption, data present, draw)
        "accuracy_by_domain.png": ("accuracy by domain and round (each round's promoted member, else its best)",
                                   bool(entries), lambda: draw_accuracy(reps, dev_stats, plt)),
        "rm_accuracy.png": ("reward-model accuracy by round (pairwise and grading heads)", bool(rm_acc or heads),
                            lambda: draw_rm_accuracy(rm_acc, heads, plt)),
        "winrate_matrix.png": ("win-rate matrix", any(v is not None for row in matrix for v in row),
                               lambda: draw_winrates(members, matrix, plt)),
        "reward_vs_kl.png": ("reward against KL for the RL members (trailing means; the k1 KL estimate of a "
                             "single batch can be negative)", bool(rl_paths), lambda: draw_reward_kl(rl_paths, plt)),
    }
    figures = []
    for name, (caption, present, draw) in plots.items():
        if present:
            save(draw(), plots_dir / name, plt)
            figures.append(f"![{caption}](plots/{name})")
        else:
            (plots_dir / name).unlink(missing_ok=True)
            figures.append(f"*{name}: skipped, no data for it in this round's files.*")
    return figures


def write_report(run_dir, round_n: int) -> Path:
    """Write `round_<N>/report.md` and `round_<N>/plots/*.png`; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = as_run(run_dir)
    entries = read_leaderboard(run, round_n)
    samples = lru_cache(maxsize=1)(lambda: read_samples(run, round_n))
    manifests = {m: _read_json(run.round(m) / "manifest.json") for m in range(round_n + 1)}
    rm = {m: r for m in range(round_n + 1)
          if (r := rm_heads(manifests[m], _read_json(run.round(m) / "rm" / "rm_metrics.json")))}
    figures = _draw_plots(run, round_n, entries, rm, samples, plt)
    training = write_training_plots(run, round_n, run.round(round_n) / "plots", plt,
                                    {e["member"]: e.get("recipe") for e in entries})
    test = read_test(run, round_n)
    tests = {e["member"]: e for m in range(round_n + 1) for e in read_test(run, m)}
    stats = {"dev": domain_stats(entries, "dev", samples),
             "test": domain_stats(test, "test", lambda: read_samples(run, round_n, "test"))}
    lines = [*_header(round_n, entries, manifests.get(round_n)),
             *_leaderboard_section(entries, test, stats),
             *_across_rounds_section(entries, tests, _promoted_by_round(entries, manifests), round_n),
             *_versus_round_zero(test),
             *_rm_section(rm, manifests.get(round_n)),
             *_overoptimisation_section(_read_json(run.round(round_n) / "eval" / "overoptimisation.json")),
             *sample_section(samples(), _sample_members(entries, samples()), SAMPLE_PROMPTS),
             *_base_section(_read_json(run.base / "meta.json")),
             *_timings_section(manifests.get(round_n)),
             "## Plots", "", *[x for figure in figures for x in (figure, "")],
             "## Training curves", "",
             f"Each member of round {round_n}: the metrics its recipe logs in metrics.jsonl, against the step.", "",
             *training]
    report = run.round(round_n) / "report.md"
    report.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return report


def _overoptimisation_section(curves: dict | None) -> list[str]:
    """Proxy (RM) against hidden gold on the open-ended prompts: the ends of both curves, and the figure."""
    if not curves:
        return []
    lines = ["## Over-optimisation (open-ended prompts)", "",
             "The RM (proxy) and the hidden gold rubric score the same answers; where the proxy rises and the gold "
             "does not, the policy is learning the RM's errors.", ""]
    bon = curves.get("best_of_n") or []
    if bon:
        first, last = bon[0], bon[-1]
        lines.append(f"- best-of-N over {curves['best_of_n_member']}'s samples ({first['prompts']} prompts): "
                     f"N={first['n']} -> {last['n']}: proxy {first['proxy']:+.3f} -> {last['proxy']:+.3f}, "
                     f"gold {first['gold']:.3f} -> {last['gold']:.3f} (KL bound {last['kl_bound']:.2f} nats)")
    steps = [p for p in curves.get("mdloo") or [] if p.get("gold") is not None]
    if steps:
        first, last = steps[0], steps[-1]
        kl = f", KL {last['kl']:.3f}" if last.get("kl") is not None else ""
        lines.append(f"- {curves['mdloo_member']} rollouts, step {first['step']} -> {last['step']}: proxy "
                     f"{first['proxy']:+.3f} -> {last['proxy']:+.3f}, gold {first['gold']:.3f} -> {last['gold']:.3f}"
                     f"{kl} (one batch each: noisy)")
    return [*lines, "", "![over-optimisation](plots/overoptimisation.png)", ""]


def _base_section(meta: dict | None) -> list[str]:
    """What the run's base model can do before any post-training (its `afm-align init` report, base/meta.json):
    the held-out loss, the arithmetic probes and the in-context copy score (afm_align.context_copy); a base
    given with `--base PATH` has its path and size only."""
    if not meta:
        return []
    lines = ["## Base model", ""]
    if meta.get("base"):
        lines.append(f"- `{meta['base']}` (given with --base)")
    if meta.get("parameters"):
        lines.append(f"- {meta['parameters']:,} parameters")
    if meta.get("heldout_lm_loss") is not None:
        lines.append(f"- held-out LM loss {meta['heldout_lm_loss']:.3f}; greedy exact match on "
                     f"{meta.get('probes', '?')} held-out arithmetic probes {100 * meta['probe_exact_match']:.1f}%")
    copy = meta.get("copy_score")
    if copy:
        verdict = "copies" if copies(copy) else "does not copy"
        lines.append(f"- in-context copying: loss {copy['repeat']:.2f} on a random token sequence's second showing "
                     f"against {copy['first']:.2f} on its first: the base {verdict} from its context")
    return [*lines, ""]


def _sample_members(entries: list[dict], samples: list[dict]) -> list[str]:
    """The top members by `rank_key` that have dev answers, then r0-sft as the reference."""
    answered = {s["member"] for s in samples}
    top = [e["member"] for e in sorted(entries, key=rank_key) if e["member"] in answered][:TOP_MEMBERS]
    return top + [BASELINE] if BASELINE in answered and BASELINE not in top else top


def _header(round_n: int, entries: list[dict], manifest: dict | None) -> list[str]:
    promotion = (manifest or {}).get("promotion") or {}
    promoted = promotion.get("promoted", [e["member"] for e in entries if e.get("promoted") and e["round"] == round_n])
    lines = [f"# Round {round_n} report", "",
             (f"Members evaluated: {len(entries)} (rounds 0..{round_n}). "
              f"Promoted this round: {', '.join(promoted) or 'none'}.")]
    if promotion.get("committee"):
        lines.append(f"Next committee: {', '.join(promotion['committee'])}.")
    if promotion.get("reason"):
        lines += ["", f"Promotion: {promotion['reason']}"]
    return lines + [""]


def _leaderboard_section(entries: list[dict], test: list[dict], stats: dict) -> list[str]:
    lines = ["## Leaderboard", "",
             ("Promotion used the **dev** split; the **test** split is scored after promotion, for reports "
              "only, for the best member promoted in each round (`-`: not scored on test). Accuracy is the share "
              "of solved prompts (verifier score 1.0), mean over domains, with a 95% cluster-bootstrap "
              "interval over problem identities; a domain cell is the domain's accuracy with its Wilson 95% "
              "interval over its n prompts (n in the column header, or in the cell when members differ). "
              f"Elo and win rates are judged by {JUDGE} on dev (Bradley-Terry, 1000 = average member)."), "",
             *leaderboard_table(entries, test, stats["dev"]), ""]
    by_domain = test_domain_table(test, stats["test"])
    if by_domain:
        lines += ["### Test accuracy by domain", "",
                  "The members scored on test (reports only), with the same intervals.", "", *by_domain, ""]
    gold = gold_table(entries, test)
    if gold:
        lines += ["### Open-ended prompts: mean gold score", "",
                  ("The hidden gold rubric's mean score (0-1) on the open-ended domains, with a 95% cluster-bootstrap "
                   "interval; their accuracy above counts a perfect 1.0 as solved. No training code reads the gold."),
                  "", *gold, ""]
    return lines


def _across_rounds_section(entries: list[dict], tests: dict[str, dict], promoted: dict[int, list[str]],
                           round_n: int) -> list[str]:
    return ["## Across rounds", "",
            ("Each round's promoted member (the best by dev mean when several were promoted), with its dev and "
             "test means and 95% intervals. Δ: the difference from the previous round's row (the latest earlier "
             "round with a value), a difference of two means: the paired test interval against r0-sft follows."),
            "", *cross_round_table(entries, tests, promoted, list(range(round_n + 1))), ""]


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


def _rm_section(rm: dict[int, dict], manifest: dict | None) -> list[str]:
    lines = ["## Reward model", ""]
    lines += [f"- round {m}: pairwise accuracy {r['pairwise']:.3f} on test-split synthetic pairs"
              for m, r in sorted(rm.items()) if r.get("pairwise") is not None] or ["- no RM accuracy recorded"]
    oracle = (manifest or {}).get("rm_on_committee_answers")
    if oracle and oracle.get("accuracy") is not None:
        lo, hi = oracle["ci95"]
        lines.append(f"- this round's RM on {oracle['pairs']} pairs of the scored members' test answers "
                     f"({oracle['label']}): {oracle['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]")
    heads = rm_heads_table(rm)
    if heads:
        lines += ["", ("Grading heads (3-way grade per dimension) on the same held-out pairs: accuracy / the "
                       "majority-class baseline of that head (`*`: below its baseline; `-`: not recorded)."), "",
                  *heads]
    return lines + [""]


def _timings_section(manifest: dict | None) -> list[str]:
    timings = _timings(manifest)
    if not timings:
        return []
    return ["## Stage timings", "", "| stage | seconds |", "|---|---|",
            *[f"| {stage} | {secs:.1f} |" for stage, secs in timings.items()], ""]
