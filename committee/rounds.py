"""The resumable iTeC round runner behind `afm-align iterate --round N` (afm-spec §3, DESIGN §3).

`iterate(cfg, target)` runs every missing round 0..N of the run in order. Round 0: `base` (the init
recipe, when the run has no base model), `data` (the run's fixed datasets: reference SFT data, the
dev and test prompts, the synthetic RM pairs), `members/sft` (member `r0-sft`), `eval`, `promotion`,
`test`, `report`. Each round N >= 1:
  prompts      fresh train-split prompts from the synth families (never a dev or test problem)
  responses    the committee (promoted members of the last round + the best earlier ones) answers, K each
  preferences  pairs across and within members, labelled by the oracle, humans or a judge RM
  rm           the RM refreshed on the preference data so far (synthetic pairs + every round's labels),
               continuing the last round's RM (`rm_warm_start`), which replays a share of the pairs it
               has seen (`rm_replay`) and all new ones
  members/<r>  one stage per candidate recipe, each from the round's start (the last round's best promoted)
  eval         every member on the run's dev prompts (committee.evaluation)
  promotion    the promotion rule on dev scores only (committee.promotion)
  test         the round's best promoted member (`eval_test_members`) on the test prompts, after promotion
               (committee.report_eval)
  report       the over-optimisation curves on the open-ended prompts (committee.overoptimisation: proxy RM
               and hidden gold along the MDLOO run against KL, and along best-of-N), then committee.report
Members are named `r<N>-<recipe>` (unique within the run).

Resuming: every stage writes its outputs atomically (temp path, then rename) and then marks itself done
in `round_<N>/manifest.json` with its outputs, seed, wall time, peak memory and the device each of its steps
ran on (`devices`, from `afm_align.member_io`, the one place that chooses it); a stage recorded done whose
outputs exist is skipped. Every stage is seeded from (seed, round, stage) and the torch thread count is
fixed (`threads`), so a run killed at any point (SIGKILL included) and started again gives the same
files as an uninterrupted run. Everything is checked before any work starts (`committee.run_checks`):
the round number, the config, the run stamp, every round manifest, the run's fixed settings, and that an
unfinished round is resumed with the config it began with.
The human annotator stops the round (`RoundPaused`, exit 0) until enough pairs are labelled.

What it simplifies: RS reuses the round's committee responses instead of sampling again; one process runs
the stages one after another.

Run: `afm-align iterate --round 3 [--run NAME] [--annotator oracle|human|judge] [--members sft,rs,dpo]`.
"""
from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from afm_align import member_io
from afm_align.config import config_dict
from afm_align.errors import UserError
from afm_align.rundir import RunDir
from afm_align.store import content_hash, dataset_dirname, read_rows, write_dataset
from committee import manifest as mf
from committee.annotators import label_pairs
from committee.candidates import CandidateInputs, train_candidate, train_rm, train_sft
from committee.round_config import IterateConfig, overrides_of
from committee.round_data import committee_responses, rm_rows, round_prompts, round_synthetic_pairs, run_datasets
from committee.run_checks import check_run, round_stages  # noqa: F401  (round_stages: part of this module's API)

class RoundPaused(Exception):
    """A round waits for something outside the process (human labels); re-running resumes it."""


def member_name(n: int, recipe: str) -> str:
    return f"r{n}-{recipe}"


def member_path(run: RunDir, name: str) -> Path:
    """A member's directory from its name `r<N>-<recipe>`."""
    match = re.match(r"^r(\d+)-", name)
    if not match:
        raise ValueError(f"member name '{name}' is not of the form r<N>-<recipe>")
    return run.member(int(match.group(1)), name)


def say(text: str) -> None:
    print(f"iterate: {text}", flush=True)


@dataclass
class Round:
    """One round being run: its config, run directory, number and manifest."""

    cfg: IterateConfig
    run: RunDir
    n: int
    manifest: mf.Manifest

    @property
    def dir(self) -> Path:
        return self.run.round(self.n)

    def round0(self) -> mf.Manifest:
        return mf.Manifest(self.run.round(0) / mf.MANIFEST_FILE, self.run.root,
                           mf.read(self.run.round(0) / mf.MANIFEST_FILE))

    def start_path(self) -> Path:
        start = self.manifest.data["start"]
        return self.run.base_model_path() if start == "base" else member_path(self.run, start)


# ---- the stage runner ---------------------------------------------------------------------------------

def stage_seed(seed: int, round_n: int, stage: str) -> int:
    """The seed of one stage, from (global seed, round, stage); stable across runs and machines."""
    import hashlib

    return int(hashlib.sha256(f"{seed}:{round_n}:{stage}".encode()).hexdigest()[:8], 16) % (2 ** 31 - 1)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def run_stage(rnd: Round, name: str, fn) -> dict:
    """Skip `name` when done; else run `fn(rnd, seed) -> (outputs, extras)` and record it in the manifest."""
    m = rnd.manifest
    if m.is_done(name):
        say(f"round {rnd.n}: {name}: done before, skipped")
        return m.stage(name)
    seed = stage_seed(rnd.cfg.seed, rnd.n, name)
    m.start(name, seed)
    say(f"round {rnd.n}: {name}: running (seed {seed})")
    seed_everything(seed)
    before, start = mf.peak_rss_mb(), time.perf_counter()
    member_io.DEVICES.clear()  # every model the stage loads, trains or samples asks member_io for its device
    outputs, extra = fn(rnd, seed)
    if member_io.DEVICES:
        extra = {**extra, "devices": dict(member_io.DEVICES)}
    record = m.finish(name, outputs, time.perf_counter() - start, before, **extra)
    where = ", ".join(sorted(set(member_io.DEVICES.values())))
    say(f"round {rnd.n}: {name}: done in {record['seconds']:.1f} s{f' on {where}' if where else ''} "
        f"(peak RSS {record['peak_rss_mb']:.0f} MiB)")
    return record


def write_run_dataset(run: RunDir, rows: list[dict], kind: str, producer: str, config: dict) -> Path:
    """Write `rows` under the run's `data/<kind>-<hash>/` (idempotent) and return the folder."""
    out = run.data / dataset_dirname(kind, content_hash(rows))
    write_dataset(rows, kind, out, producer=producer, config=config)
    return out


# ---- stages shared by every round ----------------------------------------------------------------------

def eval_rows(rnd: Round, split: str) -> list[dict]:
    """The run's fixed `dev` or `test` evaluation prompts (written by round 0's data stage)."""
    return read_rows(rnd.round0().output("data", split), "prompt")


def eval_gold(rnd: Round) -> dict:
    """The dev and test prompts' hidden gold ({prompt id: gold}; {} when the run has no open-ended family)."""
    from committee.gold_store import read_gold

    r0 = rnd.round0()
    stored = (r0.stage("data").get("outputs") or {}).get("gold")
    return read_gold(r0.resolve(stored) if stored else None)


def this_round_members(rnd: Round) -> list[dict]:
    """[{name, recipe, path, round}] of the members this round trained (skipped candidates left out)."""
    from committee.systems import candidate_spec

    names = ["sft"] if rnd.n == 0 else rnd.manifest.data["config"]["members"]
    out = []
    for cand in names:
        name = member_name(rnd.n, cand)
        recipe = cand if rnd.n == 0 else candidate_spec(rnd.cfg, cand).recipe
        if rnd.run.member(rnd.n, name).is_dir():
            out.append({"name": name, "recipe": recipe, "path": str(rnd.run.member(rnd.n, name).resolve()),
                        "round": rnd.n})
    return out


def stage_eval(rnd: Round, seed: int):
    from committee.evaluation import evaluate_round, read_leaderboard
    from committee.promotion import best_member

    members = this_round_members(rnd)
    if not members:
        raise RuntimeError(f"round {rnd.n}: no candidate produced a member to evaluate")
    previous = best_member(read_leaderboard(rnd.run, rnd.n - 1)) if rnd.n > 0 else None
    rm_dir = rnd.manifest.output("rm", "rm") if rnd.n > 0 else None
    entries = evaluate_round(rnd.run, rnd.n, members, eval_rows(rnd, "dev"), rm_dir, previous, cfg=rnd.cfg,
                             gold=eval_gold(rnd))
    top = {e["member"]: e["dev"]["mean"] for e in entries}
    return {"leaderboard": rnd.dir / "eval" / "leaderboard.json",
            "samples": rnd.dir / "eval" / "samples.jsonl"}, {"dev_mean": top, "previous_best": previous}


def stage_promotion(rnd: Round, seed: int):
    from dataclasses import asdict

    from committee.evaluation import read_leaderboard
    from committee.promotion import mark_promoted, promote

    entries = read_leaderboard(rnd.run, rnd.n)
    promoted, committee, reason = promote(entries, rnd.cfg.promotion, rnd.manifest.data.get("committee", []))
    mark_promoted(rnd.run, rnd.n, promoted)
    rnd.manifest.set(promotion={"rule": asdict(rnd.cfg.promotion), "promoted": promoted,
                                "committee": committee, "reason": reason})
    say(reason)
    return {"leaderboard": rnd.dir / "eval" / "leaderboard.json"}, {}


def stage_test(rnd: Round, seed: int):
    """Test-split scores for reports, after promotion (committee.report_eval); nothing reads them to decide."""
    from committee.report_eval import evaluate_test

    promoted = (rnd.manifest.data.get("promotion") or {}).get("promoted") or []  # best first
    wanted = set(promoted[:1] if rnd.cfg.eval_test_members == "best" else promoted)
    chosen = [m for m in this_round_members(rnd)
              if rnd.n == 0 or rnd.cfg.eval_test_members == "all" or m["name"] in wanted]
    rm_dir = rnd.manifest.output("rm", "rm") if rnd.n > 0 else None
    result = evaluate_test(rnd.run, rnd.n, chosen, eval_rows(rnd, "test"), rm_dir, cfg=rnd.cfg, gold=eval_gold(rnd))
    if result["rm_on_committee_answers"] is not None:
        rnd.manifest.set(rm_on_committee_answers=result["rm_on_committee_answers"])
    return {"test_leaderboard": rnd.dir / "eval" / "test_leaderboard.json",
            "test_samples": rnd.dir / "eval" / "test_samples.jsonl"}, {
        "test_mean": {e["member"]: e["test"]["mean"] for e in result["entries"]}}


def stage_report(rnd: Round, seed: int):
    """The over-optimisation curves of a round with open-ended prompts (committee.overoptimisation), then the report."""
    from committee.overoptimisation import round_overoptimisation
    from committee.report import write_report

    curves = round_overoptimisation(rnd.run.root, rnd.n) if rnd.n > 0 else None
    return {"report": write_report(rnd.run, rnd.n)}, {"overoptimisation": curves is not None}


# ---- round 0 --------------------------------------------------------------------------------------------

def stage_base(rnd: Round, seed: int):
    """The base model: kept when the run has one, else the init recipe (seeded with the run's seed)."""
    import torch

    from afm_align import init_base
    from synth.corpus import pretraining_corpus

    base = rnd.run.base
    if (base / "config.json").is_file() or (base / "base.json").is_file():
        return {"base": base}, {"reused": True}
    overrides = [f"seed={rnd.cfg.seed}", f"threads={rnd.cfg.init_threads}", *overrides_of(rnd.cfg, "init")]
    init_cfg = init_base.load(rnd.cfg.preset, None, overrides)
    init_cfg.run = str(rnd.run.root)
    try:
        report = init_base.main(init_cfg, *pretraining_corpus(init_cfg))
    finally:
        torch.set_num_threads(rnd.cfg.threads)  # back to the round's fixed thread count
    return {"base": base}, {"init": {k: v for k, v in report.items() if not isinstance(v, dict)}}


def stage_data(rnd: Round, seed: int):
    """The run's fixed datasets: SFT references, dev and test eval prompts, synthetic RM pairs; the dev and test
    prompts' hidden gold (open-ended families) goes to `round_0/gold.json`, read by evaluation only."""
    from committee.gold_store import GOLD_FILE, set_aside

    rows = run_datasets(rnd.cfg)
    evals, gold = set_aside(rows["dev"][1] + rows["test"][1], rnd.dir / GOLD_FILE)
    rows["dev"], rows["test"] = [("prompt", [r for r in evals if r["split"] == s]) for s in ("dev", "test")]
    conf = config_dict(rnd.cfg)
    out = {name: write_run_dataset(rnd.run, r, kind, f"committee.rounds/{name}", conf)
           for name, (kind, r) in rows.items()}
    return {**out, **gold}, {"rows": {name: len(r) for name, (_, r) in rows.items()}}


def stage_sft0(rnd: Round, seed: int):
    name = member_name(0, "sft")
    data = rnd.manifest.output("data", "sft_data")
    train_sft(rnd.cfg, rnd.run.base_model_path(), data, rnd.run.member(0, name), name, 0, seed, "sft0")
    return {"member": rnd.run.member(0, name)}, {}


# ---- round N >= 1 ---------------------------------------------------------------------------------------

def stage_prompts(rnd: Round, seed: int):
    """The round's fresh prompts and their sft rows; the open-ended prompts' hidden gold to `round_<N>/gold.json`."""
    from committee.gold_store import GOLD_FILE, set_aside

    prompts, sft = round_prompts(rnd.cfg, rnd.n, seed)
    prompts, gold = set_aside(prompts, rnd.dir / GOLD_FILE)
    p_dir, s_dir = rnd.dir / "prompts", rnd.dir / "sft-data"
    write_dataset(prompts, "prompt", p_dir, producer="committee.rounds/prompts", config={"round": rnd.n})
    write_dataset(sft, "sft", s_dir, producer="committee.rounds/prompts", config={"round": rnd.n})
    return {"prompts": p_dir, "sft_data": s_dir, **gold}, {"rows": len(prompts)}


def stage_responses(rnd: Round, seed: int):
    committee = {name: member_path(rnd.run, name) for name in rnd.manifest.data["committee"]}
    prompts = read_rows(rnd.manifest.output("prompts", "prompts"), "prompt")
    rows = committee_responses(rnd.cfg, committee, prompts, rnd.n, seed)
    out = rnd.dir / "responses"
    write_dataset(rows, "response", out, producer="committee.rounds/responses", config={"round": rnd.n})
    return {"responses": out}, {"rows": len(rows), "committee": list(committee)}


def stage_preferences(rnd: Round, seed: int):
    from collections import Counter

    prompts = {r["id"]: r for r in read_rows(rnd.manifest.output("prompts", "prompts"), "prompt")}
    responses = read_rows(rnd.manifest.output("responses", "responses"), "response")
    rows, message = label_pairs(rnd.cfg, rnd.run, rnd.n, prompts, responses, seed, latest_rm(rnd))
    if rows is None:
        rnd.manifest.wait("preferences", message)
        raise RoundPaused(message)
    if not rows:
        raise UserError(f"round {rnd.n}: the committee's answers gave no pair of distinct responses to label")
    out = rnd.dir / "preferences"
    write_dataset(rows, "preference", out, producer=f"committee.annotators/{rnd.cfg.annotator}",
                  config={"round": rnd.n, "annotator": rnd.cfg.annotator})
    levels = Counter(r["level"] for r in rows)
    return {"preferences": out}, {"pairs": len(rows), "levels": {str(k): levels[k] for k in sorted(levels)}}


def latest_rm(rnd: Round) -> Path | None:
    """The judge's RM: `judge_model`, else the RM of the latest earlier round."""
    if rnd.cfg.judge_model:
        return Path(rnd.cfg.judge_model)
    for m in range(rnd.n - 1, 0, -1):
        path = rnd.run.round(m) / "rm"
        if (path / "config.json").is_file():
            return path
    return None


def stage_rm(rnd: Round, seed: int):
    r0 = rnd.round0()
    earlier = read_rows(r0.output("data", "rm_pairs"), "preference")
    for m in range(1, rnd.n):
        earlier += read_rows(rnd.run.round(m) / "preferences", "preference") + round_synthetic_pairs(rnd.cfg, m)
    new = read_rows(rnd.dir / "preferences", "preference") + round_synthetic_pairs(rnd.cfg, rnd.n)
    last = rnd.run.round(rnd.n - 1) / "rm"
    init = last if rnd.cfg.rm_warm_start and (last / "config.json").is_file() else None
    rows = rm_rows(earlier, new, rnd.cfg.rm_replay if init is not None else 1.0, seed)
    data = rnd.dir / "rm-data"
    write_dataset(rows, "preference", data, producer="committee.rounds/rm", config={"round": rnd.n})
    out = rnd.dir / "rm"
    headline = train_rm(rnd.cfg, rnd.run.base_model_path(), data, out, seed, init_from=init)
    accuracy = {"accuracy": headline["pairwise_accuracy"], "n_pairs": headline["n_pairs"],
                "by_level": headline.get("pairwise_accuracy_by_level"), "grading": headline.get("grading_accuracy"),
                "eval_data": "test-split synthetic pairs, fixed for the run (no RM training pair shares their problems)"}
    rnd.manifest.set(rm_accuracy=accuracy)
    return {"rm": out, "data": data}, {"train_pairs": len(rows), "rm_accuracy": accuracy["accuracy"]}


def member_stage(candidate: str):
    """The stage that trains candidate `candidate` of the round (from the round's start, or from the earlier
    candidate of this round its spec names: committee.systems)."""
    def stage(rnd: Round, seed: int):
        from committee.systems import ROUND_START, candidate_spec

        spec = candidate_spec(rnd.cfg, candidate)
        name = member_name(rnd.n, candidate)
        out = rnd.run.member(rnd.n, name)
        m = rnd.manifest
        chained = spec.start != ROUND_START
        start = rnd.run.member(rnd.n, member_name(rnd.n, spec.start)) if chained else rnd.start_path()
        skipped = f"its start {start.name} sat the round out" if chained and not (start / "config.json").is_file() \
            else None
        inputs = CandidateInputs(
            round_n=rnd.n, round_dir=rnd.dir, start=start,
            committee=[member_path(rnd.run, c) for c in m.data["committee"]],
            prompts=m.output("prompts", "prompts"), sft_data=m.output("prompts", "sft_data"),
            responses=m.output("responses", "responses"), preferences=m.output("preferences", "preferences"),
            rm=m.output("rm", "rm"),
            earlier_rs=[d for d in (rnd.run.round(k) / "rs-data" for k in range(1, rnd.n)) if d.is_dir()],
            earlier_sft=[d for d in (rnd.run.round(k) / "sft-data" for k in range(1, rnd.n)) if d.is_dir()],
            this_round={c: rnd.run.member(rnd.n, member_name(rnd.n, c)) for c in m.data["config"]["members"]},
            run=rnd.run, sft0_data=rnd.round0().output("data", "sft_data"))
        skipped = skipped or train_candidate(rnd.cfg, spec, inputs, name, out, seed)
        if skipped:
            say(f"round {rnd.n}: {name}: skipped ({skipped})")
            return {}, {"skipped": skipped}
        return {"member": out}, {}
    return stage


ROUND0 = {"base": stage_base, "data": stage_data, "members/sft": stage_sft0, "eval": stage_eval,
          "promotion": stage_promotion, "test": stage_test, "report": stage_report}
ROUND_N = {"prompts": stage_prompts, "responses": stage_responses, "preferences": stage_preferences,
           "rm": stage_rm, "eval": stage_eval, "promotion": stage_promotion, "test": stage_test,
           "report": stage_report}


def stage_fn(n: int, name: str):
    """The function of stage `name` in round `n` (`members/<recipe>` trains that candidate)."""
    if n == 0:
        return ROUND0[name]
    return ROUND_N.get(name) or member_stage(name.split("/", 1)[1])


# ---- rounds ---------------------------------------------------------------------------------------------

def round_header(cfg: IterateConfig, run: RunDir, n: int) -> dict:
    """What a new round records before its first stage: version, config, committee and start."""
    from afm_align import __version__

    header = {"afm_align": __version__, "config": config_dict(cfg), "committee": [], "start": "base"}
    if n > 0:
        from committee.evaluation import read_leaderboard
        from committee.promotion import best_member

        previous = mf.read(run.round(n - 1) / mf.MANIFEST_FILE)
        promotion = previous.get("promotion") or {}
        start = (promotion.get("promoted") or [None])[0] or best_member(read_leaderboard(run, n - 1))
        header.update(committee=list(promotion.get("committee") or [start]), start=start)
    return header


def sandbox_record() -> dict:
    """The code sandbox's isolation mode and memory cap (synth.sandbox), for the round manifest."""
    from synth.sandbox import isolation_mode
    from synth.sandbox_plans import memory_cap

    return {"isolation": isolation_mode(), "memory_cap": memory_cap()}


def run_round(cfg: IterateConfig, run: RunDir, n: int) -> mf.Manifest:
    """Run round `n` to the end (stages already done are skipped)."""
    manifest = mf.Manifest.open(run.round(n), run.root, n, round_header(cfg, run, n))
    rnd = Round(cfg=cfg, run=run, n=n, manifest=manifest)
    stages = round_stages(n, manifest.data["config"]["members"])
    if manifest.all_done(stages):
        say(f"round {n}: complete, nothing to do")
        return manifest
    manifest.set(sandbox=sandbox_record())  # how model-written code is isolated in this session of the round
    for name in stages:
        run_stage(rnd, name, stage_fn(n, name))
    return manifest


def iterate(cfg: IterateConfig, target: int) -> list[mf.Manifest]:
    """Run every missing round 0..target of `cfg.run`, in order; returns the round manifests."""
    import torch

    run = check_run(cfg, target)
    os.environ["AFM_ALIGN_THREADS"] = str(cfg.threads)
    torch.set_num_threads(cfg.threads)
    run.ensure()
    return [run_round(cfg, run, n) for n in range(target + 1)]
