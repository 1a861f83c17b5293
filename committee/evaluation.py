"""Evaluation of committee members on the dev split: accuracy with honest intervals, win rates, Elo.

The protocol (synth.splits): every member is scored on `dev` prompts, and promotion reads only what this
module writes; the `test` split is scored afterwards by `committee.test_scoring`, into other files, for
reports only. Both sets hold distinct problem identities that no training data of any kind contains.

What it does, for round N (`evaluate_round`):
1. every member trained in round N answers each dev prompt once, greedily (temperature 0), through the
   one sampling path (`afm_align.generation.generate`); members of earlier rounds are never regenerated:
   their answers are copied from their own `round_<M>/eval/samples.jsonl`;
2. new answers are graded by their family's verifier (`synth.<family>_tasks.reward`, batched per domain;
   the code family runs its tests in the sandbox in parallel), answers to open-ended prompts by their hidden
   gold rubric (committee.gold_store: the score in [0, 1] is the grade, a perfect 1.0 counts as solved, and
   `dev_gold` holds the mean gold score per open-ended domain); copied answers keep their grade;
3. new answers are scored by the round-N reward model (an earlier member's answers keep the score of the
   round that scored them: the scores are shown beside answers, nothing ranks by them); win rates and the
   Elo leaderboard are judged by the verifiers (`JUDGE`), which no member trains as a judge, never by the
   RM that DPO's labels and MDLOO's reward come from;
4. `round_<N>/eval/samples.jsonl` (all members of rounds 0..N: prompt_id, prompt, domain, identity,
   member, completion, rm_score, verifier_score), `winrates.json` and `leaderboard.json` are written
   atomically. The leaderboard holds one entry per member of rounds 0..N, ranked by dev mean: member,
   round, recipe, promoted, dev {domain: acc, mean}, dev_ci95, dev_domains {domain: accuracy, n,
   problems, ci95}, elo, elo_ci95, winrate_vs_prev_best, judge, n_prompts, path, and kl / reward for RL
   members; the entries of round N's members carry `verifier_errors` ({family: count} of exceptions in the
   verifiers' own code while grading this round, each scored 0; see synth.families). `promoted` is False for round-N members until `committee.promotion.mark_promoted` records
   the decision; earlier members keep the flag of their own round.

Statistics (`committee.eval_stats`): a prompt is solved when its verifier score is 1.0; per-domain
accuracy has a Wilson interval; the mean over domains (each domain counts once) has a cluster-bootstrap
interval over problem identities; `paired_difference` is paired on shared prompts.

Member names are unique within a run (the runner names them `r<N>-<recipe>`, e.g. `r1-dpo`).
What it simplifies: one greedy answer per prompt (no pass@k).

Run: called by the round runner (`afm-align iterate`); tests: `python -m pytest tests/committee/test_evaluation.py`.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from afm_align.errors import UserError
from afm_align.rundir import RunDir
from afm_align.store import write_json_atomic
from committee.leaderboard import elo_ratings, score_matrix

SAMPLES_FILE = "samples.jsonl"  # dev answers: what promotion's leaderboard is computed from
LEADERBOARD_FILE = "leaderboard.json"  # dev: the only file promotion reads
WINRATES_FILE = "winrates.json"
TEST_SAMPLES_FILE = "test_samples.jsonl"  # test answers: reports only
TEST_FILE = "test_leaderboard.json"  # test: reports only, written after promotion
SAMPLE_KEYS = ("prompt_id", "prompt", "domain", "identity", "member", "completion", "rm_score", "verifier_score")
JUDGE_KEY = "verifier_score"  # win rates and Elo: the families' exact verifiers judge (no member trains a judge)
JUDGE = "the families' verifiers (higher score wins, ties half)"


@dataclass
class EvalSettings:
    """Evaluation knobs, read from the round config's `eval_*` keys (and `seed`)."""

    max_new_tokens: int = 128  # eval_max_new_tokens: greedy answer length
    batch_size: int = 32  # eval_batch_size: sequences per generate call
    rm_batch_size: int = 16  # eval_rm_batch_size: rows per RM forward pass
    n_boot: int = 1000  # eval_bootstrap: bootstrap resamples for every interval
    bt_prior: float = 0.01  # eval_bt_prior: L2 prior of the Bradley-Terry fit
    seed: int = 0  # seed: generation and bootstrap seed
    backend: str = "auto"  # generation_backend: hf | vllm | auto

    @classmethod
    def from_cfg(cls, cfg=None) -> EvalSettings:
        """From an EvalSettings, a dict or any config object; missing keys keep the defaults."""
        if isinstance(cfg, cls):
            return cfg
        get = cfg.get if isinstance(cfg, dict) else (lambda key, default: getattr(cfg, key, default))
        out = cls()
        for f in fields(cls):
            key = {"seed": "seed", "backend": "generation_backend"}.get(f.name) or \
                "eval_" + {"n_boot": "bootstrap"}.get(f.name, f.name)
            value = get(key, None)
            if value is not None:
                setattr(out, f.name, type(getattr(out, f.name))(value))
        return out


# ---- sampling, verifying, scoring ---------------------------------------------------------------------

def sample_members(members: dict[str, Path], heldout_rows: list[dict], *, max_new_tokens: int = 128,
                   batch_size: int = 32, seed: int = 0, backend: str = "auto",
                   stage: str = "evaluation") -> list[dict]:
    """Greedy answers of every member on the held-out rows: {prompt_id, prompt, domain, member, completion}.

    Through the one member I/O path (`afm_align.member_io.generate_from`): the member's device, vLLM when
    configured, one member in memory at a time.
    """
    from afm_align.member_io import generate_from

    prompts = [row["prompt"] for row in heldout_rows]
    out = []
    for name, path in members.items():
        texts = generate_from(path, prompts, stage=stage, k=1, max_new_tokens=max_new_tokens, temperature=0.0,
                              batch_size=batch_size, seed=seed, backend=backend)
        out += [{"prompt_id": row["id"], "prompt": row["prompt"], "domain": row["domain"], "member": name,
                 "identity": row.get("identity"), "completion": text[0]} for row, text in zip(heldout_rows, texts)]
    return out


def verify_samples(samples: list[dict], heldout_rows: list[dict], gold: dict | None = None) -> list[dict]:
    """Copies of `samples` with `verifier_score` from their family's reward function (None: no verifier).

    `gold` ({prompt id: gold}, committee.gold_store; evaluation only): an answer to an open-ended prompt gets its
    hidden rubric's gold score in [0, 1] as its grade (solved: a perfect 1.0); without it such answers stay None
    (the committee's training responses are never graded by the gold).
    Verifier-side exceptions while grading (scored 0, not the model's fault) are counted per family: the
    counts are reset first and, afterwards, `synth.families.verifier_errors()` holds this grading's counts.
    """
    from committee.gold_store import gold_scores
    from synth.families import FAMILIES, family, reset_verifier_errors

    reset_verifier_errors()
    by_id = {row["id"]: row for row in heldout_rows}
    missing = sorted({s["prompt_id"] for s in samples} - set(by_id))
    if missing:
        raise ValueError(f"samples refer to prompt ids not among the evaluation rows (e.g. '{missing[0]}').")
    out = [{**s, "verifier_score": None, "identity": s.get("identity") or by_id[s["prompt_id"]].get("identity")}
           for s in samples]
    for domain in FAMILIES:
        mine = [s for s in out if s["domain"] == domain]
        if not mine:
            continue
        rows = [by_id[s["prompt_id"]] for s in mine]
        scores = family(domain).reward([r["prompt"] for r in rows], [s["completion"] for s in mine],
                                       domain=[domain] * len(mine), verifier=[r.get("verifier") for r in rows])
        for s, score in zip(mine, scores):
            s["verifier_score"] = None if score is None else float(score)
    if gold:
        for s, score in zip(out, gold_scores(out, gold)):
            if score is not None:
                s["verifier_score"] = float(score)
    return out


def _rm_scorer(rm, batch_size: int):
    """A TRL-signature reward function: `rm` itself when callable, else the RM saved at that path."""
    if rm is None or callable(rm):
        return rm
    from reward_model.scorer import RewardScorer, load_reward_model

    model, tokenizer = load_reward_model(str(rm), stage="rm-scoring")  # on member_io's device
    return RewardScorer(model, tokenizer, batch_size=batch_size, stage="rm-scoring")


def score_samples(samples: list[dict], rm_dir, *, batch_size: int = 16) -> list[dict]:
    """Copies of `samples` with `rm_score` from the RM at `rm_dir` (or a callable scorer; None: no scores).

    Each distinct (prompt, completion) is scored once, so two members that give the same answer tie in the
    win rates and the Elo fit: scored in different batches, padding noise used to split such pairs.
    """
    scorer = _rm_scorer(rm_dir, batch_size)
    if scorer is None or not samples:
        return [{**s, "rm_score": None} for s in samples]
    keys = [(json.dumps(s["prompt"], sort_keys=True), s["completion"]) for s in samples]
    first = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    unique = list(first.values())
    rewards = scorer([samples[i]["prompt"] for i in unique], [samples[i]["completion"] for i in unique])
    by_key = {keys[i]: float(r) for i, r in zip(unique, rewards)}
    return [{**s, "rm_score": by_key[key]} for s, key in zip(samples, keys)]


def rm_accuracy(rm_dir, preference_rows: list[dict]) -> float:
    """Pairwise accuracy of the RM at `rm_dir` on held-out labelled preference pairs (chosen scored higher)."""
    from reward_model.evaluate import evaluate_preferences
    from reward_model.recipe import to_dataset
    from reward_model.scorer import RewardScorer, load_reward_model

    if not preference_rows:
        raise UserError("rm_accuracy needs at least one held-out preference pair.")
    model, tokenizer = load_reward_model(str(rm_dir), stage="rm-eval")
    scorer = RewardScorer(model, tokenizer, stage="rm-eval")
    return float(evaluate_preferences(scorer, to_dataset(preference_rows))["accuracy"])


# ---- statistics (committee.eval_stats holds the formulas) ----------------------------------------------

def split_accuracy(samples: list[dict], member: str, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """One member's accuracy report (per domain with Wilson intervals, mean with a cluster bootstrap)."""
    from committee.eval_stats import accuracy_report

    return accuracy_report(samples, member, n_boot=n_boot, seed=seed)


def paired_difference(samples: list[dict], member_a: str, member_b: str, *, n_boot: int = 1000,
                      seed: int = 0) -> tuple[float, list[float]]:
    """(a - b in mean-over-domains accuracy, its 95% cluster-bootstrap interval), paired on shared prompts."""
    from committee.eval_stats import paired_report

    report = paired_report(samples, member_a, member_b, n_boot=n_boot, seed=seed)
    return report["delta"], report["ci95"]


def domain_differences(samples: list[dict], member_a: str, member_b: str, *, n_boot: int = 1000,
                       seed: int = 0) -> dict[str, tuple[float, list[float], int]]:
    """{domain: (a - b accuracy, 95% interval, prompts)} on the prompts both members answered."""
    from committee.eval_stats import paired_report

    per_domain = paired_report(samples, member_a, member_b, n_boot=n_boot, seed=seed)["per_domain"]
    return {d: (v["delta"], v["ci95"], v["n"]) for d, v in per_domain.items()}


def win_rates(samples: list[dict], members: list[str], key: str = JUDGE_KEY) -> dict[tuple[str, str], float]:
    """{(a, b): share of shared prompts where a's `key` score beats b's (ties 0.5)}; judge: the verifiers.

    Pairs without a prompt that both members answered (with scores) are absent.
    """
    _, scores = score_matrix(samples, list(members), key)
    out = {}
    for i, a in enumerate(members):
        for j, b in enumerate(members):
            both = ~np.isnan(scores[:, i]) & ~np.isnan(scores[:, j])
            if i != j and both.any():
                sa, sb = scores[both, i], scores[both, j]
                out[(a, b)] = round(float(np.mean((sa > sb) + 0.5 * (sa == sb))), 4)
    return out


# ---- round files ------------------------------------------------------------------------------------

def as_run(run_dir) -> RunDir:
    """A RunDir from a RunDir or the run's directory path."""
    return run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))


def eval_rounds(run: RunDir) -> list[int]:
    """Rounds of the run that have an `eval/leaderboard.json`, ascending."""
    found = []
    for path in run.root.glob("round_*"):
        suffix = path.name[len("round_"):]
        if suffix.isdigit() and (path / "eval" / LEADERBOARD_FILE).is_file():
            found.append(int(suffix))
    return sorted(found)


def read_leaderboard(run: RunDir, round_n: int) -> list[dict]:
    """The entries of `round_<N>/eval/leaderboard.json`; a missing file is a one-line ValueError."""
    file = run.round(round_n) / "eval" / LEADERBOARD_FILE
    if not file.is_file():
        raise UserError(f"round {round_n} of run {run.root} has no leaderboard ({file} is missing).")
    return json.loads(file.read_text(encoding="utf-8"))


def read_samples(run: RunDir, round_n: int, split: str = "dev") -> list[dict]:
    """The rows of `round_<N>/eval/samples.jsonl` (dev) or `test_samples.jsonl` (empty when absent)."""
    file = run.round(round_n) / "eval" / (TEST_SAMPLES_FILE if split == "test" else SAMPLES_FILE)
    if not file.is_file():
        return []
    with open(file, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def earlier_entries(run: RunDir, round_n: int) -> list[dict]:
    """Each earlier member's entry from its own round's leaderboard (rounds below N that were evaluated)."""
    return [e for m in eval_rounds(run) if m < round_n for e in read_leaderboard(run, m) if e["round"] == m]


def reused_samples(run: RunDir, entries: list[dict], prompt_ids: set[str], split: str = "dev",
                    keep_rm: bool = False) -> list[dict]:
    """Earlier members' graded answers, copied from the round where they were scored (never regenerated).

    `keep_rm`: keep the RM score the sample got in its own round (else it is dropped, to be scored again).
    """
    out, cache = [], {}
    for entry in entries:
        m = entry.get("scored_in", entry["round"])
        cache.setdefault(m, read_samples(run, m, split))
        rows = [s for s in cache[m] if s["member"] == entry["member"] and s["prompt_id"] in prompt_ids]
        if not rows:
            raise UserError(f"no {split} samples of earlier member '{entry['member']}' in round {m}; "
                             f"evaluate round {m} first.")
        out += [{k: s.get(k) for k in SAMPLE_KEYS if keep_rm or k != "rm_score"} for s in rows]
    return out


def _rl_metrics(path) -> dict:
    """kl / reward of an RL member (meta.json `final_metrics`, or top level), else {}."""
    file = Path(path or "") / "meta.json"
    if not path or not file.is_file():
        return {}
    meta = json.loads(file.read_text(encoding="utf-8"))
    final = {**meta, **(meta.get("final_metrics") or {})}
    return {k: final[k] for k in ("kl", "reward") if isinstance(final.get(k), (int, float))}


def accuracy_fields(samples: list[dict], member: str, split: str, s: EvalSettings) -> dict:
    """{split: {domain: acc, "mean": acc}, f"{split}_ci95": [lo, hi], f"{split}_domains": {d: {n, ci95, ...}}}."""
    try:
        report = split_accuracy(samples, member, n_boot=s.n_boot, seed=s.seed)
    except ValueError:  # no graded prompt (e.g. only general prompts): no accuracy, still on the board
        return {split: {"mean": None}, f"{split}_ci95": None, f"{split}_domains": {}}
    per_domain = {d: v["accuracy"] for d, v in report["per_domain"].items()}
    return {split: {**per_domain, "mean": report["mean"]}, f"{split}_ci95": report["ci95"],
            f"{split}_domains": report["per_domain"]}


def gold_fields(samples: list[dict], member: str, split: str, s: EvalSettings) -> dict:
    """{f"{split}_gold": {open-ended domain: {mean, ci95, n}}} of one member; {} when it answered none."""
    from committee.gold_store import gold_report

    report = gold_report(samples, member, n_boot=s.n_boot, seed=s.seed)
    return {f"{split}_gold": report} if report else {}


def _entry(samples: list[dict], info: dict, elo: dict, rates: dict, previous_best: str | None,
           s: EvalSettings) -> dict:
    name = info["member"]
    entry = {"member": name, "round": info["round"], "recipe": info.get("recipe"), "path": info.get("path"),
             "promoted": bool(info.get("promoted", False)), **accuracy_fields(samples, name, "dev", s),
             **gold_fields(samples, name, "dev", s),
             "n_prompts": len({x["prompt_id"] for x in samples if x["member"] == name}),
             "winrate_vs_prev_best": rates.get((name, previous_best)), "judge": JUDGE, **elo[name]}
    entry.update({k: info[k] for k in ("kl", "reward") if k in info})
    return entry


def evaluate_round(run_dir, round_n: int, members: list[dict], heldout_rows: list[dict], rm_dir,
                   previous_best: str | None, *, cfg=None, gold: dict | None = None) -> list[dict]:
    """Evaluate round N's members on the dev rows against every earlier member; write the round's dev files.

    members: [{name, recipe, path, round}] trained this round. heldout_rows: the dev prompt rows (id, prompt,
    domain, verifier, identity). rm_dir: the round's RM directory (or a callable scorer, or None for no RM).
    previous_best: the member the win rate is taken against (None in round 0). cfg: see EvalSettings.
    gold: the dev prompts' hidden gold ({prompt id: gold}, round 0's gold.json): open-ended answers are graded
    by it (`verify_samples`), and each entry gets `dev_gold` (mean gold score per open-ended domain).
    Returns the leaderboard entries (all members of rounds 0..N, best dev mean first). Test rows never
    reach this function: `evaluate_test` scores them after promotion, into other files.
    """
    run, s = as_run(run_dir), EvalSettings.from_cfg(cfg)
    earlier = earlier_entries(run, round_n)
    names = [m["name"] for m in members] + [e["member"] for e in earlier]
    if len(set(names)) != len(names):
        raise ValueError(f"member names must be unique within a run; round {round_n} repeats one of {names}.")
    if previous_best is not None and previous_best not in names:
        raise ValueError(f"previous best '{previous_best}' is not a member of rounds 0..{round_n}.")
    new = sample_members({m["name"]: Path(m["path"]) for m in members}, heldout_rows,
                         max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=s.seed, backend=s.backend)
    old = reused_samples(run, earlier, {r["id"] for r in heldout_rows}, keep_rm=True)
    samples = old + score_samples(verify_samples(new, heldout_rows, gold), rm_dir, batch_size=s.rm_batch_size)
    from synth.families import verifier_errors  # what verify_samples just counted (it resets first)

    errors = verifier_errors()
    samples = sorted(({k: x.get(k) for k in SAMPLE_KEYS} for x in samples),
                     key=lambda x: (x["member"], x["prompt_id"]))
    infos = [{**e} for e in earlier] + [
        {"member": m["name"], "round": m.get("round", round_n), "recipe": m.get("recipe"),
         "path": str(m["path"]), "promoted": False, **_rl_metrics(m["path"])} for m in members]
    elo = elo_ratings(samples, names, n_boot=s.n_boot, seed=s.seed, prior=s.bt_prior, key=JUDGE_KEY)
    rates = win_rates(samples, names)
    entries = [_entry(samples, info, elo, rates, previous_best, s) for info in infos]
    entries.sort(key=lambda e: (e["dev"]["mean"] is None, -(e["dev"]["mean"] or 0.0), e["member"]))
    for e in entries:  # members graded now carry this grading's {family: verifier errors} (0 everywhere: none)
        if e["member"] in {m["name"] for m in members}:
            e["verifier_errors"] = errors
    out = run.round(round_n) / "eval"
    write_jsonl_atomic(out / SAMPLES_FILE, samples)
    order = [e["member"] for e in entries]
    write_json_atomic(out / WINRATES_FILE, {"members": order, "judge": JUDGE, "split": "dev", "matrix": [
        [rates.get((a, b)) for b in order] for a in order]})
    write_json_atomic(out / LEADERBOARD_FILE, entries)
    return entries
