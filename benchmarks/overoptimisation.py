"""Reward over-optimisation on the open-ended families, over pipeline seeds: does pushing on the RM raise the gold?

The open-ended families (synth.families.OPEN_ENDED: summarize, general) have no verifier; a policy trained on them
sees only the RM, a proxy of their hidden gold rubric (committee.gold_store). For each finished iterate run
`DIR/seed<s>` (from `benchmarks/iterate_round3.py --keep DIR`), starting from its r0-sft and scoring with round 1's
RM, two ways of optimising the proxy (committee.overoptimisation draws and computes both curves):
- best-of-N: `--n-max` samples per DEV open-ended prompt from r0-sft (temperature 1), each scored by the RM and the
  gold rubric (round_0/gold.json); for N = 1, 2, 4, ..., n-max the RM's pick among the first N: mean proxy and
  gold, against N and its analytic KL bound log N - (N-1)/N;
- RL on the RM alone: an MDLOO run (tiny preset, `--steps` outer steps, verifier_weight 0, no KL budget stop) from
  r0-sft on round 1's open-ended TRAIN prompts; per sampling step, the mean proxy and gold (round_1/gold.json) of
  its rollouts against the logged KL; then the greedy dev gold of the final policy against r0-sft's.
Over seeds: mean and 95% t-interval (committee.eval_stats.seed_interval) of the gold gain of best-of-n-max over
N = 1 and of the MDLOO policy over r0-sft (dev, greedy). Also the 2-thread fp32 matmul peak before and after.

What it simplifies: one RM (round 1's) and one start; best-of-N and the dev gold on the dev prompts (no test
reporting: nothing here chooses, but the runs' test split stays for the README's headline figures); means of the
gold score only (no per-prompt intervals); the MDLOO member is trained again on every call.

Run: `python benchmarks/overoptimisation.py --runs DIR [--seeds 0,1,2] [--n-max 16] [--steps 48] [--beta B]
[--json benchmarks/results/overoptimisation.json] [--plot benchmarks/results/overoptimisation.png] [key=value ...]`
(key=value: more MDLOO overrides). Trained members go to `DIR/seed<s>/overoptimisation/`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from iterate_round3 import matmul_gflops  # noqa: E402 - the one peak measurement of the benchmarks

STAGE = "overoptimisation"
MEMBER = "oo-mdloo-rm-only"  # the member name this script writes (what it may replace on a later call)


def dev_open_ended(run: Path) -> tuple[list[dict], dict[str, dict]]:
    """The run's dev rows of the open-ended domains that have gold, and the gold of round 0 (dev and test)."""
    from afm_align.store import read_rows
    from committee.gold_store import GOLD_FILE, read_gold
    from synth.families import OPEN_ENDED

    gold = read_gold(run / "round_0" / GOLD_FILE)
    manifest = json.loads((run / "round_0" / "manifest.json").read_text(encoding="utf-8"))
    rows = read_rows(run / manifest["stages"]["data"]["outputs"]["dev"], "prompt")
    return [r for r in rows if r["domain"] in OPEN_ENDED and r["id"] in gold], gold


def gold_of(rows: list[dict], texts: list[list[str]], gold: dict[str, dict]) -> list[list[float]]:
    """The gold score of each text of each row (committee.gold_store)."""
    from committee.gold_store import gold_scores

    return [gold_scores([{"prompt_id": r["id"], "domain": r["domain"], "completion": t} for t in ts], gold)
            for r, ts in zip(rows, texts)]


def best_of_n(start: Path, rm: Path, rows: list[dict], gold: dict, args, seed: int) -> list[dict]:
    """Best-of-N over `--n-max` temperature-1 samples per dev prompt from `start`, picked by the RM."""
    from afm_align.member_io import generate_from
    from alignment.rewards import load_rm
    from committee.overoptimisation import best_of_n_curve, powers_of_two

    texts = generate_from(start, [r["prompt"] for r in rows], stage=STAGE, k=args.n_max,
                          max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, batch_size=128, seed=seed)
    scorer = load_rm(rm, batch_size=64)
    flat = scorer([r["prompt"] for r, ts in zip(rows, texts) for _ in ts], [t for ts in texts for t in ts])
    del scorer
    ids = [r["id"] for r in rows]
    scores, it = {}, iter(flat)
    for pid, ts in zip(ids, texts):
        scores[pid] = [float(next(it)) for _ in ts]
    golds = dict(zip(ids, gold_of(rows, texts, gold)))
    return best_of_n_curve(ids, dict(zip(ids, texts)), scores, golds, ns=powers_of_two(args.n_max))


def rm_only_mdloo(run: Path, start: Path, rm: Path, args, seed: int, scratch: Path) -> Path:
    """An MDLOO member trained from `start` on round 1's open-ended train prompts with the RM as the only reward."""
    from dataclasses import replace

    from afm_align.store import read_rows, write_dataset
    from alignment import recipes
    from synth.families import OPEN_ENDED

    source = run / "round_1" / "prompts"
    rows = [r for r in read_rows(source, "prompt") if r["domain"] in OPEN_ENDED and r.get("split") == "train"]
    data = scratch / f"prompts-seed{seed}"
    write_dataset(rows, "prompt", data, producer="benchmarks/overoptimisation.py",
                  config={"from": str(source), "domains": list(OPEN_ENDED)})
    out = run / "overoptimisation" / "mdloo-rm-only"
    if out.exists():  # this script's own member of an earlier call is trained again; anything else is left alone
        meta = out / "meta.json"
        if not meta.is_file() or json.loads(meta.read_text(encoding="utf-8")).get("member") != MEMBER:
            raise SystemExit(f"{out} exists and is not this benchmark's member: move it away first")
        shutil.rmtree(out)
    overrides = [f"steps={args.steps}", "verifier_weight=0.0", "kl_budget=0.0", f"seed={seed}",
                 *([f"beta={args.beta}"] if args.beta is not None else []), *args.overrides]
    cfg = recipes.load("mdloo", preset="tiny", overrides=overrides, from_checkpoint=str(start), data=str(data),
                       out=str(out), reward_model=str(rm), member=MEMBER, round=1)
    cfg = replace(cfg, prompts_per_step=min(cfg.prompts_per_step, len(rows)))  # a batch needs that many prompts
    recipes.main_of("mdloo")(cfg)
    return out


def greedy_gold(path: Path, rows: list[dict], gold: dict, args) -> float:
    """Mean gold score of `path`'s greedy answers to the dev open-ended prompts."""
    from afm_align.member_io import generate_from

    texts = generate_from(path, [r["prompt"] for r in rows], stage=STAGE, k=1, max_new_tokens=args.max_new_tokens,
                          temperature=0.0, batch_size=128)
    scores = [s for ss in gold_of(rows, texts, gold) for s in ss]
    return statistics.mean(scores)


def run_seed(seed: int, args, scratch: Path) -> dict:
    from committee.gold_store import GOLD_FILE, read_gold
    from committee.overoptimisation import mdloo_curve

    run = Path(args.runs) / f"seed{seed}"
    start, rm = run / "round_0" / "members" / "r0-sft", run / "round_1" / "rm"
    began = time.perf_counter()
    rows, dev_gold = dev_open_ended(run)
    if not rows:
        raise SystemExit(f"{run}: no dev prompts of the open-ended families with gold (round_0/{GOLD_FILE})")
    bon = best_of_n(start, rm, rows, dev_gold, args, seed)
    member = rm_only_mdloo(run, start, rm, args, seed, scratch)
    curve = mdloo_curve(member, read_gold(run / "round_1" / GOLD_FILE))
    gold_start, gold_final = greedy_gold(start, rows, dev_gold, args), greedy_gold(member, rows, dev_gold, args)
    result = {"seed": seed, "run": str(run), "dev_prompts": len(rows), "best_of_n": bon, "mdloo": curve,
              "mdloo_member": str(member), "dev_gold_r0_sft": gold_start, "dev_gold_mdloo": gold_final,
              "minutes": round((time.perf_counter() - began) / 60, 2)}
    print(f"seed {seed}: {len(rows)} dev prompts; best-of-{bon[-1]['n']} gold {bon[-1]['gold']:.3f} vs N=1 "
          f"{bon[0]['gold']:.3f} (proxy {bon[-1]['proxy']:+.3f} vs {bon[0]['proxy']:+.3f}); MDLOO on the RM: dev gold "
          f"{gold_final:.3f} vs r0-sft {gold_start:.3f} ({len(curve)} sampling steps with gold), "
          f"{result['minutes']:.1f} min", flush=True)
    return result


def summary(per_seed: list[dict]) -> dict:
    """Over seeds: mean, per-seed values and 95% t-interval of both gold gains (and the proxy gain of best-of-N)."""
    from committee.eval_stats import seed_interval

    def stats(values: list[float]) -> dict:
        return {"mean": round(statistics.mean(values), 4), "per_seed": [round(v, 4) for v in values],
                "ci95": seed_interval(values)}

    return {"bon_gold_gain": stats([s["best_of_n"][-1]["gold"] - s["best_of_n"][0]["gold"] for s in per_seed]),
            "bon_proxy_gain": stats([s["best_of_n"][-1]["proxy"] - s["best_of_n"][0]["proxy"] for s in per_seed]),
            "mdloo_gold_gain": stats([s["dev_gold_mdloo"] - s["dev_gold_r0_sft"] for s in per_seed])}


def plot(result: dict, path: Path) -> None:
    """Both panels of committee.overoptimisation, each seed faint and the mean over seeds bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from committee.overoptimisation import draw_over_seeds

    runs = result["per_seed"]
    fig = draw_over_seeds([s["mdloo"] for s in runs], [s["best_of_n"] for s in runs],
                          f"Over-optimisation on open-ended prompts, {len(runs)} seed(s): from r0-sft on round 1's "
                          f"RM; (a) MDLOO on the RM alone, {result['steps']} steps; (b) best-of-N on dev prompts", plt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _line(name: str, s: dict) -> str:
    ci = f"[{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}]" if s["ci95"] else "n/a (one seed)"
    return f"| {name} | {s['mean']:+.3f} | {ci} | {', '.join(f'{v:+.3f}' for v in s['per_seed'])} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of finished iterate runs seed0, seed1, ...")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--n-max", type=int, default=16, help="samples per dev prompt for best-of-N (default 16)")
    parser.add_argument("--steps", type=int, default=48, help="MDLOO outer steps (default 48)")
    parser.add_argument("--beta", type=float, default=None, help="MDLOO KL coefficient (default: the preset's)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (at most 2)")
    parser.add_argument("--json", default=str(HERE / "results" / "overoptimisation.json"))
    parser.add_argument("--plot", default=str(HERE / "results" / "overoptimisation.png"))
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="more MDLOO overrides")
    args = parser.parse_args()
    if args.n_max < 1 or args.steps < 1:
        parser.error("--n-max and --steps must be at least 1")
    threads = max(1, min(args.threads, 2))
    os.environ["AFM_ALIGN_THREADS"] = str(threads)  # member_io.set_threads: generation and training
    import torch

    torch.set_num_threads(threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    before = matmul_gflops()
    print(f"machine: 2-thread fp32 matmul peak {before} GFLOP/s", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="afm-overopt-") as scratch:
        per_seed = [run_seed(seed, args, Path(scratch)) for seed in seeds]
    after = matmul_gflops()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    result = {"benchmark": "overoptimisation", "date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
              "command": "python benchmarks/overoptimisation.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "threads": threads},
              "matmul_gflops_before": before, "matmul_gflops_after": after,
              "minutes": round((time.perf_counter() - began) / 60, 2), "seeds": seeds, "n_max": args.n_max,
              "steps": args.steps, "beta": args.beta, "max_new_tokens": args.max_new_tokens,
              "mdloo_overrides": args.overrides,
              "protocol": "start r0-sft, proxy = round 1's RM; best-of-N and greedy gold on dev open-ended prompts "
                          "(round_0 gold); MDLOO on round 1's open-ended train prompts (round_1 gold), RM-only reward",
              "summary": summary(per_seed), "plot": args.plot, "per_seed": per_seed}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    plot(result, Path(args.plot))
    s = result["summary"]
    print(f"\nover {len(seeds)} seed(s), machine peak {before} -> {after} GFLOP/s, {result['minutes']:.1f} min")
    print("| gain | mean | 95% t-interval over seeds | per seed |\n|---|---|---|---|")
    print(_line(f"gold: best-of-{args.n_max} - best-of-1 (dev)", s["bon_gold_gain"]))
    print(_line(f"proxy: best-of-{args.n_max} - best-of-1 (dev, RM logit)", s["bon_proxy_gain"]))
    print(_line("gold: MDLOO on the RM - r0-sft (dev, greedy)", s["mdloo_gold_gain"]))
    print(f"saved {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
