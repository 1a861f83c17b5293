"""Who labels a round's preference pairs: the oracle, humans (through the label store), or a judge RM.

Pairs: `form_pairs(responses, per_prompt, seed)` takes the committee's responses to each prompt and forms
`per_prompt` pairs: the first across two members (when the committee has two with distinct answers), the
rest within one member's K samples (falling back to any two distinct answers). Identical texts are never
paired. The choice is seeded per prompt, so the same responses give the same pairs.

Annotators (`ANNOTATORS` maps each name to what it is; the round runner calls the functions):
- **oracle** (`label_oracle`): pairs of open-ended prompts go to the gold oracle (committee.gold_oracle: a
  Bradley-Terry choice on the hidden gold scores, the round's `gold.json`); for the others, each response
  carries its family's verifier score (in [0, 1]); the four
  grades follow from it by simple rules (`oracle_grades`: the dimensions the family's verifier measures get
  2 / 1 / 0 for full / partial / failed, `verbosity` compares the word count with the reference answer's,
  dimensions nobody measures are null). The preferred response has the higher score; the level grows with
  the score gap (`LEVEL_GAPS`); equal scores are decided by the grades, then by length closeness, level 0.
  Label noise makes it behave like several humans who sometimes disagree: with probability
  `flip * FLIP_SCALE[level]` the choice is flipped (close pairs far more often than clear ones), and with
  probability `jitter` the level moves by one (inward at 0 and 3). The noise is seeded per pair (hash of
  seed and pair id), so a pair gets the same label in every run.
- **human** (`queue_pairs` + `human_labels`): the pairs go into the run's label store (`labels.sqlite`) as
  the annotation app's queue; the round goes on once enough pairs carry a label, with the exported rows.
- **judge** (`label_judge`): a reward model scores both responses; the higher score wins, the level follows
  the score gap (`judge_levels`), and the grades are the RM's own grading heads.

What it simplifies: the oracle's grades are rules on one verifier score and a length ratio, not a reading
of the text; one oracle label per pair (no soft labels).

Run: `python -m pytest tests/committee/test_annotators.py`.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS

ANNOTATORS = {
    "oracle": "synth verifiers and rules give the grades and the level, with seeded label noise",
    "human": "pairs are queued in the label store for the Gradio app; the round waits for the labels",
    "judge": "a reward model picks the winner by its score gap",
}
GUIDELINE = "oracle-v1"
# score gap (at least) -> preference level, checked in this order; smaller gaps are level 0
LEVEL_GAPS = ((0.75, 3), (0.4, 2), (0.15, 1))
# how much of the flip probability applies at each level: close pairs are where annotators disagree
FLIP_SCALE = {0: 1.0, 1: 0.5, 2: 0.2, 3: 0.05}
# family -> grading dimensions its verifier score measures
MEASURED = {
    "math": ("instruction_following", "truthfulness"),
    "tool": ("instruction_following", "truthfulness"),
    "code": ("instruction_following", "truthfulness"),
    "if": ("instruction_following",),
    "safety": ("harmlessness",),
}


def pair_seed(seed: int, key: str) -> int:
    """A stable per-item seed (sha256, not Python's salted hash)."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16)


def _text(completion) -> str:
    if isinstance(completion, list):
        return "\n".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return completion if isinstance(completion, str) else ""


# ---- pairs ----------------------------------------------------------------------------------------

def _distinct(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        text = _text(row["completion"]).strip()
        if text and text not in seen:
            seen.add(text)
            out.append(row)
    return out


def _pick_pair(rng: random.Random, pool: list[dict], across: bool, used: set) -> tuple[dict, dict] | None:
    """Two responses of `pool` not paired yet, from different members (across) or from one member (within)."""
    options = [(a, b) for i, a in enumerate(pool) for b in pool[i + 1:]
               if (a["member"] != b["member"]) == across and (a["id"], b["id"]) not in used]
    return rng.choice(options) if options else None


def form_pairs(responses: list[dict], per_prompt: int, seed: int) -> list[dict]:
    """Pairs {pair_id, prompt_id, a, b, kind} per prompt: one across members, the rest within (seeded)."""
    by_prompt: dict[str, list[dict]] = {}
    for row in responses:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    pairs = []
    for prompt_id in sorted(by_prompt):
        pool = _distinct(sorted(by_prompt[prompt_id], key=lambda r: r["id"]))
        rng = random.Random(pair_seed(seed, prompt_id))
        used: set[tuple[str, str]] = set()
        for i in range(per_prompt):
            kinds = ("across", "within") if i == 0 else ("within", "across")
            kind, pick = next(((k, p) for k in kinds if (p := _pick_pair(rng, pool, k == "across", used))),
                              (None, None))
            if pick is None:
                break
            used.add((pick[0]["id"], pick[1]["id"]))
            a, b = pick if rng.random() < 0.5 else pick[::-1]
            pair_id = f"{prompt_id}-{hashlib.sha256((a['id'] + '|' + b['id']).encode()).hexdigest()[:10]}"
            pairs.append({"pair_id": pair_id, "prompt_id": prompt_id, "a": a, "b": b, "kind": kind})
    return pairs


# ---- oracle -----------------------------------------------------------------------------------------

def verbosity_grade(completion: str, reference: str | None) -> int | None:
    """2 when the word count is within [0.5, 1.5] x the reference's, 1 within [0.25, 3], else 0."""
    if not reference:
        return None
    ratio = len(completion.split()) / max(1, len(reference.split()))
    return 2 if 0.5 <= ratio <= 1.5 else 1 if 0.25 <= ratio <= 3.0 else 0


def _grade(score: float) -> int:
    return 2 if score >= 0.999 else 1 if score >= 0.5 else 0


def oracle_grades(domain: str, score: float | None, completion: str, reference: str | None) -> dict:
    """The four grades of one response by the oracle's rules (null where nothing measures a dimension)."""
    grades = {d: None for d in GRADE_DIMENSIONS}
    if score is not None:
        for dim in MEASURED.get(domain, ()):
            grades[dim] = _grade(score)
    grades["verbosity"] = verbosity_grade(completion, reference)
    if not completion.strip():
        grades["instruction_following"] = 0
    return grades


def preference_level(gap: float) -> int:
    """Level 3/2/1 for score gaps of at least 0.75/0.4/0.15, else 0 (negligibly better)."""
    return next((level for bound, level in LEVEL_GAPS if gap >= bound - 1e-9), 0)


def _tiebreak(grades_a: dict, grades_b: dict, text_a: str, text_b: str, reference: str | None) -> int:
    """+1 when a wins the tie, -1 when b does, 0 when nothing tells them apart."""
    total = lambda g: sum(v for v in g.values() if v is not None)
    if total(grades_a) != total(grades_b):
        return 1 if total(grades_a) > total(grades_b) else -1
    if reference:
        target = len(reference.split())
        da, db = abs(len(text_a.split()) - target), abs(len(text_b.split()) - target)
        if da != db:
            return 1 if da < db else -1
    return 0


def jittered(level: int, rng: random.Random, jitter: float) -> int:
    """`level` moved by one with probability `jitter` (inward at the ends of 0..3)."""
    if rng.random() >= jitter:
        return level
    step = rng.choice((-1, 1))
    return level + step if 0 <= level + step <= 3 else level - step


@dataclass
class OracleNoise:
    """The oracle's label noise: flip probability (scaled by FLIP_SCALE), level jitter, and its seed."""

    flip: float = 0.1
    jitter: float = 0.2
    seed: int = 0


def oracle_label(pair: dict, prompt: dict, noise: OracleNoise) -> dict:
    """The oracle's preference row for one pair (prompt: the prompt row, with `reference` when known)."""
    a, b = pair["a"], pair["b"]
    ta, tb = _text(a["completion"]), _text(b["completion"])
    reference = prompt.get("reference")
    sa, sb = a.get("verifier_score"), b.get("verifier_score")
    ga = oracle_grades(prompt["domain"], sa, ta, reference)
    gb = oracle_grades(prompt["domain"], sb, tb, reference)
    rng = random.Random(pair_seed(noise.seed, pair["pair_id"]))
    gap = abs((sa or 0.0) - (sb or 0.0))
    level = preference_level(gap)
    if gap > 1e-9:
        a_wins = (sa or 0.0) > (sb or 0.0)
    else:
        tie = _tiebreak(ga, gb, ta, tb, reference)
        a_wins = tie > 0 if tie else rng.random() < 0.5
    if rng.random() < noise.flip * FLIP_SCALE[level]:
        a_wins = not a_wins
    level = jittered(level, rng, noise.jitter)
    chosen, rejected = (a, b) if a_wins else (b, a)
    return preference_row(pair, prompt, chosen, rejected, level, ga if a_wins else gb, gb if a_wins else ga, "oracle")


def preference_row(pair, prompt, chosen, rejected, level, grades_chosen, grades_rejected, source) -> dict:
    """The preference row of a labelled pair (every annotator writes this shape; schema `preference`)."""
    return {
        "id": pair["pair_id"], "prompt": prompt["prompt"],
        "chosen": [{"role": "assistant", "content": _text(chosen["completion"])}],
        "rejected": [{"role": "assistant", "content": _text(rejected["completion"])}],
        "level": int(level), "grades_chosen": grades_chosen, "grades_rejected": grades_rejected,
        "annotator": source, "source": source, "guideline_version": f"{source}-v1", "domain": prompt["domain"],
        "split": "train", "kind": pair["kind"], "member_chosen": chosen["member"],
        "member_rejected": rejected["member"],
    }


def label_oracle(pairs: list[dict], prompts: dict[str, dict], noise: OracleNoise, gold: dict | None = None,
                 gold_noise=None) -> list[dict]:
    """Oracle preference rows for `pairs` (prompts: prompt rows by id).

    A pair of an open-ended prompt (synth.families.OPEN_ENDED) is labelled by the gold oracle from the prompt's
    hidden gold (`gold`: {prompt id: gold}, committee.gold_store; `gold_noise`: committee.gold_oracle.GoldNoise);
    a missing gold is a RuntimeError (the round's gold file is part of its prompts stage).
    """
    from committee.gold_oracle import GoldNoise, gold_label  # it imports this module: imported here
    from synth.families import OPEN_ENDED

    rows = []
    for p in pairs:
        prompt = prompts[p["prompt_id"]]
        if prompt["domain"] not in OPEN_ENDED:
            rows.append(oracle_label(p, prompt, noise))
            continue
        if not gold or p["prompt_id"] not in gold:
            raise RuntimeError(f"open-ended prompt {p['prompt_id']} has no gold in the round's gold store")
        rows.append(gold_label(p, prompt, gold[p["prompt_id"]], gold_noise or GoldNoise(seed=noise.seed)))
    return rows


# ---- judge ------------------------------------------------------------------------------------------

def label_judge(pairs: list[dict], prompts: dict[str, dict], scorer, levels) -> list[dict]:
    """Preference rows from an RM scorer (`RewardScorer`): higher score wins, level from the gap."""
    if not pairs:
        return []
    flat_p = [prompts[p["prompt_id"]]["prompt"] for p in pairs for _ in (0, 1)]
    flat_c = [_text(p[side]["completion"]) for p in pairs for side in ("a", "b")]
    result = scorer.score(flat_p, flat_c)
    rows = []
    for i, pair in enumerate(pairs):
        ra, rb = result.rewards[2 * i], result.rewards[2 * i + 1]
        grades = [{d: (result.grades[2 * i + j] or {}).get(d) for d in GRADE_DIMENSIONS} for j in (0, 1)]
        gap = abs(ra - rb)
        level = sum(gap >= bound for bound in levels)
        a_wins = ra >= rb
        chosen, rejected = (pair["a"], pair["b"]) if a_wins else (pair["b"], pair["a"])
        gc, gr = (grades[0], grades[1]) if a_wins else (grades[1], grades[0])
        rows.append(preference_row(pair, prompts[pair["prompt_id"]], chosen, rejected, level, gc, gr, "judge"))
    return rows


# ---- human ------------------------------------------------------------------------------------------

def queue_pairs(store, pairs: list[dict], prompts: dict[str, dict], round_n: int, k: int) -> int:
    """Put the pairs into the label store's queue (idempotent on pair id); returns how many were new."""
    queued = [{"pair_id": p["pair_id"], "prompt": prompts[p["prompt_id"]]["prompt"],
               "response_a": _text(p["a"]["completion"]), "response_b": _text(p["b"]["completion"]),
               "member_a": p["a"]["member"], "member_b": p["b"]["member"],
               "domain": prompts[p["prompt_id"]]["domain"]} for p in pairs]
    return store.add_pairs(queued, round=round_n, k=k)


def human_labels(store, round_n: int, needed: int) -> tuple[list[dict] | None, int]:
    """(the round's exported human preference rows, labelled pairs) once `needed` pairs carry a label;
    (None, labelled) before that."""
    labelled = store.count_labelled(round_n)
    if labelled < needed:
        return None, labelled
    rows = store.export_preferences(round=round_n)
    for row in rows:  # the store keeps plain texts; every other source writes assistant messages
        for side in ("chosen", "rejected"):
            row[side] = [{"role": "assistant", "content": _text(row[side])}]
    return rows, labelled


# ---- the round's labelling step -------------------------------------------------------------------------

def _oracle(cfg, run, round_n, pairs, prompts, seed, rm_dir):
    from committee.gold_oracle import GoldNoise
    from committee.gold_store import GOLD_FILE, read_gold

    gold = read_gold(run.round(round_n) / GOLD_FILE)
    return label_oracle(pairs, prompts, OracleNoise(cfg.oracle_flip, cfg.oracle_level_jitter, seed), gold,
                        GoldNoise(cfg.gold_temperature, cfg.oracle_level_jitter, seed)), ""


def _human(cfg, run, round_n, pairs, prompts, seed, rm_dir):
    from afm_align.label_store import LabelStore

    store = LabelStore(run.labels)
    queue_pairs(store, pairs, prompts, round_n, cfg.human_k)
    needed = min(len(pairs), cfg.human_min_labels or len(pairs))
    rows, labelled = human_labels(store, round_n, needed)
    message = (f"round {round_n}: {labelled} of {needed} pairs labelled; run `afm-align annotate --run {cfg.run}` "
               f"(accounts: `afm-align annotators add NAME --run {cfg.run}`), then re-run `afm-align iterate`")
    return rows, message


def _judge(cfg, run, round_n, pairs, prompts, seed, rm_dir):
    from alignment.rewards import load_rm

    if rm_dir is None:
        raise UserError(f"round {round_n}: the judge annotator has no RM: pass judge_model=PATH (an RM directory)")
    return label_judge(pairs, prompts, load_rm(rm_dir), cfg.judge_levels), ""


LABELLERS = {"oracle": _oracle, "human": _human, "judge": _judge}


def label_pairs(cfg, run, round_n: int, prompts: dict[str, dict], responses: list[dict], seed: int,
                rm_dir=None) -> tuple[list[dict] | None, str]:
    """(preference rows, "") for the round's pairs by `cfg.annotator`; (None, message) while humans label."""
    pairs = form_pairs(responses, cfg.pairs_per_prompt, seed)
    return LABELLERS[cfg.annotator](cfg, run, round_n, pairs, prompts, seed, rm_dir)
