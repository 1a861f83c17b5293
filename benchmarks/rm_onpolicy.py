"""Does the RM learn to rank the policy's own open-ended answers when it sees more of them labelled? (dev split)

The RM-claims benchmark found the rounds' RMs order synthetic pairs (a reference against a corruption) at ~82%
but pairs of r0-sft's own answers to one open-ended prompt at chance, so RM-only rejection sampling and MDLOO
cannot climb the hidden gold. A round gives the RM about `prompts_per_round x pairs_per_prompt` gold-oracle
labelled on-policy pairs per open-ended family (100 each in the tiny preset). This benchmark measures what
more of them buys, on one finished iterate run (round 1 done, open-ended families on):

1. fresh TRAIN-split open-ended prompts (`--prompts` a family, a seed no round uses; problem-disjoint from dev
   and test by `synth.splits`), `--k` samples each from r0-sft at temperature 1, every pair of distinct answers
   labelled by the gold oracle with the run's annotator noise (`committee.gold_oracle`: Bradley-Terry on the
   gold gap, level jitter; ties are labelled too, as people label them);
2. RMs from the run's base (or `--init r0-sft`: the SFT member, the usual RM start), each on round 1's RM data
   (what the round's RM trained on) plus the first `--sizes` of those on-policy pairs (shuffled by prompt), with
   round 1's RM settings and any `key=value` RM overrides (e.g. `epochs=3`), seeded with the pipeline seed (so
   the 0-pair RM is round 1's RM data retrained, not round 1's RM itself);
3. on DEV open-ended prompts, `--n` samples each from r0-sft: each RM's accuracy on noiseless gold-labelled
   pairs of distinct answers whose gold differs (up to 3 a prompt; 95% interval by a prompt-cluster bootstrap),
   and the mean gold of rejection sampling with it (best of `--n` by the RM) against one sample and against
   the gold's own best of `--n` (the ceiling any RM could reach).

Two diagnostics tell the RM's limits from the labels': `--oracle-temperature 0` labels the on-policy pairs
without noise (the rounds' 0.1 on a gold gap of 0.025, the median between r0-sft's answers on the tiny default,
agrees with the gold on 59% of the unequal pairs), and `--swaps S` adds S value-swap probe pairs a train prompt
(`swap_pairs`: the reference against itself with one value the prompt does not hold) to every RM's data and
reports each RM's accuracy on swaps of 200 fresh dev prompts' references: whether it can learn the one check
that ranks these answers at all. `--likelihood` scores the same dev pairs, best-of-n and swaps with the base's and
r0-sft's own log-likelihood of the answer (no RM): whether the backbone knows what the RM should learn; `--pmi`
adds the same with the answer's likelihood given a blanked user turn subtracted (pointwise mutual information
with the prompt: what the prompt, not fluency or nearness to the mode, makes likely); `--copy-share N` scores with
the share of the answer's tokens inside an N-token run the prompt holds, the RM's `copy_ngram` feature alone
(`reward_model.copy_features`), nothing learned. RM settings such as `pooling=attention` or `copy_ngram=4` go in
as `key=value`; `--sizes ''` trains no RM.

Nothing here chooses a setting for the rounds; dev is read because this measures a lever for later tuning.
Also prints the 2-thread fp32 matmul peak before and after.

Run: `python benchmarks/rm_onpolicy.py --run DIR [--prompts 300] [--k 4] [--n 8] [--sizes 0,400,1600,-1]
[--init base|r0-sft] [--oracle-temperature T] [--swaps S] [--samples FILE] [--json benchmarks/results/rm_onpolicy.json]
[--likelihood] [--pmi] [--copy-share N] [--keep-rms DIR] [key=value ...]` (-1 in sizes:
every on-policy pair; `--samples` keeps the r0-sft samples in FILE so that other RM settings reuse them; about
7 minutes with 4 sizes on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")
# the run's settings that decide its prompts' splits and its annotator's noise
KEYS = ("seed", "families", "difficulty", "dev_fraction", "test_fraction", "gold_temperature", "oracle_level_jitter")


def run_config(run: Path):
    """The tiny IterateConfig with the settings this benchmark reads taken from the run (round 1's manifest)."""
    from committee.round_config import load

    recorded = json.loads((run / "round_1" / "manifest.json").read_text())["config"]
    return replace(load("tiny"), **{k: recorded[k] for k in KEYS})


def train_prompts(cfg, per_family: int, split: str = "train") -> tuple[list[dict], dict]:
    """(fresh `split` open-ended prompt rows, their gold), from a seed no round draws from; each row keeps its
    `reference` (the swap probe's chosen answer; nothing else reads it)."""
    from committee.annotators import pair_seed
    from committee.gold_store import split_gold
    from committee.round_data import _family_rows
    from synth.families import OPEN_ENDED

    rows = []
    for family in (f for f in cfg.families if f in OPEN_ENDED):
        tag = f"rm-onpolicy-{family}" if split == "train" else f"rm-onpolicy-{split}-{family}"
        rows += _family_rows(family, per_family, pair_seed(cfg.seed, tag) % 2 ** 31, cfg, split)
    return split_gold(rows)


def swap_pairs(rows: list[dict], per_prompt: int, seed: int, split: str = "train") -> list[dict]:
    """The probe of one skill the policy's answers need checked: `per_prompt` noiseless pairs a prompt, its
    reference against the reference with one name / day / city / time / amount swapped for a same-type value
    the prompt does not hold (synth.summarize_tasks._invent, the summarize family's invented-fact corruption,
    in place). Graded as that corruption is: truthfulness poor, the rest good; level significantly better."""
    from synth.summarize_tasks import _invent

    rng = random.Random(seed)
    good = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
    out = []
    for row in rows:
        text = row["prompt"][-1]["content"]
        swapped = list(dict.fromkeys(x for x in (_invent(row["reference"], text, rng) for _ in range(4 * per_prompt))
                                     if x and x != row["reference"]))[:per_prompt]
        out += [{"id": f"{row['id']}-swap{n}", "prompt": row["prompt"],
                 "chosen": [{"role": "assistant", "content": row["reference"]}],
                 "rejected": [{"role": "assistant", "content": x}],
                 "level": 3, "grades_chosen": good, "grades_rejected": {**good, "truthfulness": 0},
                 "domain": row["domain"], "identity": row["identity"], "kind": "value_swap",
                 "annotator": "synth", "guideline_version": "synth-v1", "source": "synthetic", "split": split}
                for n, x in enumerate(swapped)]
    return out


def onpolicy_pairs(rows: list[dict], samples: list[list[str]], gold: dict, cfg) -> tuple[list[list[dict]], int]:
    """(gold-oracle rows, the run's noise, of every pair of distinct answers to each prompt, grouped by prompt;
    how many of the pairs have equal gold, a coin toss for the oracle)."""
    from committee.gold_oracle import GoldNoise, gold_label
    from rm_claims import gold_of

    noise = GoldNoise(cfg.gold_temperature, cfg.oracle_level_jitter, cfg.seed + 7919)
    out, ties = [], 0
    for row, answers in zip(rows, samples):
        distinct = list(dict.fromkeys(a for a in answers if a.strip()))
        pairs = [(i, j) for i in range(len(distinct)) for j in range(i + 1, len(distinct))]
        golds = gold_of([row] * len(distinct), distinct, gold)
        ties += sum(1 for i, j in pairs if golds[i] == golds[j])
        out.append([gold_label({"pair_id": f"{row['id']}-op{n}", "prompt_id": row["id"], "kind": "within",
                                "a": {"completion": distinct[i], "member": "r0-sft"},
                                "b": {"completion": distinct[j], "member": "r0-sft"}}, row, gold[row["id"]], noise)
                    for n, (i, j) in enumerate(pairs)])
    return out, ties


def rubric_spread(rows: list[dict], samples: list[list[str]], gold: dict) -> dict:
    """Per open-ended domain: the mean of each gold rubric part over the samples, and on how many prompts the
    samples differ in it (which part an RM must see to rank them)."""
    from committee.gold_store import gold_parts

    out: dict = {}
    for row, answers in zip(rows, samples):
        parts = [gold_parts(row["domain"], a, gold[row["id"]]) for a in answers]
        dom = out.setdefault(row["domain"], {"prompts": 0, "mean": {}, "prompts_differing": {}})
        dom["prompts"] += 1
        for key in parts[0]:
            values = [p[key] for p in parts]
            dom["mean"][key] = dom["mean"].get(key, 0.0) + sum(values) / len(values)
            dom["prompts_differing"][key] = dom["prompts_differing"].get(key, 0) + (max(values) > min(values))
    for dom in out.values():
        dom["mean"] = {k: round(v / dom["prompts"], 4) for k, v in dom["mean"].items()}
    return out


def cluster_interval(hits_by_prompt: list[list[int]], n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of the pooled accuracy, resampling prompts (their pairs are not independent).

    The same estimator as `committee.eval_stats.cluster_bootstrap` with one domain, on Python's random stream:
    kept so that the committed results' intervals reproduce; a re-run of the results may switch to that one."""
    rng = random.Random(seed)
    stats = []
    for _ in range(n_boot):
        pick = [hits_by_prompt[rng.randrange(len(hits_by_prompt))] for _ in hits_by_prompt]
        n = sum(len(h) for h in pick)
        stats.append(sum(sum(h) for h in pick) / n if n else 0.0)
    stats.sort()
    return [round(stats[int(0.025 * n_boot)], 4), round(stats[int(0.975 * n_boot) - 1], 4)]


def dev_report(scorer, dev: list[dict], samples: list[list[str]], golds: list[list[float]]) -> dict:
    """Accuracy on noiseless gold-labelled dev pairs (with its prompt-cluster interval) and RS gold with `scorer`
    (prompts, answers) -> scores (an RM's, `alignment.rewards.load_rm`); `golds[p][i]` is the gold of
    `samples[p][i]`, scored once for every scorer."""
    flat = scorer([r["prompt"] for r, answers in zip(dev, samples) for _ in answers],
                  [a for answers in samples for a in answers])
    hits, picked, at = [], [], 0
    for answers, gold in zip(samples, golds):
        scores = flat[at:at + len(answers)]
        at += len(answers)
        picked.append(gold[max(range(len(answers)), key=lambda i: scores[i])])
        first = {}  # each distinct non-empty answer at its first index
        for i, a in enumerate(answers):
            if a.strip():
                first.setdefault(a, i)
        idx = list(first.values())
        pairs = [(i, j) for x, i in enumerate(idx) for j in idx[x + 1:] if gold[i] != gold[j]][:3]
        mine = [int((scores[i] > scores[j]) == (gold[i] > gold[j])) for i, j in pairs]
        if mine:
            hits.append(mine)
    n = sum(len(h) for h in hits)
    return {"dev_gold_pairs": n, "dev_gold_pair_accuracy": round(sum(map(sum, hits)) / n, 4) if n else None,
            "ci95": cluster_interval(hits) if n else None, "rs_gold": round(statistics.fmean(picked), 4)}


def swap_report(scorer, pairs: list[dict]) -> dict:
    """`scorer`'s accuracy on value-swap probe pairs (reference above its swap), with its interval; {} for none."""
    if not pairs:
        return {}
    scores = scorer([p["prompt"] for p in pairs] * 2,
                    [p[side][0]["content"] for side in ("chosen", "rejected") for p in pairs])
    hits = [[int(c > r)] for c, r in zip(scores[:len(pairs)], scores[len(pairs):])]
    return {"dev_swap_pairs": len(hits), "dev_swap_accuracy": round(sum(h[0] for h in hits) / len(hits), 4),
            "dev_swap_ci95": cluster_interval(hits)}


def blank_user_turns(prompt: list[dict]) -> list[dict]:
    """`prompt` with every user message emptied (system and assistant turns kept): the PMI scorer's baseline."""
    return [dict(m, content="") if m["role"] == "user" else m for m in prompt]


def likelihood_scorer(member: Path, batch: int = 32, pmi: bool = False):
    """A scorer (prompts, answers) -> the summed log-probability of each answer given its chat-rendered prompt
    under the causal LM `member`, loaded once for every call; with `pmi`, minus the answer's log-probability given
    the prompt with its user turns blanked."""
    import torch

    from afm_align.generation import render
    from afm_align.member_io import load
    from alignment.online_dpo import sequence_logps

    model, tokenizer = load(member, stage="benchmark")

    def summed(prompts: list, answers: list[str]) -> list[float]:
        heads = render(tokenizer, prompts)
        tails = [tokenizer(a, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for a in answers]
        out = []
        with torch.no_grad():
            for i in range(0, len(heads), batch):
                logp, _ = sequence_logps(model, heads[i:i + batch], tails[i:i + batch], tokenizer.pad_token_id,
                                         1 << 16)
                out += logp.tolist()
        return out

    def pointwise_mutual_information(prompts: list, answers: list[str]) -> list[float]:
        alone = summed([blank_user_turns(p) for p in prompts], answers)
        return [given - base for given, base in zip(summed(prompts, answers), alone)]

    return pointwise_mutual_information if pmi else summed


def copy_share_scorer(tokenizer, n: int):
    """A fixed scorer (prompts, answers) -> the share of each answer's tokens inside an `n`-token run its prompt
    holds: the RM's exact-match feature (`reward_model.copy_features`) alone, nothing learned."""
    import torch

    from reward_model.copy_features import COPIED, PROMPT, answer_starts, assistant_header, copy_flags

    turn_start_id, header_len = assistant_header(tokenizer)

    def scorer(prompts: list, answers: list[str]) -> list[float]:
        out = []
        for prompt, answer in zip(prompts, answers):
            ids = torch.tensor([tokenizer.apply_chat_template(
                [*prompt, {"role": "assistant", "content": answer}], tokenize=True, return_dict=True)["input_ids"]])
            mask = torch.ones_like(ids)
            flags = copy_flags(ids, mask, answer_starts(ids, mask, turn_start_id, header_len), n)[0]
            out.append(float((flags == COPIED).sum()) / max(1, int((flags != PROMPT).sum())))
        return out

    return scorer


def likelihood_report(member: Path, dev: list[dict], samples: list[list[str]], golds: list[list[float]],
                      swaps: list[dict], pmi: bool = False) -> dict:
    """`dev_report` and `swap_report` with an LM's own likelihood of the answer (or with `pmi` its pointwise mutual
    information with the prompt) as the score instead of an RM's (no training: does the backbone already tell a
    copied value from an invented one?)."""
    scorer = likelihood_scorer(member, pmi=pmi)
    name = "PMI with the prompt" if pmi else "log-likelihood"
    return {"scorer": f"{name} under {member.name}", **dev_report(scorer, dev, samples, golds),
            **swap_report(scorer, swaps)}


def train_rm(run: Path, rows: list[dict], out: Path, seed: int, init: str, overrides: list[str]) -> float:
    """An RM from the run's `init` (base or r0-sft) on `rows` with round 1's RM settings and `overrides`; returns
    its training minutes."""
    from afm_align.rundir import RunDir
    from afm_align.store import write_dataset
    from reward_model import recipe

    start = time.perf_counter()
    data = out.parent / f"{out.name}-data"
    write_dataset(rows, "preference", data, producer="benchmarks.rm_onpolicy", config={"run": str(run)})
    settings = json.loads((run / "round_1" / "manifest.json").read_text())["config"]["recipes"].get("rm", [])
    start_from = RunDir(run).base_model_path() if init == "base" else run / "round_0" / "members" / init
    cfg = replace(recipe.load("tiny", overrides=[*settings, *overrides]), data=str(data),
                  from_checkpoint=str(start_from), out=str(out), seed=seed)
    recipe.main(cfg)
    return round((time.perf_counter() - start) / 60, 2)


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished iterate run (round 1 done, open-ended families on)")
    parser.add_argument("--prompts", type=int, default=300, help="fresh train prompts per open-ended family")
    parser.add_argument("--k", type=int, default=4, help="r0-sft samples per train prompt")
    parser.add_argument("--n", type=int, default=8, help="r0-sft samples per dev prompt")
    parser.add_argument("--sizes", default="0,400,1600,-1", help="on-policy pairs added to round 1's RM data")
    parser.add_argument("--init", choices=("base", "r0-sft"), default="base", help="the RMs' starting checkpoint")
    parser.add_argument("--oracle-temperature", type=float, default=None,
                        help="the on-policy pairs' Bradley-Terry temperature (default: the run's gold_temperature; "
                             "0: noiseless, to tell label noise from what the RM can learn)")
    parser.add_argument("--swaps", type=int, default=0,
                        help="value-swap probe pairs a train prompt added to every RM's data (0: none); the report "
                             "then adds the RM's accuracy on swaps of 200 fresh dev prompts' references")
    parser.add_argument("--likelihood", action="store_true",
                        help="also score with the base's and r0-sft's own log-likelihood of the answer (no RM)")
    parser.add_argument("--pmi", action="store_true",
                        help="also score with the base's and r0-sft's PMI: the answer's log-likelihood given the "
                             "prompt minus given the prompt with its user turns blanked (no RM)")
    parser.add_argument("--copy-share", type=int, default=0, metavar="N",
                        help="also score with the share of answer tokens inside an N-token run the prompt holds "
                             "(the RM's copy_ngram feature alone, nothing learned; 0: not)")
    parser.add_argument("--samples", help="a JSON file keeping the r0-sft samples: read when present, else written")
    parser.add_argument("--keep-rms", metavar="DIR",
                        help="keep each trained RM as DIR/rm-<on-policy pairs> (a new folder; default: dropped)")
    parser.add_argument("--json", default=str(HERE / "results" / "rm_onpolicy.json"))
    parser.add_argument("rm_overrides", nargs="*", help="key=value RM settings on top of round 1's (e.g. epochs=3)")
    args = parser.parse_args()
    if args.keep_rms and Path(args.keep_rms).exists():
        parser.error(f"--keep-rms {args.keep_rms}: it exists; give a new folder (nothing of yours is overwritten)")
    return args


def r0_sft_samples(args, sft: Path, ids: dict, rows: list[dict], dev: list[dict], seed: int) -> tuple[list, list]:
    """(`--k` r0-sft samples a train prompt, `--n` a dev prompt): read from `--samples` when that file holds this
    run's (`ids`), else generated (and kept there when `--samples` is given); another run's file is refused."""
    from rm_claims import generate

    kept = Path(args.samples) if args.samples else None
    if kept and kept.is_file():
        loaded = json.loads(kept.read_text())
        if len(loaded) != 3 or loaded[2] != ids:
            raise SystemExit(f"rm_onpolicy: {kept} holds samples of another run, prompt set, --k or --n; "
                             "give another --samples file")
        return loaded[0], loaded[1]
    train_samples = generate(sft, rows, args.k, 1.0, 4242 + seed)
    samples = generate(sft, dev, args.n, 1.0, 1000 + seed)
    if kept:
        kept.write_text(json.dumps([train_samples, samples, ids]))
    return train_samples, samples


def main() -> int:
    args = parse_args()
    from afm_align.rundir import RunDir
    from afm_align.store import read_rows
    from alignment.rewards import load_rm
    from iterate_round3 import matmul_gflops, pin_threads_and_read_peak
    from rm_claims import gold_of, open_ended_rows

    peak_before = pin_threads_and_read_peak()
    start = time.perf_counter()
    run = Path(args.run)
    cfg = run_config(run)
    if args.oracle_temperature is not None:
        cfg = replace(cfg, gold_temperature=args.oracle_temperature)
    sft = run / "round_0" / "members" / "r0-sft"
    rows, gold = train_prompts(cfg, args.prompts)
    swaps = swap_pairs(rows, args.swaps, cfg.seed)
    swap_dev = swap_pairs(train_prompts(cfg, 100, "dev")[0], 1, cfg.seed + 1, "dev") if args.swaps or args.likelihood \
        or args.pmi or args.copy_share else []
    rows = [{k: v for k, v in r.items() if k != "reference"} for r in rows]
    dev, dev_gold = open_ended_rows(run, "dev")
    ids = {"run": str(run.resolve()), "train": [r["id"] for r in rows], "dev": [r["id"] for r in dev],
           "k": args.k, "n": args.n}
    train_samples, samples = r0_sft_samples(args, sft, ids, rows, dev, cfg.seed)
    by_prompt, ties = onpolicy_pairs(rows, train_samples, gold, cfg)
    random.Random(cfg.seed).shuffle(by_prompt)
    flat = [p for group in by_prompt for p in group]
    golds = [gold_of([r] * len(s), s, dev_gold) for r, s in zip(dev, samples)]
    one = statistics.fmean(g[0] for g in golds)
    ceiling = statistics.fmean(max(g) for g in golds)
    base_rows = read_rows(run / "round_1" / "rm-data", "preference")
    spread = rubric_spread(dev, samples, dev_gold)
    print("dev samples' gold rubric parts:", json.dumps(spread), flush=True)
    print(f"{len(flat)} on-policy pairs ({ties} of equal gold) from {len(rows)} train prompts; dev: {len(dev)} "
          f"prompts, one-sample gold {one:.4f}, gold's own best of {args.n} {ceiling:.4f}", flush=True)
    results = []
    if args.copy_share:
        from transformers import AutoTokenizer

        scorer = copy_share_scorer(AutoTokenizer.from_pretrained(sft, local_files_only=True), args.copy_share)
        results.append({"scorer": f"share of answer tokens in a {args.copy_share}-token run of the prompt",
                        **dev_report(scorer, dev, samples, golds), **swap_report(scorer, swap_dev)})
        print(json.dumps(results[-1]), flush=True)
    for pmi in [False] * args.likelihood + [True] * args.pmi:
        for member in (RunDir(run).base_model_path(), sft):
            results.append(likelihood_report(Path(member), dev, samples, golds, swap_dev, pmi))
            print(json.dumps(results[-1]), flush=True)
    with tempfile.TemporaryDirectory(prefix="rm_onpolicy_") as tmp:
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            added = flat if size < 0 else flat[:size]
            rm_dir = Path(args.keep_rms or tmp) / f"rm-{len(added)}"
            rm_dir.parent.mkdir(parents=True, exist_ok=True)
            minutes = train_rm(run, base_rows + swaps + added, rm_dir, cfg.seed, args.init, args.rm_overrides)
            scorer = load_rm(rm_dir)
            report = {"onpolicy_pairs": len(added), "swap_pairs": len(swaps),
                      "rm_rows": len(base_rows) + len(swaps) + len(added), "train_minutes": minutes,
                      **dev_report(scorer, dev, samples, golds), **swap_report(scorer, swap_dev)}
            results.append(report)
            print(json.dumps(report), flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    out = {"benchmark": "rm_onpolicy", "date": datetime.now().isoformat(timespec="seconds"), "commit": commit,
           "command": "python benchmarks/rm_onpolicy.py " + " ".join(sys.argv[1:]), "run": str(run),
           "seed": cfg.seed, "init": args.init, "oracle_temperature": cfg.gold_temperature,
           "rm_overrides": args.rm_overrides, "matmul_gflops": {"before": peak_before, "after": matmul_gflops()},
           "minutes": round((time.perf_counter() - start) / 60, 2), "split": "dev",
           "train_prompts": len(rows), "onpolicy_pairs": len(flat), "onpolicy_ties": ties,
           "round1_rm_rows": len(base_rows), "dev_prompts": len(dev), "dev_one_sample_gold": round(one, 4),
           "dev_gold_best_of_n": round(ceiling, 4), "n": args.n,
           "dev_rubric_spread": spread, "results": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
