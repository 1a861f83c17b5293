"""Read-only benchmarks over finished runs: their saved answers, their command line and their result file.

`benchmarks/safety_refusals.py` and `benchmarks/gold_parts.py` run no model: they read the answers an
`afm-align iterate` run saved (each round's `eval/samples.jsonl` on dev and `eval/test_samples.jsonl` on test)
for r0-sft and the member on top after round N, over the seeds of an `iterate_round3.py --keep DIR` folder.
This module holds what they share: reading a member's answers in one domain, the `--runs/--seeds/--round/--json`
command line with its one-line errors, and `run_over_seeds`, their whole `main`: one result per seed, a line
each, and the result JSON (date, commit, command). `write_json` writes that file, and `member_dir` finds a
member's folder, for the benchmarks that run models over the same runs (`rm_driven_members.py`,
`rm_driven_ceiling.py`).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from datetime import datetime
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "test")  # the splits whose saved answers a read-only benchmark reports


def member_dir(run: Path, name: str) -> Path:
    """The folder of member `name` (`r<N>-<recipe>` lives in `round_<N>/members/`) of run folder `run`."""
    return run / f"round_{name.split('-', 1)[0][1:]}" / "members" / name


@lru_cache(maxsize=None)
def round_rows(run: Path, round_n: int, split: str) -> dict[str, tuple[dict, ...]]:
    """Every member's saved answers of one round on `split` by domain (`committee.evaluation.read_samples`), read
    once for all the members and domains asked about: a round's dev samples file holds every member's answers
    (about 10 MB)."""
    from afm_align.rundir import RunDir
    from committee.evaluation import read_samples

    by_domain: dict[str, list[dict]] = {}
    for r in read_samples(RunDir(run), round_n, split):
        by_domain.setdefault(r.get("domain"), []).append(r)
    return {d: tuple(rows) for d, rows in by_domain.items()}


def member_rows(run: Path, member: str, split: str, rounds: int, domain: str) -> list[dict]:
    """The member's saved answers in `domain` on `split`, from the latest round (<= `rounds`) whose saved samples
    hold them (a round's eval files also carry the earlier members it compared against)."""
    for n in range(rounds, -1, -1):
        rows = [r for r in round_rows(run, n, split).get(domain, ()) if r.get("member") == member]
        if rows:
            return rows
    raise SystemExit(f"{run}: no saved {split} {domain} answers of {member} in rounds 0-{rounds}")


def parse_runs_args(description: str, result_name: str) -> tuple[argparse.Namespace, list[int]]:
    """--runs DIR [--seeds 0,1,2] [--round 3] [--json FILE]; every seed's round N must be there (else one line)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", required=True, help="runs folder holding seed0, seed1, ... (iterate_round3 --keep)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / f"{result_name}.json"))
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected whole numbers separated by commas, e.g. 0,1,2")
    missing = [s for s in seeds if not (Path(args.runs) / f"seed{s}" / f"round_{args.round}").is_dir()]
    if missing:
        parser.error(f"{args.runs}: no round {args.round} for seeds {missing}")
    return args, seeds


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()


def _write(path: str | Path, result: dict, indent: int) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=indent) + "\n")
    print(f"saved {path}")


def save_result(name: str, args: argparse.Namespace, fields: dict) -> None:
    """Write the result JSON (benchmark, date, commit, command, then `fields`) to --json and say where."""
    _write(args.json, {"benchmark": name, "date": datetime.now().isoformat(timespec="seconds"),
                       "commit": _git("rev-parse", "HEAD"),
                       "command": f"python benchmarks/{name}.py --runs DIR --seeds {args.seeds} --round {args.round}",
                       **fields}, indent=2)


def write_json(name: str, path: str | Path, fields: dict) -> None:
    """Write benchmark `name`'s result JSON to `path`: its name, date, commit (read when it is written, with
    whether tracked files differed from it then) and the command as run, then `fields`; and say where (for the
    benchmarks that run models over the runs, whose own command lines differ)."""
    _write(path, {"benchmark": name, "date": datetime.now().isoformat(timespec="seconds"),
                  "commit": _git("rev-parse", "HEAD"),
                  "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
                  "command": f"python benchmarks/{name}.py " + shlex.join(sys.argv[1:]), **fields}, indent=1)


def run_over_seeds(description: str, name: str, seed_result, line, summary=None) -> int:
    """A read-only benchmark's `main`: parse the command line, `seed_result(run_dir, rounds)` for every seed,
    print `line(seed, result)` for each, then save {per_seed} plus `summary(per_seed)`'s fields, if given."""
    args, seeds = parse_runs_args(description, name)
    per_seed = {s: seed_result(Path(args.runs) / f"seed{s}", args.round) for s in seeds}
    for s, r in per_seed.items():
        print(line(s, r))
    save_result(name, args, {**(summary(per_seed) if summary else {}), "per_seed": per_seed})
    return 0
