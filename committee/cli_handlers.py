"""The `afm-align leaderboard` and `afm-align compare` handlers: tables printed from round files.

- `leaderboard(args)`: every member of the run up to `--round` (default: the latest evaluated round),
  from `round_<N>/eval/leaderboard.json` (dev: what promotion used) and `test_leaderboard.json` (test:
  reports only, the members scored on it): member, round, recipe, promoted, dev mean [95% CI], test mean
  [95% CI], per-domain dev accuracy, Elo [95% CI] (judged by the verifiers).
- `compare(args)`: MEMBER_A against MEMBER_B on the dev prompts both answered (and on test, when both
  were scored on it), from `round_<N>/eval/samples.jsonl` / `test_samples.jsonl` (default: the latest
  evaluated round holding both): per-domain and mean accuracy deltas (A - B) with paired cluster-bootstrap
  95% intervals, the verifier-judged win rate of A over B, the keys of the two members'
  `recipe_config.yaml` that differ, side by side (`committee.member_configs`), then `--samples` dev prompts
  side by side (prompts where the verifier disagrees first).
Member names are unique within a run (the round runner names them `r<N>-<recipe>`, e.g. `r1-dpo`).
Unknown run, round or member: a one-sentence ValueError (exit 2 from the CLI). No model is loaded.

Run: `afm-align leaderboard --run default`, `afm-align compare r3-mdloo r0-sft --run default`.
"""
from __future__ import annotations

import itertools
import textwrap

from afm_align.errors import UserError
from afm_align.rundir import RunDir
from committee.evaluation import (
    JUDGE,
    domain_differences,
    eval_rounds,
    paired_difference,
    read_leaderboard,
    read_samples,
    win_rates,
)
from committee.member_configs import diff_lines, find_config, read_config
from committee.promotion import rank_key
from committee.report_eval import read_test
from committee.report_samples import prompt_text

COLUMN = 48  # width of each side in the side-by-side samples


def _run(name: str) -> tuple[RunDir, list[int]]:
    run = RunDir.named(name)
    if not run.root.is_dir():
        raise UserError(f"run '{name}' not found (no folder {run.root}).")
    rounds = eval_rounds(run)
    if not rounds:
        raise UserError(f"run '{name}' has no evaluated round yet (no round_<N>/eval/leaderboard.json).")
    return run, rounds


def _pick_round(rounds: list[int], wanted: int | None, name: str) -> int:
    if wanted is None:
        return rounds[-1]
    if wanted not in rounds:
        raise UserError(f"run '{name}' has no evaluated round {wanted} (evaluated: {', '.join(map(str, rounds))}).")
    return wanted


def _interval(ci, digits: int = 3) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


def _mean_cell(scores: dict | None, ci) -> str:
    mean = (scores or {}).get("mean")
    return "-" if mean is None else f"{mean:.3f} " + _interval(ci)


def leaderboard_lines(entries: list[dict], test: list[dict] = ()) -> list[str]:
    """The leaderboard as aligned text lines in `rank_key` order (dev mean, ties by Elo then name); test means beside them where scored."""
    tests = {e["member"]: e for e in test}
    domains = sorted({d for e in entries for d in (e.get("dev") or {}) if d != "mean"})
    head = ["member", "round", "recipe", "promoted", "dev mean [95% CI]", "test mean [95% CI]",
            *[f"dev {d}" for d in domains], "Elo [95% CI]"]
    rows = [head]
    for e in sorted(entries, key=rank_key):
        t = tests.get(e["member"], {})
        rows.append([e["member"], str(e["round"]), str(e.get("recipe") or "-"), "yes" if e.get("promoted") else "no",
                     _mean_cell(e.get("dev"), e.get("dev_ci95")), _mean_cell(t.get("test"), t.get("test_ci95")),
                     *["-" if e["dev"].get(d) is None else f"{e['dev'][d]:.3f}" for d in domains],
                     ("-" if e.get("elo") is None else f"{e['elo']:.0f} ") + _interval(e.get("elo_ci95"), 0)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def leaderboard(args) -> int:
    """Print the leaderboard of `--run` at `--round` (default: the latest evaluated round)."""
    run, rounds = _run(args.run)
    round_n = _pick_round(rounds, args.round, args.run)
    entries = read_leaderboard(run, round_n)
    test = read_test(run, round_n)
    print(f"run {args.run}, round {round_n}: {len(entries)} members; promotion used the dev split; the test "
          f"split is for reports only ({len(test)} members scored on it); Elo judged by {JUDGE}")
    print("\n".join(leaderboard_lines(entries, test)))
    return 0


def _round_with(run: RunDir, rounds: list[int], wanted: int | None, name: str, members: list[str],
                split: str = "dev") -> tuple[int, list]:
    """(round, its samples): `wanted`, else the latest evaluated round whose samples hold both members."""
    for round_n in ([_pick_round(rounds, wanted, name)] if wanted is not None else reversed(rounds)):
        samples = read_samples(run, round_n, split)
        present = {s["member"] for s in samples}
        missing = [m for m in members if m not in present]
        if not missing:
            return round_n, samples
        if wanted is not None:
            raise UserError(f"member '{missing[0]}' has no samples in round {round_n} of run '{name}'.")
    raise UserError(f"no evaluated round of run '{name}' holds {split} answers of both '{members[0]}' and "
                     f"'{members[1]}' (member names look like r1-dpo; see `afm-align leaderboard`).")


def _side_by_side(left: str, right: str, width: int = COLUMN) -> list[str]:
    def wrap(text: str) -> list[str]:
        return [w for line in str(text).splitlines() or [""] for w in (textwrap.wrap(line, width) or [""])]

    return [f"  {a.ljust(width)} | {b}" for a, b in itertools.zip_longest(wrap(left), wrap(right), fillvalue="")]


def sample_lines(samples: list[dict], member_a: str, member_b: str, n: int) -> list[str]:
    """`n` prompts both members answered, side by side; prompts where their verifier scores differ first."""
    a = {s["prompt_id"]: s for s in samples if s["member"] == member_a}
    b = {s["prompt_id"]: s for s in samples if s["member"] == member_b}
    shared = sorted(set(a) & set(b), key=lambda p: (a[p].get("verifier_score") == b[p].get("verifier_score"), p))
    lines = []
    for pid in shared[:n]:
        sa, sb = a[pid], b[pid]
        lines += ["", f"[{sa['domain']}] {pid}: " + textwrap.shorten(prompt_text(sa["prompt"]), 160)]
        lines += _side_by_side(f"{member_a} (verifier {sa.get('verifier_score')}, RM {_score(sa)})",
                               f"{member_b} (verifier {sb.get('verifier_score')}, RM {_score(sb)})")
        lines += _side_by_side("-" * 20, "-" * 20)
        lines += _side_by_side(sa["completion"], sb["completion"])
    return lines


def _score(sample: dict) -> str:
    value = sample.get("rm_score")
    return "-" if value is None else f"{value:.2f}"


def compare(args) -> int:
    """Print per-domain deltas (A - B) with paired bootstrap intervals and a few side-by-side samples."""
    if args.member_a == args.member_b:
        raise UserError("compare needs two different members.")
    if args.samples < 0:
        raise UserError(f"--samples must be 0 or more (got {args.samples}).")
    run, rounds = _run(args.run)
    a, b = args.member_a, args.member_b
    round_n, samples = _round_with(run, rounds, args.round, args.run, [a, b])
    print(f"run {args.run}, round {round_n}: {a} - {b}")
    print("\n".join(delta_lines(samples, a, b, "dev (what promotion uses)", args)))
    rate = win_rates(samples, [a, b]).get((a, b))
    if rate is not None:
        print(f"dev win rate of {a} over {b}, judged by {JUDGE}: {rate:.3f}")
    try:
        _, test = _round_with(run, rounds, args.round, args.run, [a, b], split="test")
        print("\n".join(delta_lines(test, a, b, "test (reports only)", args)))
    except ValueError:
        print(f"test: not both of {a} and {b} were scored on the test split (by default only each round's best promoted member is)")
    print("\n".join(config_lines(run, a, b)))
    print("\n".join(sample_lines(samples, a, b, args.samples)))
    return 0


def config_lines(run: RunDir, a: str, b: str) -> list[str]:
    """The keys of the two members' recipe_config.yaml that differ, side by side (or which file is missing)."""
    files = {m: find_config(run, m) for m in (a, b)}
    missing = [m for m, f in files.items() if f is None]
    if missing:
        return [f"config: no recipe_config.yaml for {' or '.join(missing)} under {run.root}/round_*/members/"]
    return diff_lines(a, read_config(files[a]), b, read_config(files[b]))


def delta_lines(samples: list[dict], a: str, b: str, label: str, args) -> list[str]:
    """Per-domain and mean accuracy deltas (A - B) with paired cluster-bootstrap 95% intervals."""
    per_domain = domain_differences(samples, a, b, n_boot=args.bootstrap, seed=args.seed)
    delta, ci = paired_difference(samples, a, b, n_boot=args.bootstrap, seed=args.seed)
    lines = [f"{label}: accuracy delta, paired bootstrap 95% interval over problems"]
    width = max(len(d) for d in [*per_domain, "mean"])
    for domain, (d, dci, n) in per_domain.items():
        lines.append(f"  {domain.ljust(width)}  {d:+.3f} {_interval(dci)}  ({n} prompts)")
    above = " (interval above zero)" if ci[0] > 0 else " (interval below zero)" if ci[1] < 0 else ""
    lines.append(f"  {'mean'.ljust(width)}  {delta:+.3f} {_interval(ci)}{above}")
    return lines
