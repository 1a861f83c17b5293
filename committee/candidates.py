"""The candidates of an iTeC round, and its RM: each trained by the alignment recipe's own `main(cfg)`.

Every candidate starts from the round's start (the best promoted member of the last round), in this process
(no subprocess), with the recipe's preset YAML plus the round's `recipes.<name>` overrides, the round's
paths, and the stage's seed (`committee.round_config.recipe_config`):
- `sft`: SFT on the round's fresh prompts with the families' reference answers (alignment.sft);
- `rs`: committee distillation (afm-spec §3): the committee's K answers to every prompt of the round (the
  `responses` stage already sampled them, so nothing is sampled twice) are scored
  `verifier reward + rm_weight * RM score` with the round's RM (answers the verifier failed are dropped
  first, `rs_verifier_min`), the best per prompt is kept
  (alignment.rejection_sampling.pick_best, same guards as the rs recipe), then SFT on the kept answers;
- `dpo` / `ipo`: alignment.preference on the round's labelled pairs; a round with no pair at the recipe's
  `min_level` makes the candidate sit the round out (the runner records why);
- `mdloo`: alignment.mdloo on the round's prompts, rewarded by the round's RM plus the verifiers.
`TRAINERS` maps each name to its function `(cfg, inputs, name, out, seed) -> None | reason skipped`.
`train_rm` refreshes the RM (reward_model.recipe) on the given preference data, from the base model or
continuing the last round's RM.

What it simplifies: RS samples once per round (the committee's responses), at one temperature.

Run: called by `committee.rounds` (`afm-align iterate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from afm_align.store import read_rows, write_dataset
from committee.round_config import IterateConfig, recipe_config


@dataclass
class CandidateInputs:
    """What the round hands its candidates (all paths on disk)."""

    round_n: int
    round_dir: Path
    start: Path  # the starting checkpoint (the last round's best promoted member, or the base)
    committee: list[Path]  # the members that answered this round
    prompts: Path  # the round's prompt dataset
    sft_data: Path  # the same prompts with reference answers (sft rows)
    responses: Path  # the committee's graded answers (response rows)
    preferences: Path  # the round's labelled pairs
    rm: Path  # the round's refreshed RM
    earlier_rs: list[Path] = field(default_factory=list)  # the RS data of earlier rounds (rs_accumulate)


def train_rm(cfg: IterateConfig, base: Path, data: Path, out: Path, seed: int, init_from: Path | None = None) -> dict:
    """Train the RM on `data` into `out`, from `base` or continuing the RM `init_from`; returns its headline metrics."""
    from reward_model.recipe import main
    from reward_model.trainer import RMTrainConfig

    return main(recipe_config(cfg, RMTrainConfig, "rm", cfg.recipes.rm, data=str(data), base=str(base),
                              init_from=str(init_from or ""), output_dir=str(out), seed=seed))


def train_sft(cfg: IterateConfig, start: Path, data: Path, out: Path, name: str, round_n: int, seed: int,
              overrides) -> None:
    """SFT from `start` on the sft dataset `data` into member `out` (last checkpoint kept)."""
    from alignment.sft import SFTRecipeConfig, main

    main(recipe_config(cfg, SFTRecipeConfig, "sft", overrides, from_checkpoint=str(start), data=str(data),
                       out=str(out), member=name, round=round_n, seed=seed, heldout="", reward_model=""))


def candidate_sft(cfg: IterateConfig, inputs: CandidateInputs, name: str, out: Path, seed: int) -> str | None:
    train_sft(cfg, inputs.start, inputs.sft_data, out, name, inputs.round_n, seed, cfg.recipes.sft)
    return None


def rs_score(verifier: float | None, rm: float, rm_weight: float, verifier_min: float) -> float | None:
    """An answer's committee-distillation score: verifier + rm_weight * RM; None (never kept) below the gate.

    Without the gate a high RM score lifted answers the verifier had failed over `min_score` (in one tiny run,
    27 of the 53 tool calls kept in round 3 were wrong), and RS taught the next member those mistakes.
    """
    if verifier is not None and verifier < verifier_min:
        return None
    return (verifier or 0.0) + rm_weight * rm


def accumulated_rows(earlier: list[dict], rows: list[dict]) -> list[dict]:
    """This round's kept answers after every earlier round's, each row (by id) once.

    AFM: small models gain most from more distillation data. An earlier round's RS data may already hold the
    rounds before it (it was accumulated too), so rows are deduplicated by id; the first copy wins.
    """
    return list({r["id"]: r for r in [*earlier, *rows]}.values())


def candidate_rs(cfg: IterateConfig, inputs: CandidateInputs, name: str, out: Path, seed: int) -> str | None:
    """Committee distillation: the committee's answers scored verifier + w * RM per prompt, best kept, SFT."""
    from alignment.rejection_sampling import RSConfig, pick_best, sft_row
    from alignment.rewards import load_rm
    from alignment.sft import train_member

    rs = recipe_config(cfg, RSConfig, "rs", cfg.recipes.rs, from_checkpoint=str(inputs.start),
                       data=str(inputs.prompts), out=str(out), member=name, round=inputs.round_n, seed=seed,
                       committee=[str(p) for p in inputs.committee], reward_model=str(inputs.rm),
                       rm_weight=cfg.rs_rm_weight, min_score=cfg.rs_min_score)
    prompts = read_rows(inputs.prompts, "prompt")
    index = {p["id"]: i for i, p in enumerate(prompts)}
    responses = read_rows(inputs.responses, "response")
    cands = [{"prompt_index": index[r["prompt_id"]], "member": r["member"], "sample": int(r["id"].rsplit("-", 1)[1]),
              "completion": r["completion"]} for r in responses]
    rm = load_rm(inputs.rm).score([r["prompt"] for r in responses], [r["completion"] for r in responses])
    scores = [rs_score(r.get("verifier_score"), s, rs.rm_weight, cfg.rs_verifier_min)
              for r, s in zip(responses, rm.rewards)]
    kept, stats = pick_best(prompts, cands, scores, rs.min_score, rs.dedup)
    stats["verifier_failed"] = sum(s is None for s in scores)  # counted among `unscored` too
    if not kept:
        return f"no committee answer scored at least {rs.min_score}"
    rows = [sft_row(k, inputs.round_n) for k in kept]
    if cfg.rs_accumulate:
        rows = accumulated_rows([r for path in inputs.earlier_rs for r in read_rows(path, "sft")], rows)
    data = inputs.round_dir / "rs-data"
    write_dataset(rows, "sft", data, producer="committee.candidates/rs", config={"round": inputs.round_n})
    sft = replace(rs.sft, from_checkpoint=rs.from_checkpoint, data=str(data), out=str(out), member=name,
                  round=inputs.round_n, seed=seed)
    train_member(sft, recipe="rs", extra_meta={"rejection_sampling": stats}, saved_cfg=rs)
    return None


def candidate_preference(recipe: str):
    """DPO or IPO (one recipe, two presets) on the round's labelled pairs."""
    def train(cfg: IterateConfig, inputs: CandidateInputs, name: str, out: Path, seed: int) -> str | None:
        from alignment.preference import PreferenceConfig, main, preference_pairs

        pc = recipe_config(cfg, PreferenceConfig, recipe, getattr(cfg.recipes, recipe),
                           from_checkpoint=str(inputs.start), data=str(inputs.preferences), out=str(out),
                           member=name, round=inputs.round_n, seed=seed)
        try:
            preference_pairs(read_rows(inputs.preferences, "preference"), pc.min_level, source=str(inputs.preferences))
        except ValueError as err:  # no clear pair this round: the candidate sits the round out
            return str(err)
        main(pc)
        return None
    return train


def candidate_mdloo(cfg: IterateConfig, inputs: CandidateInputs, name: str, out: Path, seed: int) -> str | None:
    from alignment.mdloo import MDLOOConfig, main

    main(recipe_config(cfg, MDLOOConfig, "mdloo", cfg.recipes.mdloo, from_checkpoint=str(inputs.start),
                       data=str(inputs.prompts), out=str(out), member=name, round=inputs.round_n, seed=seed,
                       rm=str(inputs.rm), split="train"))
    return None


TRAINERS = {"sft": candidate_sft, "rs": candidate_rs, "dpo": candidate_preference("dpo"),
            "ipo": candidate_preference("ipo"), "mdloo": candidate_mdloo}
