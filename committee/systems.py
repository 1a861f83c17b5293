"""The post-training systems of our sources as round presets: `afm-align iterate --system afm|llama3.1|qwen2|gemma2`.

A system is a YAML layer, `configs/<preset>/systems/<system>.yaml`, read over `configs/<preset>/iterate.yaml` and
under the user's `--config` keys and `key=value` overrides. Every system runs on the same base model, round-0
SFT member, prompts, families, dev and test problems and evaluation (those settings are fixed for a run,
`committee.run_checks.RUN_FIXED`); what differs is the round's structure:
- `members`: the candidates a round trains, in order;
- `candidates`: named candidates (`{name: {recipe, start, overrides, of}}`) for the rounds whose members are
  not all trained from the round's start: `start` names an earlier candidate of the same round (Llama 3.1's
  RS -> DPO, Qwen2's offline DPO -> online DPO), `recipe` lets two candidates share one recipe with different
  `overrides` (Llama's DPO runs with different hyperparameters, Gemma's RL runs with different seeds), and
  `of` lists the candidates a `merge` candidate averages / SLERPs (its `start` is the initialisation that
  SLERP and LITI read);
- the committee (`promotion`), samples per prompt (`k`), the RM settings (`rm_warm_start`, `recipes.rm`).
A system's `recipes.<name>` lists are appended to iterate.yaml's, and the user's to the system's (a later
key=value wins), so a preset states only what it changes and a user's override does not drop the system's. `distill` candidates take `teacher: run` in their candidate spec: the run's teacher
(`build_teacher`: r0-sft grown to twice its depth, then SFT on round 0's reference data with `recipes.teacher`
on top of the rounds' SFT settings), built once by the first round that needs it, under `<run>/teacher/`.

Run: `python -c "from committee.round_config import load; print(load('tiny', None, ['system=qwen2']).members)"`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from afm_align.config import CONFIG_ROOT, preset_file, read_yaml
from afm_align.errors import UserError

SYSTEMS = ("afm", "llama3.1", "qwen2", "gemma2")
SPEC_KEYS = ("recipe", "start", "overrides", "of", "teacher")
ROUND_START = "round"  # a candidate's start: the round's start (the last round's best promoted member)


def system_file(preset: str, system: str) -> Path:
    """`configs/<preset>/systems/<system>.yaml`; an unknown system is a one-line error naming the known ones."""
    if system not in SYSTEMS:
        raise UserError(f"unknown system '{system}'; systems are: {', '.join(SYSTEMS)}")
    path = CONFIG_ROOT / preset / "systems" / f"{system}.yaml"
    if not path.is_file():
        raise UserError(f"preset '{preset}' has no system preset {system} (configs/{preset}/systems/{system}.yaml)")
    return path


def requested_system(overrides) -> str:
    """The system the `key=value` overrides ask for (the last `system=` wins); "afm" when none does."""
    from afm_align.config import parse_override

    found = [parse_override(o)[1] for o in overrides if str(o).split("=", 1)[0].strip() == "system"]
    return str(found[-1]) if found else "afm"


def system_overrides(preset: str, system: str) -> list[str]:
    """The system layer as `key=value` strings, its `recipes.<name>` lists appended to iterate.yaml's."""
    base_recipes = read_yaml(preset_file(preset, "iterate")).get("recipes") or {}  # no iterate config: that error first
    layer = read_yaml(system_file(preset, system))
    layer.pop("system", None)
    out = [f"system={json.dumps(system)}"]
    for key, value in layer.items():
        if key == "recipes":
            if not isinstance(value, dict):
                raise UserError(f"{system_file(preset, system)}: recipes must map names to key=value lists")
            value = {name: [*(base_recipes.get(name) or []), *items] for name, items in value.items()}
        out.append(f"{key}={json.dumps(value)}")
    return out


def with_system_lists(layer: list[str], overrides) -> list[str]:
    """The user's `recipes` overrides with the system layer's list for the same recipe put in front of theirs.

    A user who adds `recipes.rm=[epochs=2]` to `--system llama3.1` keeps Llama's `hard_labels=true` (later
    key=value strings win, so theirs still override the system's where both set a key).
    """
    from afm_align.config import parse_override

    system = next((json.loads(o.split("=", 1)[1]) for o in layer if o.startswith("recipes=")), {})
    out = []
    for text in overrides:
        key, value = parse_override(text)
        if key == "recipes" and isinstance(value, dict):
            value = {name: [*system.get(name, []), *items] if isinstance(items, list) else items
                     for name, items in value.items()}
        elif key.startswith("recipes.") and isinstance(value, list) and key[len("recipes."):] in system:
            value = [*system[key[len("recipes."):]], *value]
        else:
            out.append(text)
            continue
        out.append(f"{key}={json.dumps(value)}")
    return out


@dataclass(frozen=True)
class CandidateSpec:
    """One candidate of a round: its member name suffix, recipe, start and extra overrides."""

    name: str  # the member is r<N>-<name>
    recipe: str  # its row of the recipe table (or `merge`)
    start: str = ROUND_START  # "round", or the name of an earlier candidate of the same round
    overrides: tuple[str, ...] = ()  # key=value on top of the round's recipes.<recipe>
    of: tuple[str, ...] = ()  # merge: the candidates of this round it merges
    teacher: str = ""  # distill: "run" = the run's teacher (build_teacher)


def candidate_spec(cfg, name: str) -> CandidateSpec:
    """The spec of member `name` of a round: from `cfg.candidates`, else the recipe of that name from the round's start."""
    raw = (cfg.candidates or {}).get(name)
    if raw is None:
        return CandidateSpec(name=name, recipe=name)
    return CandidateSpec(name=name, recipe=str(raw.get("recipe", name)), start=str(raw.get("start", ROUND_START)),
                         overrides=tuple(raw.get("overrides") or ()), of=tuple(raw.get("of") or ()),
                         teacher=str(raw.get("teacher", "")))


def check_candidates(cfg, round_candidates) -> None:
    """Every member a known recipe or a well-formed candidate whose start and merged members come earlier."""
    for name, raw in (cfg.candidates or {}).items():
        if not isinstance(raw, dict):
            raise UserError(f"candidates.{name} must be a mapping of {', '.join(SPEC_KEYS)} (got {raw!r})")
        unknown = [k for k in raw if k not in SPEC_KEYS]
        if unknown:
            raise UserError(f"candidates.{name}: unknown key '{unknown[0]}'; keys are: {', '.join(SPEC_KEYS)}")
        items = raw.get("overrides") or []
        if not isinstance(items, list) or not all(isinstance(i, str) and "=" in i for i in items):
            raise UserError(f"candidates.{name}.overrides must be a list of key=value strings (got {items!r})")
    for i, name in enumerate(cfg.members):
        spec = candidate_spec(cfg, name)
        if spec.recipe not in (*round_candidates, "merge", "distill"):
            raise UserError(f"unknown member '{name}'; members are: {', '.join(round_candidates)} "
                            f"or a name of candidates ({', '.join(cfg.candidates or {}) or 'none'})")
        earlier = cfg.members[:i]
        if spec.start != ROUND_START and spec.start not in earlier:
            raise UserError(f"candidates.{name}.start '{spec.start}' must be 'round' or a member listed before it")
        if spec.recipe == "merge":
            missing = [m for m in spec.of if m not in earlier]
            if len(spec.of) < 2 or missing:
                raise UserError(f"candidates.{name}: a merge needs 'of' with two or more members listed before it"
                                f"{f' (not before it: {missing[0]})' if missing else ''}")
        if spec.recipe == "distill" and spec.teacher != "run":
            raise UserError(f"candidates.{name}: a distill candidate needs teacher: run (the run's teacher)")


# ---- the run's teacher (Gemma 2's distillation) ---------------------------------------------------------

def build_teacher(cfg, run, sft_data: Path) -> Path:
    """The run's teacher, `<run>/teacher/sft`: r0-sft grown to twice its depth (function-preserving,
    `alignment.depth_growth`) and trained further on `sft_data` (round 0's reference data) with the later rounds'
    SFT settings (`recipes.sft`) plus `recipes.teacher`.

    Why grown, not pre-trained: a teacher of ~4.5x the base pre-trained within minutes of CPU stays weaker than the
    student (measured on seed 0's dev: 0.246 mean against r0-sft's 0.382, arithmetic probes 14% against 88%), and
    so does the base grown and SFT'd afresh (0.370); the grown r0-sft starts exactly as good as the student's start
    and has twice its layers to learn with. Built once by the first round that asks (each part is written atomically), the same for every
    round after; `teacher_model` names one built before instead.
    """
    from alignment import recipes
    from alignment.depth_growth import grow_depth
    from committee.round_config import overrides_of

    if cfg.teacher_model:  # checked before the run starts (committee.run_checks)
        return Path(cfg.teacher_model)
    root = run.root / "teacher"
    member = root / "sft"
    if (member / "meta.json").is_file():
        return member
    if not (root / "base" / "meta.json").is_file():
        grow_depth(run.member(0, "r0-sft"), root / "base", factor=2)
    sft = recipes.load("sft", preset=cfg.preset, overrides=[*overrides_of(cfg, "sft"), *overrides_of(cfg, "teacher")],
                       from_checkpoint=str(root / "base"), data=str(sft_data), out=str(member), member="teacher",
                       round=0, seed=cfg.seed)
    recipes.main_of("sft")(sft)
    return member
