"""The tables of report.md, as markdown lines built from plain round data (no file is read here).

What it does:
- `domain_stats(entries, split, samples)`: {member: {domain: {accuracy, n, ci95}}}, from each entry's
  `<split>_domains` (written by committee.evaluation / report_eval: Wilson 95% interval over the domain's
  prompts), else computed from the split's per-prompt samples with the same function
  (`committee.eval_stats.accuracy_report`), which stays honest at 0% and 100% (0/200 -> [0, 0.019]);
- `leaderboard_table`: every member in `rank_key` order; each per-domain cell is the accuracy with its 95%
  interval, the column header carries n (or each cell does, when members were scored on different n);
- `test_domain_table`: the same cells on the test split for the members scored on it;
- `cross_round_table`: one row per round: its promoted member (the best by `rank_key` when several),
  dev mean and test mean with their 95% intervals, and each mean's difference from the previous round's row;
- `gold_table`: the open-ended domains' mean gold score (hidden rubric, 0-1) with its 95% interval, per member,
  on dev and, for the members scored on it, on test;
- `rm_heads_table`: per round, the RM's pairwise accuracy and each grading head's accuracy beside the
  majority-class baseline of that head (a head below its baseline has learnt nothing usable).

Run: through `committee.report.write_report`; tests: `python -m pytest tests/committee/test_report_sections.py`.
"""
from __future__ import annotations

from committee.promotion import rank_key


def fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def interval(ci, digits: int = 3) -> str:
    return f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


def mean_ci(scores: dict | None, ci) -> str:
    mean = (scores or {}).get("mean")
    return "-" if mean is None else fmt(mean) + interval(ci)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def domain_stats(entries: list[dict], split: str, samples=lambda: []) -> dict[str, dict[str, dict]]:
    """{member: {domain: {accuracy, n, ci95}}}: stored per-domain stats, else computed from `samples()`."""
    from committee.eval_stats import accuracy_report

    out, loaded = {}, None
    for e in entries:
        stored = e.get(f"{split}_domains")
        if stored:
            out[e["member"]] = stored
            continue
        loaded = samples() if loaded is None else loaded
        try:
            out[e["member"]] = accuracy_report(loaded, e["member"], n_boot=1)["per_domain"]
        except ValueError:  # no graded samples of this member: its cells show the accuracy alone
            out[e["member"]] = {}
    return out


def _domain_heads(split: str, domains: list[str], stats: dict, members: list[str]) -> tuple[list[str], set[str]]:
    """Column headers `<split> <domain> (n=N)` when every member has the same known n there; else n goes in the
    cells (of the members whose n is known)."""
    heads, per_cell = [], set()
    for d in domains:
        ns = {(stats.get(m) or {}).get(d, {}).get("n") for m in members}
        uniform = len(ns) == 1 and None not in ns
        heads.append(f"{split} {d} (n={next(iter(ns))})" if uniform else f"{split} {d}")
        if not uniform:
            per_cell.add(d)
    return heads, per_cell


def domain_cell(value, stat: dict | None, with_n: bool = False) -> str:
    """`0.135 [0.095, 0.189]` (and ` n=200` when asked); the accuracy alone when no interval is known."""
    stat = stat or {}
    value = stat.get("accuracy", value)
    if value is None:
        return "-"
    return fmt(float(value)) + interval(stat.get("ci95")) + (f" n={stat['n']}" if with_n and "n" in stat else "")


def leaderboard_table(entries: list[dict], test: list[dict] = (), stats: dict | None = None) -> list[str]:
    """Every member in `rank_key` order: dev and test means, per-domain dev accuracy with intervals, Elo."""
    tests, stats = {e["member"]: e for e in test}, stats or {}
    domains = sorted({d for e in entries for d in (e.get("dev") or {}) if d != "mean"})
    dom_heads, per_cell = _domain_heads("dev", domains, stats, [e["member"] for e in entries])
    head = ["member", "round", "recipe", "promoted", "dev mean [95% CI]", "test mean [95% CI]",
            *dom_heads, "Elo [95% CI]", "win rate vs prev. best"]
    lines = [_row(head), "|" + "---|" * len(head)]
    for e in sorted(entries, key=rank_key):
        t, eci = tests.get(e["member"], {}), e.get("elo_ci95")
        elo = fmt(e.get("elo"), 0) + (f" [{eci[0]:.0f}, {eci[1]:.0f}]" if eci else "")
        doms = [domain_cell(e["dev"].get(d), (stats.get(e["member"]) or {}).get(d), d in per_cell) for d in domains]
        lines.append(_row([e["member"], str(e["round"]), str(e.get("recipe")), "yes" if e.get("promoted") else "",
                           mean_ci(e.get("dev"), e.get("dev_ci95")), mean_ci(t.get("test"), t.get("test_ci95")),
                           *doms, elo, fmt(e.get("winrate_vs_prev_best"))]))
    return lines


def test_domain_table(test: list[dict], stats: dict) -> list[str]:
    """Test accuracy by domain with 95% intervals for the members scored on test (empty when none)."""
    scored = [e for e in test if (e.get("test") or {}).get("mean") is not None]
    if not scored:
        return []
    domains = sorted({d for e in scored for d in e["test"] if d != "mean"})
    dom_heads, per_cell = _domain_heads("test", domains, stats, [e["member"] for e in scored])
    head = ["member", "round", "scored in round", "test mean [95% CI]", *dom_heads]
    lines = [_row(head), "|" + "---|" * len(head)]
    for e in scored:
        doms = [domain_cell(e["test"].get(d), (stats.get(e["member"]) or {}).get(d), d in per_cell) for d in domains]
        lines.append(_row([e["member"], str(e.get("round")), str(e.get("scored_in")),
                           mean_ci(e["test"], e.get("test_ci95")), *doms]))
    return lines


def gold_table(entries: list[dict], test: list[dict] = ()) -> list[str]:
    """Mean gold score per open-ended domain (`dev_gold` / `test_gold`), every member with one, in `rank_key` order."""
    domains = sorted({d for e in entries for d in e.get("dev_gold") or {}})
    if not domains:
        return []
    tested = {e["member"]: e.get("test_gold") or {} for e in test}
    lines = [_row(["member", *[f"{d} dev" for d in domains], *[f"{d} test" for d in domains]]),
             _row(["---"] * (1 + 2 * len(domains)))]
    for e in sorted((e for e in entries if e.get("dev_gold")), key=rank_key):
        cells = [(e["dev_gold"].get(d) or {}) for d in domains] + [tested.get(e["member"], {}).get(d) or {}
                                                                    for d in domains]
        lines.append(_row([e["member"], *[fmt(c.get("mean")) + interval(c.get("ci95")) if c else "-" for c in cells]]))
    return lines


def _delta(value, previous) -> str:
    return "-" if value is None or previous is None else f"{value - previous:+.3f}"


def cross_round_table(entries: list[dict], tests: dict[str, dict], promoted: dict[int, list[str]],
                      rounds: list[int]) -> list[str]:
    """One row per round: its (best) promoted member, dev and test means with intervals, deltas vs the row before.

    `promoted`: {round: names promoted in it}; `tests`: {member: test entry}. A delta is against the most recent
    earlier round with a value (rounds that promoted nobody are skipped), unpaired: a difference of two means.
    """
    by_name = {e["member"]: e for e in entries}
    head = ["round", "promoted (best)", "dev mean [95% CI]", "Δ dev", "test mean [95% CI]", "Δ test"]
    lines = [_row(head), "|" + "---|" * len(head)]
    last_dev = last_test = None
    for m in rounds:
        names = [n for n in promoted.get(m, []) if n in by_name]
        if not names:
            lines.append(_row([str(m), "none (committee kept)", "-", "-", "-", "-"]))
            continue
        e = min((by_name[n] for n in names), key=rank_key)
        t = tests.get(e["member"], {})
        dev, test = (e.get("dev") or {}).get("mean"), (t.get("test") or {}).get("mean")
        others = f" (+{len(names) - 1} more)" if len(names) > 1 else ""
        lines.append(_row([str(m), e["member"] + others, mean_ci(e.get("dev"), e.get("dev_ci95")),
                           _delta(dev, last_dev), mean_ci(t.get("test"), t.get("test_ci95")), _delta(test, last_test)]))
        last_dev = dev if dev is not None else last_dev
        last_test = test if test is not None else last_test
    return lines


def rm_heads(manifest: dict | None, rm_metrics: dict | None) -> dict:
    """{"pairwise", "n_pairs", "heads": {dim: (accuracy, majority baseline)}} of one round's RM (empty: none)."""
    record = (manifest or {}).get("rm_accuracy")
    record = record if isinstance(record, dict) else {"accuracy": record} if record is not None else {}
    metrics = (rm_metrics or {}).get("metrics") or {}
    grading = dict(record.get("grading") or {})
    for key, value in metrics.items():  # the RM folder's own record, where the manifest has no heads
        if key.startswith("eval_grading_") and key.endswith("_accuracy"):
            grading.setdefault(key[len("eval_grading_"):-len("_accuracy")], value)
    heads = {d: (a, metrics.get(f"eval_grading_{d}_majority_baseline")) for d, a in grading.items()}
    pairwise = record.get("accuracy", record.get("pairwise_accuracy", metrics.get("eval_accuracy")))
    if pairwise is None and not heads:
        return {}
    return {"pairwise": pairwise, "n_pairs": record.get("n_pairs", metrics.get("eval_n_pairs")), "heads": heads}


def rm_heads_table(by_round: dict[int, dict]) -> list[str]:
    """Per round: pairwise accuracy (n pairs) and each head's accuracy / majority baseline (`*`: below it)."""
    dims = list(dict.fromkeys(d for r in by_round.values() for d in r["heads"]))
    if not dims:
        return []
    head = ["round", "pairwise accuracy (n pairs)", *[f"{d} head / majority" for d in dims]]
    lines = [_row(head), "|" + "---|" * len(head)]
    for m, r in sorted(by_round.items()):
        cells = []
        for d in dims:
            acc, base = r["heads"].get(d, (None, None))
            below = " *" if acc is not None and base is not None and acc < base else ""
            base_text = fmt(None if base is None else float(base))
            cells.append("-" if acc is None else f"{fmt(float(acc))} / {base_text}{below}")
        n = f" ({r['n_pairs']})" if r.get("n_pairs") is not None else ""
        lines.append(_row([str(m), fmt(r.get("pairwise")) + n, *cells]))
    return lines
