"""Pre-training step time of the tiny base model at 1 and 2 torch threads, quiet and with one core busy,
with OpenMP's default (spinning) wait policy, with `OMP_WAIT_POLICY=PASSIVE` (threads sleep at once when idle)
and with a short spin (`GOMP_SPINCOUNT=10000`; torch's CPU wheels use GNU OpenMP).

Why: `afm-align init` pre-trains with 2 threads; on a 2-core machine where another process used part of one
core, a step took 7-8 s instead of ~0.2 s. A thread count or wait policy that thrashes under load should show
it here. What it measures: the step of `afm_align.init_base.pretrain` (the tiny preset's model shape and batch:
`batch_size` rows, `drill_fraction` of them drill rows of `seq_len`, the rest chat rows of `chat_seq_len`;
forward, backward, clip, AdamW) on random tokens. Every setting runs in a fresh subprocess, since OpenMP reads
its environment when torch is first imported; settings run one after another, never side by side. "busy" starts
one background `python -c "while True: pass"` (one core's worth of load) for the length of the setting;
"torch2" a background torch loop of small 2-thread ops with OpenMP's defaults (another torch job on the
machine, e.g. a second afm-align run).
Before each setting it waits (up to `--wait-quiet` s) for other processes to go quiet; it records how many
cores other processes kept busy during the setting (/proc/stat less our own children's CPU time) and measures
a setting again (`--retries`) when that was over 0.25: others may share the machine, and a row measured while
they did says so.

Prints a table and writes `benchmarks/results/threads_under_load.json`.

Run: `python benchmarks/threads_under_load.py [--steps 8] [--max-seconds 40] [--threads 1,2]`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from afm_align.member_io import busy_cores, cpu_times  # noqa: E402  (stdlib only at import: torch stays out of the parent)
RESULTS = ROOT / "benchmarks" / "results" / "threads_under_load.json"
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# background load -> the program that makes it (None: none)
LOADS = {"quiet": None,
         "busy": "while True: pass",  # one core's worth
         "torch2": "import torch\ntorch.set_num_threads(2)\nx = torch.randn(64, 4096)\n"  # another torch job at 2
                   "while True:\n    y = (x @ x.T).softmax(-1) @ x",  # threads (OpenMP default): small ops
         }
POLICIES = {"spin (OpenMP default)": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
            "short spin": {"GOMP_SPINCOUNT": "10000"}}


def child(threads: int, steps: int, max_seconds: float) -> dict:
    """Time pre-training steps of the tiny preset's model in this process (torch imported here, first)."""
    import torch

    from afm_align import init_base
    from afm_align.base_model import build_model, train_tokenizer

    torch.set_num_threads(threads)
    cfg = init_base.load("tiny", None, [])
    rng = __import__("random").Random(0)
    texts = [f"{rng.randrange(100)} + {rng.randrange(100)} = {rng.randrange(200)}" for _ in range(3000)]
    tokenizer = train_tokenizer(texts + ["What is the total? Answer: 12. def f(x): return x"], cfg.vocab_size)
    model = build_model(tokenizer, cfg.shape, seed=0)
    gen = torch.Generator().manual_seed(0)
    n_drill = round(cfg.batch_size * cfg.drill_fraction)
    vocab = len(tokenizer)
    batch = [(torch.randint(0, vocab, (n_drill, cfg.seq_len), generator=gen),
              torch.ones(n_drill, cfg.seq_len, dtype=torch.bool)),
             (torch.randint(0, vocab, (cfg.batch_size - n_drill, cfg.chat_seq_len), generator=gen),
              torch.ones(cfg.batch_size - n_drill, cfg.chat_seq_len, dtype=torch.bool))]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98))
    model.train()

    def step() -> float:
        start = time.perf_counter()
        loss = init_base.masked_lm_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step()  # warm-up (allocations, first-call overheads)
    times, began = [], time.perf_counter()
    while len(times) < steps and (not times or time.perf_counter() - began < max_seconds):
        times.append(step())
    return {"threads": torch.get_num_threads(), "steps": len(times), "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times), "min_s": min(times), "max_s": max(times),
            "env": {k: os.environ.get(k) for k in WAIT_VARS}}


def run_setting(threads: int, policy: str, steps: int, max_seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    env.update(POLICIES[policy], AFM_ALIGN_QUIET="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--child", str(threads), "--steps", str(steps), "--max-seconds", str(max_seconds)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def measured(load: str, threads: int, policy: str, args) -> tuple[dict, float]:
    """One setting's result, and how many cores processes other than ours kept busy meanwhile (the busy cores
    of our CPUs from /proc/stat, less the CPU time of our child and spinner over the same wall time)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    stat0, ours0, t0 = cpu_times(), children_cpu_seconds(), time.perf_counter()
    spinner = None
    if load in LOADS and LOADS[load]:
        env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}  # another user's process: defaults
        spinner = subprocess.Popen([sys.executable, "-c", LOADS[load]], env=env)
        time.sleep(3.0)
    try:
        result = run_setting(threads, policy, args.steps, args.max_seconds)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    stat1, ours, wall = cpu_times(), children_cpu_seconds() - ours0, time.perf_counter() - t0
    busy = sum((stat1[c][0] - b) / (stat1[c][1] - t) for c, (b, t) in stat0.items()
               if (cpus is None or c in cpus) and c in stat1 and stat1[c][1] > t)
    return result, max(0.0, busy - ours / wall)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(limit: float) -> float:
    """Wait (up to `limit` seconds) until other processes keep less than 0.2 of a core busy; returns the busy
    cores last measured, so every row says how quiet the machine was."""
    deadline = time.time() + limit
    while True:
        other = busy_cores(1.0)
        if other < 0.2 or time.time() >= deadline:
            return other
        time.sleep(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per setting (after one warm-up step)")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="stop timing a setting after this long")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure")
    parser.add_argument("--loads", default="quiet,busy,torch2",
                        help="background loads, of: quiet, busy (one busy loop), torch2 (a 2-thread torch loop)")
    parser.add_argument("--policies", default="spin (OpenMP default),passive",
                        help=f"wait policies to measure, of: {', '.join(POLICIES)}")
    parser.add_argument("--wait-quiet", type=float, default=120.0,
                        help="before each setting, wait up to this many seconds for other processes to go quiet")
    parser.add_argument("--retries", type=int, default=3,
                        help="measure a setting again (up to this many times) when others kept > 0.25 cores busy")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.steps, args.max_seconds)))
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = []
    for load in args.loads.split(","):
        for threads in map(int, args.threads.split(",")):
            for policy in args.policies.split(","):
                for attempt in range(1, args.retries + 2):
                    wait_quiet(args.wait_quiet)
                    before = loadavg()
                    result, others = measured(load, threads, policy, args)
                    if others <= 0.25 or attempt > args.retries:
                        break
                    print(f"  (others kept {others:.2f} cores busy during it: measured again)", flush=True)
                rows.append({"load": load, "policy": policy, "loadavg_before": before, "attempts": attempt,
                             "other_busy_cores_during": round(others, 2), **result})
                print(f"{load:5s}  {threads} thread(s)  {policy:21s}  median {result['median_s']:.3f} s/step  "
                      f"(min {result['min_s']:.3f}, max {result['max_s']:.3f}, {result['steps']} steps; other "
                      f"processes' busy cores during it {others:.2f}; load average before {before:.2f})", flush=True)
    print(f"\n{'load':6s} {'threads':>7s}  {'wait policy':22s} {'median s/step':>13s} {'max s/step':>10s} "
          f"{'others busy':>11s}")
    for r in rows:
        print(f"{r['load']:6s} {r['threads']:>7d}  {r['policy']:22s} {r['median_s']:>13.3f} {r['max_s']:>10.3f} "
              f"{r['other_busy_cores_during']:>11.2f}")
    result = {"benchmark": "threads_under_load", "cores": cores, "torch_threads_measured": args.threads,
              "loads": {k: v for k, v in LOADS.items() if k in args.loads.split(",")}, "rows": rows,
              "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
