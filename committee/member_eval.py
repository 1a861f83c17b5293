"""`afm-align eval`: score any member of a run on any prompt dataset with the families' verifiers.

What it does: loads member M of run NAME (`r<N>-<recipe>`, or `base`), answers every prompt of the chosen
split once, greedily (the same sampling path and settings as a round's evaluation), grades each answer
with its family's verifier and prints per-domain accuracy (solved = verifier score 1.0) with Wilson 95%
intervals and the mean over domains with a cluster-bootstrap interval over problem identities
(`committee.eval_stats`). `--json FILE` writes the same report.

Data: `--data DIR` is any prompt dataset (e.g. from `afm-align synth math --n 500 --out DIR`, or your own
rows in the prompt contract); without it, the run's own fixed dev or test prompts are used. `--split`
picks `dev` (default; use it for every decision) or `test` (for a final report only).

Bad input (unknown run or member, missing dataset, a split the dataset lacks): one line, exit code 2.

Run: `afm-align eval --run default --member r3-rs --split test --json r3-rs-test.json`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.errors import UserError
from afm_align.rundir import RunDir


def member_dir(run: RunDir, member: str) -> Path:
    """The folder of `member` in `run` (`base` or `r<N>-<recipe>`); an unknown name is a one-line error."""
    if member == "base":
        return run.base_model_path()
    known = sorted(p.name for p in run.root.glob("round_*/members/*") if p.is_dir() and not p.name.startswith("."))
    for path in run.root.glob(f"round_*/members/{member}"):
        if path.is_dir():
            return path
    raise UserError(f"unknown member '{member}' in run {run.root}; members: {', '.join(known) or 'none'}, base")


def eval_rows(run: RunDir, data: str | None, split: str) -> tuple[list[dict], str]:
    """(prompt rows of `split`, where they came from); a missing dataset or split is a one-line error."""
    from afm_align.store import read_rows
    from committee import manifest as mf

    if data:
        folder = Path(data)
        if not folder.is_dir():
            raise UserError(f"--data {data}: no such dataset folder")
    else:
        path = run.round(0) / mf.MANIFEST_FILE
        round0 = mf.read(path) if path.is_file() else None
        if not ((round0 or {}).get("stages", {}).get("data") or {}).get("outputs", {}).get(split):
            raise UserError(f"run {run.root} has no {split} prompts yet (run `afm-align iterate` first, or pass --data)")
        folder = mf.Manifest(path, run.root, round0).output("data", split)
    rows = read_rows(folder, "prompt")
    chosen = [r for r in rows if r["split"] == split]
    if not chosen:
        splits = sorted({r["split"] for r in rows})
        raise UserError(f"dataset {folder} has no rows of split '{split}' (it has: {', '.join(splits) or 'none'})")
    return chosen, str(folder)


def evaluate_member(run_name: str, member: str, data: str | None = None, split: str = "dev", *,
                    max_new_tokens: int = 64, batch_size: int = 32, n_boot: int = 1000, seed: int = 0) -> dict:
    """The accuracy report of `member` on the `split` rows: {member, split, data, per_domain, mean, ci95, n}."""
    from committee.eval_stats import accuracy_report
    from committee.evaluation import sample_members, verify_samples

    if split not in ("dev", "test"):
        raise UserError(f"--split must be dev or test (got {split!r})")
    run = RunDir.named(run_name)
    if not run.root.is_dir():
        raise UserError(f"run '{run_name}' not found (no folder {run.root})")
    path = member_dir(run, member)
    rows, source = eval_rows(run, data, split)
    from committee.gold_store import GOLD_FILE, gold_report, read_gold

    gold = read_gold(run.round(0) / GOLD_FILE)  # the run's dev/test gold: grades open-ended prompts of its data
    samples = verify_samples(sample_members({member: path}, rows, max_new_tokens=max_new_tokens,
                                            batch_size=batch_size, seed=seed, stage=f"{split}-evaluation"), rows, gold)
    from synth.families import verifier_errors

    report = accuracy_report(samples, member, n_boot=n_boot, seed=seed)
    return {"member": member, "run": str(run.root), "split": split, "data": source, "prompts": len(rows),
            "judge": "the families' verifiers and the open-ended prompts' hidden gold (solved = score 1.0)", **report,
            "gold": gold_report(samples, member, n_boot=n_boot, seed=seed),
            "verifier_errors": verifier_errors()}  # exceptions in the verifiers' own code (each scored 0)


def report_lines(report: dict) -> list[str]:
    lines = [f"{report['member']} on {report['split']} ({report['data']}, {report['prompts']} prompts); "
             f"judge: {report['judge']}"]
    for domain, v in report["per_domain"].items():
        lo, hi = v["ci95"]
        lines.append(f"  {domain:<8} {v['accuracy']:.3f}  [{lo:.3f}, {hi:.3f}]  n={v['n']} ({v['problems']} problems)")
    lo, hi = report["ci95"]
    lines.append(f"  {'mean':<8} {report['mean']:.3f}  [{lo:.3f}, {hi:.3f}]  (domains weighted equally; "
                 "cluster bootstrap over problems)")
    for domain, v in (report.get("gold") or {}).items():
        lo, hi = v["ci95"]
        lines.append(f"  {domain:<8} mean gold score {v['mean']:.3f}  [{lo:.3f}, {hi:.3f}]  n={v['n']}")
    if report["split"] == "test":
        lines.append("  test is for reporting: choose members and settings on dev")
    return lines


def cli_main(args) -> int:
    """`afm-align eval --run NAME --member M [--data DIR] [--split dev|test] [--json FILE]`."""
    if args.json:
        out = Path(args.json)
        if out.is_dir() or not out.parent.exists():
            raise UserError(f"--json {args.json}: not a writable file path")
    report = evaluate_member(args.run, args.member, args.data, args.split, max_new_tokens=args.max_new_tokens,
                             seed=args.seed)
    print("\n".join(report_lines(report)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"eval: wrote {args.json}")
    return 0
