"""The config of `afm-align iterate`: one dataclass (`IterateConfig`) with every knob of an iTeC round.

Loaded like every recipe config (`afm_align.config.load_config`): dataclass defaults, then
`configs/<preset>/iterate.yaml`, then `--config FILE`, then `key=value` overrides. Each candidate recipe
keeps its own preset YAML (`configs/<preset>/<recipe>.yaml`); `recipes.<name>` adds `key=value` overrides
on top of it (e.g. `recipes.dpo=[max_steps=4]`), so the round config only says what differs in a round.
The candidates and the names `recipes` may use come from the recipe table (`alignment.recipes`).
The resolved config is recorded in every round's manifest.

`round_difficulty(cfg, family, n)` is the difficulty of a family's fresh prompts in round n (the `curriculum`).

`check_config(cfg)` rejects bad settings with one sentence each: every numeric knob against its range in
`afm_align.config.RANGES` (sizes >= 1, `temperature` in [0, 10], `difficulty` in [0, 3], ...), then the rules
that span knobs or name things (unknown member or annotator, dev + test fractions, judge levels increasing).

Run: `python -c "from committee.round_config import load; print(load('tiny'))"`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from afm_align.config import check_ranges, load_config
from afm_align.config_ranges import range_for
from afm_align.errors import UserError
from alignment.recipes import DEFAULT_MEMBERS, ROUND_CANDIDATES, check_overrides
from synth.families import ALL_FAMILIES, FAMILIES
from committee.promotion import PromotionRule

ANNOTATORS = ("oracle", "human", "judge")


@dataclass
class IterateConfig:
    """Every knob of `afm-align iterate` (the round runner)."""

    run: str = "default"  # run name under ./runs (or a path)
    preset: str = "tiny"  # preset folder of every recipe's YAML (configs/<preset>/)
    seed: int = 0  # global seed; each stage is seeded from (seed, round, stage)
    threads: int = 1  # torch threads (fixed, so a resumed run computes exactly what an uninterrupted one did)
    init_threads: int = 0  # torch threads of the base's pre-training; 0 = the cores free when it starts (recorded)
    annotator: str = "oracle"  # who labels the pairs: oracle (synth verifiers), human (label store), judge (an RM)
    system: str = "afm"  # the round structure: afm | llama3.1 | qwen2 | gemma2 (configs/<preset>/systems/<system>.yaml)
    members: list[str] = field(default_factory=lambda: list(DEFAULT_MEMBERS))  # candidates of rounds >= 1, in order
    # named candidates: {name: {recipe, start, overrides, of, teacher}} (committee.systems); a member not named
    # here is the recipe of that name, trained from the round's start
    candidates: dict[str, dict] = field(default_factory=dict)
    teacher_model: str = ""  # distill candidates' teacher: a model directory built before ("" = the run builds its own)
    # synth families of the rounds; open-ended ones (synth.families.OPEN_ENDED) are graded by the RM in training
    # and by their hidden gold rubric in labelling (the gold oracle) and evaluation only
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    difficulty: int = 1  # synth difficulty of every prompt (but the curriculum's)
    # per-family difficulty of the fresh train prompts of rounds 1, 2, 3, ... (the last entry holds for later
    # rounds), e.g. {tool: [0, 1, 2]}: single calls first, then parallel and multi-step ones. Round 0, the RM's
    # synthetic pairs and the dev and test sets stay at `difficulty`, so every round is measured on one yardstick
    curriculum: dict[str, list[int]] = field(default_factory=dict)
    dev_fraction: float = 0.15  # share of problem identities in the dev split (promotion, tuning; synth.splits)
    test_fraction: float = 0.15  # share of problem identities in the test split (reports only)
    sft_items: int = 200  # round 0: reference (prompt, answer) items per family for the SFT member
    eval_prompts: int = 20  # evaluation prompts per family in each of dev and test (fixed for the run)
    prompts_per_round: int = 24  # fresh train-split prompts per family in each round >= 1
    sft_prompts_per_round: int = 0  # reference rows per family for the SFT members of a round: the round's
    # prompts and, when this is larger, more fresh train-split prompts with their references (no committee
    # answers, no labels: only the SFT data grows); 0 = the round's prompts only
    sft_prompts_by_family: dict[str, int] = field(default_factory=dict)  # per-family sft_prompts_per_round,
    # e.g. {tool: 600}: the families the rounds leave furthest behind get more references; the rest the default.
    # An entry for a family the run leaves out does nothing; 0 means the round's prompts only (not the default)
    k: int = 2  # samples per prompt from each committee member
    temperature: float = 1.0  # committee sampling temperature
    top_p: float = 1.0  # committee sampling nucleus mass
    max_new_tokens: int = 64  # committee answer length cap
    gen_batch_size: int = 32  # sequences per generation batch
    generation_backend: str = "auto"  # hf | vllm | auto (vLLM when installed and a GPU is present)
    pairs_per_prompt: int = 2  # labelled pairs formed per prompt (one across members, the rest within)
    oracle_flip: float = 0.1  # oracle: probability of flipping a close (level 0) pair; less for clearer pairs
    oracle_level_jitter: float = 0.2  # oracle: probability that the level moves by one
    gold_temperature: float = 0.1  # oracle on open-ended pairs: Bradley-Terry temperature on the gold gap (0 = exact)
    human_k: int = 1  # human: annotators each queued pair goes to
    human_min_labels: int = 0  # human: labelled pairs needed before the round goes on (0 = all; may change on resume)
    judge_model: str = ""  # judge: an RM directory ("" = the latest RM of an earlier round)
    judge_levels: list[float] = field(default_factory=lambda: [0.25, 0.75, 1.5])  # judge: RM gaps for levels 1, 2, 3
    rm_bootstrap_pairs: int = 300  # synthetic (reference vs corruption) pairs in the RM data from round 0 on
    rm_round_pairs: int = 0  # fresh synthetic train pairs added to the RM data in every round >= 1
    rm_eval_pairs: int = 100  # test-split synthetic pairs the RM is scored on every round (reported only)
    rm_warm_start: bool = True  # a round's RM continues from the last round's RM (on all data so far), not the base
    rm_replay: float = 1.0  # warm start: share of the earlier rounds' RM data trained on again (1 = all of it)
    rs_rm_weight: float = 1.0  # rs: score = verifier reward + rs_rm_weight * RM score
    rs_min_score: float = 0.5  # rs: a prompt's best sample needs at least this score to be kept
    rs_verifier_min: float = 1.0  # rs: an answer its verifier scored below this is never kept (0 = no gate)
    rs_accumulate: bool = False  # rs: train on the answers kept in every round so far, not this round's only
    sft_accumulate: bool = False  # sft: train on every round's reference answers so far (round 0's included),
    # not this round's only
    sft_replay: float = 1.0  # sft_accumulate: share of the earlier rounds' reference answers trained on again
    # (1 = all of them; the round's own always)
    eval_max_new_tokens: int = 64  # evaluation: greedy answer length
    eval_batch_size: int = 32  # evaluation: sequences per generate call
    eval_bootstrap: int = 1000  # evaluation: bootstrap resamples of every interval
    eval_test_members: str = "best"  # test split (reports only): the best promoted member, "promoted" or "all"
    promotion: PromotionRule = field(default_factory=PromotionRule)  # who joins the next committee
    # per-recipe `key=value` overrides on top of configs/<preset>/<recipe>.yaml: any round candidate of the
    # recipe table (alignment.recipes), `init` (the base model, when the run has none), `sft0` (round 0's SFT
    # member) and `rm` (the reward model refreshed each round); e.g. {dpo: [max_steps=4], rm: [epochs=1]}
    recipes: dict[str, list[str]] = field(default_factory=dict)


def load(preset: str = "tiny", config_file: str | None = None, overrides=()) -> IterateConfig:
    """The resolved IterateConfig of a preset plus a config file and overrides, checked."""
    from committee.systems import requested_system, system_overrides, with_system_lists

    system = requested_system(overrides)
    layer = system_overrides(preset, system)
    cfg = load_config(IterateConfig, preset=preset, recipe="iterate", config_file=config_file,
                      overrides=[*layer, *with_system_lists(layer, overrides)])
    if cfg.preset != preset:
        cfg.preset = preset
    return check_config(cfg)


def overrides_of(cfg: IterateConfig, name: str) -> list[str]:
    """The round's `key=value` overrides of recipe (or target) `name`; none when the config names none."""
    return list(cfg.recipes.get(name, ()))


def check_config(cfg: IterateConfig) -> IterateConfig:
    """`cfg` itself, or a one-sentence ValueError for the first bad setting."""
    from committee.systems import SYSTEMS, check_candidates

    if cfg.system not in SYSTEMS:
        raise UserError(f"unknown system '{cfg.system}'; systems are: {', '.join(SYSTEMS)}")
    check_candidates(cfg, ROUND_CANDIDATES)
    check_overrides(cfg.recipes)
    if cfg.generation_backend not in ("auto", "hf", "vllm"):
        raise UserError(f"generation_backend must be auto, hf or vllm (got {cfg.generation_backend!r})")
    if not cfg.members or len(set(cfg.members)) != len(cfg.members):
        raise UserError(f"members must name at least one candidate, each once (got {','.join(cfg.members)})")
    if cfg.annotator not in ANNOTATORS:
        raise UserError(f"unknown annotator '{cfg.annotator}'; annotators are: {', '.join(ANNOTATORS)}")
    bad_family = [f for f in cfg.families if f not in ALL_FAMILIES]
    if bad_family or not cfg.families or len(set(cfg.families)) != len(cfg.families):
        raise UserError(f"families must be some of {', '.join(ALL_FAMILIES)}, each once (got {cfg.families})")
    check_curriculum(cfg)
    check_sft_prompts(cfg)
    check_ranges(cfg)  # every numeric knob against afm_align.config.RANGES (load_config does it too)
    from synth.splits import check_fractions

    if cfg.eval_test_members not in ("best", "promoted", "all"):
        raise UserError(f"eval_test_members must be best, promoted or all (got {cfg.eval_test_members!r})")

    check_fractions(cfg.dev_fraction, cfg.test_fraction)
    if len(cfg.judge_levels) != 3 or sorted(cfg.judge_levels) != list(cfg.judge_levels):
        raise UserError(f"judge_levels must be three increasing RM-score gaps (got {cfg.judge_levels})")
    return cfg


def check_curriculum(cfg: IterateConfig) -> None:
    """One sentence for a curriculum that names a family the run lacks or a difficulty outside 0..3."""
    for family, levels in cfg.curriculum.items():
        if family not in cfg.families:
            raise UserError(f"curriculum names '{family}', which is not one of the run's families "
                            f"({', '.join(cfg.families)})")
        if (not isinstance(levels, list) or not levels
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 3 for d in levels)):
            raise UserError(f"curriculum.{family} must be a list of difficulties 0-3, one per round "
                            f"(got {levels!r})")


def check_sft_prompts(cfg: IterateConfig) -> None:
    """One sentence for an `sft_prompts_by_family` entry that names no family or is not a count (an entry for a
    family the run leaves out does nothing: the preset's stay valid when `families` is narrowed). An entry has
    `sft_prompts_per_round`'s range (afm_align.config_ranges)."""
    allowed = range_for("IterateConfig", "sft_prompts_per_round")
    for family, n in cfg.sft_prompts_by_family.items():
        if family not in ALL_FAMILIES:
            raise UserError(f"sft_prompts_by_family names '{family}', which is not a family "
                            f"({', '.join(ALL_FAMILIES)})")
        if not isinstance(n, int) or isinstance(n, bool) or n not in allowed:
            raise UserError(f"sft_prompts_by_family.{family} must be a whole number of rows {allowed.describe()} "
                            f"(got {n!r})")


def sft_prompts_of(cfg: IterateConfig, family: str) -> int:
    """How many reference rows `family` gives a round's SFT members (`sft_prompts_by_family`, else the default)."""
    return cfg.sft_prompts_by_family.get(family, cfg.sft_prompts_per_round)


def round_difficulty(cfg: IterateConfig, family: str, round_n: int) -> int:
    """The synth difficulty of `family`'s fresh train prompts in round `round_n` (the curriculum's entry; round 0
    and a family without one: `cfg.difficulty`)."""
    levels = cfg.curriculum.get(family)
    return levels[min(round_n, len(levels)) - 1] if levels and round_n >= 1 else cfg.difficulty


def check_recipe_keys(cfg: IterateConfig) -> None:
    """Every `recipes.<name>` override resolved against its recipe's config now, not hours into a run.

    An unknown or renamed key is the usual one-line UserError, prefixed with where it came from.
    """
    from afm_align.init_base import InitConfig
    from alignment import recipes
    from reward_model.trainer import RMTrainConfig

    targets = {"init": (InitConfig, "init"), "rm": (RMTrainConfig, "rm"), "sft0": (None, "sft"),
               "teacher": (None, "sft")}
    for name, items in cfg.recipes.items():
        cls, preset_name = targets.get(name, (None, name))
        try:
            if cls is None:
                recipes.load(preset_name, preset=cfg.preset, overrides=items)
            else:
                load_config(cls, preset=cfg.preset, recipe=preset_name, overrides=list(items))
        except UserError as err:
            raise UserError(f"recipes.{name}: {err}") from None
    from committee.systems import candidate_spec

    for name in cfg.members:
        spec = candidate_spec(cfg, name)
        if spec.overrides:
            try:
                recipes.load(spec.recipe, preset=cfg.preset, overrides=[*cfg.recipes.get(spec.recipe, ()), *spec.overrides])
            except UserError as err:
                raise UserError(f"candidates.{name}: {err}") from None


def recipe_config(cfg: IterateConfig, cls, recipe: str, overrides, **fields):
    """A recipe's config: `configs/<preset>/<recipe>.yaml` + `overrides`, then the round's `fields` on top."""
    from dataclasses import replace

    return replace(load_config(cls, preset=cfg.preset, recipe=recipe, overrides=list(overrides)), **fields)


def parse_members(text: str) -> list[str]:
    """`--members sft,rs,dpo` -> ['sft', 'rs', 'dpo'] (checked against the known candidates)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in ROUND_CANDIDATES]
    if unknown or not names:
        raise UserError(f"unknown member '{unknown[0] if unknown else text}'; members are: "
                        f"{', '.join(ROUND_CANDIDATES)}")
    return names
