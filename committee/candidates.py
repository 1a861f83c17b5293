"""The candidates of an iTeC round, and its RM: each trained by its recipe's own `main(cfg)`, from the recipe table.

Every candidate starts from the round's start (the best promoted member of the last round), in this process
(no subprocess), with the recipe's preset YAML plus the round's `recipes.<name>` overrides, then the round's
fields in the shared config vocabulary (`from_checkpoint, data, out, member, round, seed`, and
`reward_model` where the table says so). `train_candidate` does this for every row of `alignment.recipes`
from what the row says (`round_data`, `round_reward_model`); a recipe with nothing to train on this round
(DPO/IPO with no pair at their `min_level`) raises `NothingToTrain`, and the candidate sits the round out
with that sentence as the reason.

Round adapters, where a round really differs from `afm-align train`: `sft` trains on the round's reference
answers, or with `sft_accumulate` on every round's so far (round 0's included); `rs` reuses the committee's
K answers to every prompt (the `responses` stage already sampled and verified them, so nothing is sampled
twice), scores them with the round's RM and the same scorer as the recipe
(`alignment.rejection_sampling.score_samples`: verifier + rm_weight * RM, answers below the verifier gate
`rs_verifier_min` never kept; an open-ended prompt has no verifier, so its answers are ranked by the RM
alone, with no floor), keeps the best per prompt (`pick_best`) and trains SFT on them
(on every round's kept answers with `rs_accumulate`).
`train_rm` refreshes the RM (reward_model.recipe) on the given preference data, from the base model or
continuing the last round's RM.

What it simplifies: RS samples once per round (the committee's responses), at one temperature.

Run: called by `committee.rounds` (`afm-align iterate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from afm_align.errors import NothingToTrain
from afm_align.store import read_rows, write_dataset
from alignment import recipes
from committee.round_config import IterateConfig, overrides_of, recipe_config
from committee.round_data import replay_indices


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
    earlier_sft: list[Path] = field(default_factory=list)  # the reference data of rounds 1..N-1 (sft_accumulate)
    this_round: dict[str, Path] = field(default_factory=dict)  # {candidate: member dir} of this round's members
    run: object = None  # the RunDir (a distill candidate's teacher lives in it)
    sft0_data: Path | None = None  # round 0's reference SFT data (the teacher's SFT data)


def train_rm(cfg: IterateConfig, base: Path, data: Path, out: Path, seed: int, init_from: Path | None = None) -> dict:
    """Train the RM on `data` into `out`, from `base` or continuing the RM `init_from`; returns its headline metrics."""
    from reward_model.recipe import main
    from reward_model.trainer import RMTrainConfig

    return main(recipe_config(cfg, RMTrainConfig, "rm", overrides_of(cfg, "rm"), data=str(data),
                              from_checkpoint=str(base), init_from=str(init_from or ""), out=str(out), seed=seed))


def round_fields(name: str, inputs: CandidateInputs, member: str, out: Path, seed: int) -> dict:
    """The shared-vocabulary fields a round hands recipe `name` (from its row of the recipe table)."""
    row = recipes.recipe(name)
    fields = dict(from_checkpoint=str(inputs.start), data=str(getattr(inputs, row.round_data)), out=str(out),
                  member=member, round=inputs.round_n, seed=seed)
    if row.round_reward_model:
        fields["reward_model"] = str(inputs.rm)
    return fields


def train_sft(cfg: IterateConfig, start: Path, data: Path, out: Path, name: str, round_n: int, seed: int,
              target: str = "sft") -> None:
    """SFT from `start` on the sft dataset `data` into member `out` (round 0's `sft0` overrides by default)."""
    recipes.main_of("sft")(recipes.load("sft", preset=cfg.preset, overrides=overrides_of(cfg, target),
                                        from_checkpoint=str(start), data=str(data), out=str(out), member=name,
                                        round=round_n, seed=seed))


def spec_overrides(cfg: IterateConfig, spec) -> list[str]:
    """The round's `recipes.<recipe>` overrides, then the candidate's own (committee.systems)."""
    return [*overrides_of(cfg, spec.recipe), *spec.overrides]


def train_candidate(cfg: IterateConfig, spec, inputs: CandidateInputs, member: str, out: Path,
                    seed: int) -> str | None:
    """Train round candidate `spec` (committee.systems.CandidateSpec) into `out`; returns why it sat the round
    out, or None when it trained."""
    adapter = ADAPTERS.get(spec.recipe)
    try:
        if adapter is not None:
            return adapter(cfg, spec, inputs, member, out, seed)
        rc = recipes.load(spec.recipe, preset=cfg.preset, overrides=spec_overrides(cfg, spec),
                          **round_fields(spec.recipe, inputs, member, out, seed))
        recipes.main_of(spec.recipe)(rc)
    except NothingToTrain as err:  # e.g. no clear pair this round: the candidate sits the round out
        return str(err)
    return None


def accumulated_rows(earlier: list[dict], rows: list[dict]) -> list[dict]:
    """This round's kept answers after every earlier round's, each row (by id) once.

    AFM: small models gain most from more distillation data. An earlier round's RS data may already hold the
    rounds before it (it was accumulated too), so rows are deduplicated by id: a row keeps the first copy's place
    and takes the last copy's content.
    """
    return list({r["id"]: r for r in [*earlier, *rows]}.values())


def candidate_rs(cfg: IterateConfig, spec, inputs: CandidateInputs, member: str, out: Path, seed: int) -> str | None:
    """Committee distillation from the round's own answers: scored verifier + w * RM, best per prompt kept, SFT."""
    from alignment.rejection_sampling import floored, pick_best, score_samples, sft_row
    from alignment.rewards import load_rm
    from alignment.sft import train_member

    rs = recipes.load("rs", preset=cfg.preset, overrides=spec_overrides(cfg, spec),
                      committee=[str(p) for p in inputs.committee], rm_weight=cfg.rs_rm_weight,
                      min_score=cfg.rs_min_score, verifier_min=cfg.rs_verifier_min,
                      **round_fields("rs", inputs, member, out, seed))
    prompts = read_rows(inputs.prompts, "prompt")
    index = {p["id"]: i for i, p in enumerate(prompts)}
    responses = read_rows(inputs.responses, "response")
    cands = [{"prompt_index": index[r["prompt_id"]], "member": r["member"], "sample": int(r["id"].rsplit("-", 1)[1]),
              "completion": r["completion"]} for r in responses]
    rm = load_rm(inputs.rm).score([r["prompt"] for r in responses], [r["completion"] for r in responses])
    scores = score_samples([r.get("verifier_score") for r in responses], rm.rewards, rs.rm_weight, rs.verifier_min)
    kept, stats = pick_best(prompts, cands, scores, rs.min_score, rs.dedup, floored(prompts, cands))
    stats["verifier_failed"] = sum(s is None for s in scores)  # counted among `unscored` too
    stats["kept_by_domain"] = {d: sum(k["row"]["domain"] == d for k in kept) for d in cfg.families}
    if not kept:
        raise NothingToTrain(f"no committee answer scored at least {rs.min_score}")
    rows = [sft_row(k, inputs.round_n) for k in kept]
    if cfg.rs_accumulate:
        rows = accumulated_rows([r for path in inputs.earlier_rs for r in read_rows(path, "sft")], rows)
    data = inputs.round_dir / "rs-data"
    write_dataset(rows, "sft", data, producer="committee.candidates/rs", config={"round": inputs.round_n})
    sft = replace(rs.sft, from_checkpoint=rs.from_checkpoint, data=str(data), out=str(out), member=member,
                  round=inputs.round_n, seed=seed)
    train_member(sft, recipe="rs", extra_meta={"rejection_sampling": stats}, saved_cfg=rs)
    return None


def candidate_merge(cfg: IterateConfig, spec, inputs: CandidateInputs, member: str, out: Path, seed: int) -> str | None:
    """Llama 3.1's averaging / Gemma 2's WARP inside a round: the `merge` recipe over this round's members `spec.of`.

    The candidate's start is the initialisation SLERP and LITI read; a merged member that sat the round out
    leaves the merge out too (the reason says which).
    """
    missing = [c for c in spec.of if not (inputs.this_round[c] / "config.json").is_file()]
    if missing:
        raise NothingToTrain(f"member {missing[0]} of the merge sat the round out")
    rc = recipes.load("merge", preset=cfg.preset, overrides=spec_overrides(cfg, spec),
                      from_checkpoint=str(inputs.start), out=str(out), member=member, round=inputs.round_n,
                      seed=seed, members=[str(inputs.this_round[c]) for c in spec.of])
    recipes.main_of("merge")(rc)
    return None


def candidate_distill(cfg: IterateConfig, spec, inputs: CandidateInputs, member: str, out: Path,
                      seed: int) -> str | None:
    """Gemma 2's SFT by distillation: the round's reference data, the run's teacher's token distribution as target."""
    from committee.systems import build_teacher

    teacher = build_teacher(cfg, inputs.run, inputs.sft0_data)
    rc = recipes.load("distill", preset=cfg.preset, overrides=spec_overrides(cfg, spec),
                      from_checkpoint=str(inputs.start), teacher=str(teacher), data=str(inputs.sft_data),
                      out=str(out), member=member, round=inputs.round_n, seed=seed)
    recipes.main_of("distill")(rc)
    return None


def candidate_sft(cfg: IterateConfig, spec, inputs: CandidateInputs, member: str, out: Path, seed: int) -> None:
    """SFT on the round's reference answers; with `sft_accumulate` on every round's so far, round 0's included,
    each row once (as `rs_accumulate` does for RS; `sft_replay` < 1 keeps that share of the earlier ones): a
    later round's SFT member keeps seeing what r0-sft learnt from rather than only the round's fresh prompts (on
    the tiny preset's seed-0 dev split the round-3 top member went from 0.320 to 0.336, configs/tiny/iterate.yaml)."""
    fields = round_fields("sft", inputs, member, out, seed)
    if cfg.sft_accumulate:
        earlier = [r for path in [inputs.sft0_data, *inputs.earlier_sft] if path for r in read_rows(path, "sft")]
        if cfg.sft_replay < 1.0:  # a seeded share of the distinct earlier rows, in order, as the RM's rm_replay
            earlier = accumulated_rows(earlier, [])
            earlier = [earlier[i] for i in sorted(replay_indices(len(earlier), cfg.sft_replay, seed))]
        data = inputs.round_dir / "sft-data-accumulated"
        write_dataset(accumulated_rows(earlier, read_rows(inputs.sft_data, "sft")), "sft", data,
                      producer="committee.candidates/sft", config={"round": inputs.round_n})
        fields["data"] = str(data)
    recipes.main_of("sft")(recipes.load("sft", preset=cfg.preset, overrides=spec_overrides(cfg, spec), **fields))
    return None


# round adapters: only where a round differs from `afm-align train <recipe>`, keyed by recipe
ADAPTERS = {"sft": candidate_sft, "rs": candidate_rs, "merge": candidate_merge, "distill": candidate_distill}
