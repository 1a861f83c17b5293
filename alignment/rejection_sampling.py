"""Rejection sampling / committee distillation (afm-spec §3), and the `rs` recipe: sample, keep the best, SFT.

What it does, top to bottom (`main(cfg)`):
1. `write_samples(cfg)` (the data step; it trains nothing): for every prompt of `cfg.data` (rows of
   `cfg.split`), `k` samples from *each* committee member (`cfg.committee`, member or checkpoint
   directories; the starting checkpoint alone when empty) through the one member I/O path
   (`afm_align.member_io.generate_from`: the member's device, vLLM when configured); every sample gets a
   **combined score** from `score_samples`, the one scorer of rejection sampling (a round's `rs` candidate
   uses it too):
       score = verifier reward (when the prompt's domain has a synth verifier, i.e. not None)
             + rm_weight * RM score (when `cfg.reward_model` is set),
   None when neither applies (such prompts are dropped: nothing can rank them) and None when the verifier
   scored the answer below `verifier_min` (the verifier gate: an answer the verifier failed is never kept,
   however high the RM scores it; 0 turns the gate off). Per prompt the
   best-scoring sample is kept (prompt-level reranking, AFM's committee distillation) if it passes the
   guards: score >= `min_score` (None: no floor; an open-ended prompt's answers, ranked by the RM alone, have
   none: `floored`), non-empty text, and with `dedup` on, identical
   prompts are sampled once and identical samples of a prompt count once (the first member that produced
   it keeps the credit; ties go to committee order, then sample order). The kept rows are written as an
   `sft` dataset through `afm_align.store.write_dataset` with provenance (`member`, `round`, `score`);
2. SFT on that dataset from `cfg.from_checkpoint` (`alignment.sft.train_member` with `cfg.sft`), writing
   the member directory `cfg.out` with recipe `rs` and the sampling statistics in meta.json.

What it simplifies: one sampling temperature for all members; no embedding-based near-duplicate removal
(exact text only); the RM and the verifiers are weighted by one fixed `rm_weight`.
The verifier gate is on by default (`verifier_min` 1.0, as in the rounds); before the recipe table,
`afm-align train rs` had no gate and a round's `rs` had one.

Run: `python -c "from afm_align.config import load_config; from alignment.rejection_sampling import RSConfig, main;
main(load_config(RSConfig, preset='tiny', recipe='rs', overrides=['from_checkpoint=runs/x/base',
'data=runs/x/data/prompt-...', 'out=runs/x/round_1/members/rs', 'committee=[runs/x/round_1/members/sft]']))"`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from afm_align.config import config_dict
from afm_align.errors import NothingToTrain, UserError
from afm_align.store import read_manifest, read_rows, write_dataset
from afm_align.tracking import progress
from alignment.members import LORA_RANKS, member_name
from alignment.rewards import combine, load_rm, verifier_terms
from alignment.sft import SFTRecipeConfig, train_member


@dataclass
class RSConfig:
    """Every knob of rejection sampling and of the `rs` recipe."""

    from_checkpoint: str = ""  # where SFT on the kept samples starts (the base or an earlier member)
    data: str = ""  # `prompt` dataset folder to sample on
    out: str = ""  # member directory the rs recipe writes
    committee: list[str] = field(default_factory=list)  # member directories to sample from ([] = from_checkpoint)
    samples_out: str = ""  # folder of the kept-samples `sft` dataset ("" = `<out>-rs-data` beside `out`)
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round, recorded on every kept row and in meta.json
    split: str = "train"  # which rows of the prompt dataset are sampled
    max_prompts: int = 0  # cap on prompts sampled (0 = all)
    k: int = 4  # samples per prompt from each committee member
    max_new_tokens: int = 128  # generation length cap
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling mass
    gen_batch_size: int = 32  # sequences per generation batch
    generation_backend: str = "auto"  # hf | vllm | auto (vLLM when installed and a GPU is present)
    seed: int = 0  # sampling seed (member i samples with seed + i)
    reward_model: str = ""  # RM directory ("" = verifiers only)
    rm_weight: float = 1.0  # weight of the RM score in the combined score
    min_score: float | None = 0.5  # kept samples need a combined score at least this (None = no floor)
    verifier_min: float = 1.0  # an answer its verifier scored below this is never kept (0 = no gate)
    dedup: bool = True  # sample identical prompts once and count identical samples of a prompt once
    sft: SFTRecipeConfig = field(default_factory=SFTRecipeConfig)  # SFT knobs (from_checkpoint, data, out, member
    #                                                                 and round are filled in by this recipe)


# ---- prompts and samples --------------------------------------------------------------------------

def _key(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def load_prompts(path: str | Path, split: str, max_prompts: int = 0, dedup: bool = True) -> list[dict]:
    """The prompt rows of `split` (identical prompts once when `dedup`), at most `max_prompts`."""
    rows = [r for r in read_rows(path, "prompt") if r["split"] == split]
    if dedup:
        seen, unique = set(), []
        for row in rows:
            if _key(row["prompt"]) not in seen:
                seen.add(_key(row["prompt"]))
                unique.append(row)
        rows = unique
    rows = rows[:max_prompts] if max_prompts > 0 else rows
    if not rows:
        raise UserError(f"{path}: the prompt dataset has no rows with split '{split}' to sample")
    return rows


def sample_committee(committee: list[str], prompts: list[dict], cfg: RSConfig) -> list[dict]:
    """Candidates {prompt_index, member, sample, completion}: k samples per prompt from each member."""
    from afm_align.member_io import generate_from

    candidates = []
    for i, path in enumerate(progress(committee, desc="committee members", unit="member")):
        texts = generate_from(path, [r["prompt"] for r in prompts], stage="rs-sampling", k=cfg.k,
                              max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              batch_size=cfg.gen_batch_size, seed=cfg.seed + i, backend=cfg.generation_backend)
        name = member_name(path)
        candidates += [{"prompt_index": p, "member": name, "sample": j, "completion": text}
                       for p, samples in enumerate(texts) for j, text in enumerate(samples)]
    return candidates


def score_samples(verifier: list[float | None], rm: list[float] | None, rm_weight: float,
                  verifier_min: float) -> list[float | None]:
    """Each sample's rejection-sampling score: verifier + rm_weight * RM; None when it must never be kept.

    None when neither term applies (no verifier for the domain and no RM), and None below the verifier gate:
    without it a high RM score lifted answers the verifier had failed over `min_score` (in one tiny run, 27
    of the 53 tool calls kept in round 3 were wrong), and RS taught the next member those mistakes.
    """
    scores = []
    for i, v in enumerate(verifier):
        r = None if rm is None else rm[i]
        if (v is None and r is None) or (v is not None and v < verifier_min):
            scores.append(None)
        else:
            scores.append((v or 0.0) + (0.0 if r is None else rm_weight * r))
    return scores


def candidate_scores(prompts: list[dict], candidates: list[dict], scorer=None, rm_weight: float = 1.0,
                     verifier_min: float = 0.0) -> list[float | None]:
    """`score_samples` of sampled candidates: verifier rewards from the families, RM scores from `scorer`."""
    rows = [prompts[c["prompt_index"]] for c in candidates]
    prompt_msgs, texts = [r["prompt"] for r in rows], [c["completion"] for c in candidates]
    verify = combine(verifier_terms())
    verifier = verify(prompt_msgs, texts, domain=[r["domain"] for r in rows], verifier=[r["verifier"] for r in rows])
    rm = None if scorer is None else [float(x) for x in scorer(prompt_msgs, texts)]
    return score_samples(verifier, rm, rm_weight, verifier_min)


def floored(prompts: list[dict], candidates: list[dict]) -> list[bool]:
    """Which candidates the `min_score` floor applies to: answers to prompts a verifier grades.

    An answer to an open-ended prompt (synth.families.OPEN_ENDED) has only its RM score, whose scale no floor
    fits: it is kept by rank alone (the best of the prompt's samples), AFM's RM-only reranking.
    """
    from synth.families import OPEN_ENDED

    return [prompts[c["prompt_index"]]["domain"] not in OPEN_ENDED for c in candidates]


def pick_best(prompts: list[dict], candidates: list[dict], scores: list, min_score: float | None,
              dedup: bool = True, floor: list[bool] | None = None) -> tuple[list[dict], dict]:
    """Per prompt, the best candidate passing the guards; returns (kept, counts of what was dropped).

    `floor`: per candidate, whether `min_score` applies to it (`floored`); None = to every candidate.
    """
    groups: dict[int, list[tuple[float, dict]]] = {}
    stats = {"candidates": len(candidates), "empty": 0, "unscored": 0, "below_min": 0, "duplicates": 0}
    seen: set[tuple[int, str]] = set()
    for i, (cand, score) in enumerate(zip(candidates, scores)):
        text = cand["completion"].strip()
        floors = min_score is not None and (floor is None or floor[i])
        reason = ("empty" if not text else "unscored" if score is None
                  else "duplicates" if dedup and (cand["prompt_index"], text) in seen
                  else "below_min" if floors and score < min_score else None)
        if reason:
            stats[reason] += 1
            continue
        seen.add((cand["prompt_index"], text))
        groups.setdefault(cand["prompt_index"], []).append((score, cand))
    kept = []
    for index in sorted(groups):
        best = max(score for score, _ in groups[index])
        cand = next(c for s, c in groups[index] if s == best)  # first in committee, then sample order
        kept.append({**cand, "score": float(best), "row": prompts[index]})
    stats.update(prompts=len(prompts), kept=len(kept))
    return kept, stats


def sft_row(kept: dict, round_: int) -> dict:
    """One kept sample as an sft row with provenance."""
    row = kept["row"]
    verifier = row["verifier"] if isinstance(row["verifier"], str) else json.dumps(row["verifier"], sort_keys=True)
    return {"id": f"rs-r{round_}-{row['id']}", "prompt": row["prompt"],
            "completion": [{"role": "assistant", "content": kept["completion"]}], "member": kept["member"],
            "round": round_, "score": kept["score"], "domain": row["domain"], "verifier": verifier,
            "source": "rejection_sampling", "split": "train"}


# ---- the data step and the recipe ------------------------------------------------------------------

def samples_dir(cfg: RSConfig) -> Path:
    """Where the kept-samples dataset goes."""
    return Path(cfg.samples_out) if cfg.samples_out else Path(cfg.out).with_name(f"{Path(cfg.out).name}-rs-data")


def check_config(cfg: RSConfig) -> list[str]:
    """One-sentence errors for a bad config; returns the committee to sample from."""
    for key in ("from_checkpoint", "data", "out"):
        if not getattr(cfg, key):
            raise UserError(f"config key '{key}' must be set")
    if cfg.k < 1:
        raise UserError(f"k must be at least 1 (got {cfg.k})")
    if cfg.sft.lora_rank not in LORA_RANKS:
        raise UserError(f"sft.lora_rank must be one of {', '.join(map(str, LORA_RANKS))} (got {cfg.sft.lora_rank})")
    committee = list(cfg.committee) or [cfg.from_checkpoint]
    for path in [cfg.from_checkpoint, *committee]:
        if not Path(path).is_dir():
            raise UserError(f"checkpoint {path}: no such checkpoint directory.")
    return committee


def write_samples(cfg: RSConfig, scorer=None) -> tuple[Path, dict]:
    """The data step: sample the committee, keep the best per prompt, write the sft dataset.

    `scorer` (TRL reward signature) overrides `cfg.reward_model`; returns (dataset folder, statistics).
    """
    committee = check_config(cfg)
    prompts = load_prompts(cfg.data, cfg.split, cfg.max_prompts, cfg.dedup)
    if scorer is None and cfg.reward_model:
        scorer = load_rm(cfg.reward_model)
    candidates = sample_committee(committee, prompts, cfg)
    scores = candidate_scores(prompts, candidates, scorer, cfg.rm_weight, cfg.verifier_min)
    kept, stats = pick_best(prompts, candidates, scores, cfg.min_score, cfg.dedup, floored(prompts, candidates))
    if not kept:
        raise NothingToTrain(f"rejection sampling kept no samples ({stats}); lower min_score or sample more")
    out = samples_dir(cfg)
    write_dataset([sft_row(k, cfg.round) for k in kept], "sft", out, producer="alignment.rejection_sampling",
                  config=config_dict(cfg), parents=[read_manifest(cfg.data).content_hash])
    return out, {**stats, "committee": [member_name(p) for p in committee]}


def main(cfg: RSConfig) -> Path:
    """The `rs` recipe: rejection-sample with the committee, then SFT on the kept samples."""
    data, stats = write_samples(cfg)
    sft_cfg = replace(cfg.sft, from_checkpoint=cfg.from_checkpoint, data=str(data), out=cfg.out,
                      member=cfg.member, round=cfg.round)
    return train_member(sft_cfg, recipe="rs", extra_meta={"rejection_sampling": stats}, saved_cfg=cfg)
