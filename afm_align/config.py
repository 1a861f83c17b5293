"""Config loading: one dataclass per recipe, YAML presets under `configs/<preset>/`, `key=value` overrides.

Order of precedence, lowest first: the dataclass defaults, `configs/<preset>/<recipe>.yaml`, an explicit
`--config FILE`, then `key=value` overrides from the command line. Nested dataclass fields take dotted
keys (`shape.hidden_size=64`). Values are parsed as YAML scalars (`learning_rate=1e-4`, `lora=true`,
`levels=[0.6,0.7]`) and checked against the field's type. An unknown key is a one-line `UserError`
that lists the valid keys; a key of the old vocabulary (`RENAMED`) names its new key. A mapping field
(`dict`) takes dotted keys too (`recipes.dpo=[max_steps=4]` sets one entry). `save_resolved` writes the final
config beside a recipe's outputs.

Every numeric knob of every config has a range in one table, `RANGES`, keyed by field name (every recipe
speaks one vocabulary, so `temperature` or `max_new_tokens` means the same everywhere); a `Class.field` key
holds the few knobs whose range differs by config (DPO's `beta` must be positive, MDLOO's may be 0). Ranges
may admit documented sentinels outside the interval (`max_steps: -1` = run `epochs`). `load_config` checks
every int and float field, nested configs and list entries included, once all layers are applied, before
anything runs (`check_ranges`): NaN and infinities are rejected for every float, and a value out of range is
a one-line `UserError` naming the key and its range (`temperature must be in [0, 10] (got -1.0)`).
Cross-field rules stay in each recipe's `check_config`.

Run: `python -c "from afm_align.config import preset_names; print(preset_names())"`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from afm_align.errors import UserError

CONFIG_ROOT = Path(os.environ.get("AFM_ALIGN_CONFIGS", Path(__file__).resolve().parents[1] / "configs"))


# the old names of knobs, before every recipe spoke one vocabulary -> the key that replaced them
RENAMED = {"lr": "learning_rate", "grad_accum": "gradient_accumulation_steps", "rm": "reward_model",
           "output_dir": "out", "base": "from_checkpoint", "num_epochs": "epochs"}


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric knob may take: an interval (either end open or absent) plus named sentinels."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    sentinels: tuple[tuple[float, str], ...] = ()  # (value, meaning): allowed although outside the interval

    def __contains__(self, value: float) -> bool:
        if any(value == s for s, _ in self.sentinels):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """`in [0, 1]`, `in (0, 1]`, `at least 1`, `greater than 0`, `any finite number`, `... or -1 (meaning)`."""
        if self.low is not None and self.high is not None:
            text = (f"in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            text = f"{'greater than' if self.low_open else 'at least'} {_num(self.low)}"
        elif self.high is not None:
            text = f"{'less than' if self.high_open else 'at most'} {_num(self.high)}"
        else:
            text = "any finite number"
        return text + "".join(f" or {_num(v)} ({meaning})" for v, meaning in self.sentinels)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def closed(low: float, high: float, **kw) -> Range:
    """[low, high]."""
    return Range(low, high, **kw)


def at_least(low: float, **kw) -> Range:
    """[low, inf)."""
    return Range(low, None, **kw)


def above(low: float, high: float | None = None) -> Range:
    """(low, high] or (low, inf)."""
    return Range(low, high, low_open=True)


ANY = Range()  # any finite number
MAX_BATCH = 1 << 16
MAX_STEPS = 10**8
MAX_ITEMS = 10**8  # items, prompts, pairs, problems: far beyond what a CPU or one GPU node generates
MAX_THREADS = 1024

# The range of every numeric knob of every config, keyed by field name (one vocabulary: a name means the same
# knob in every recipe); `Class.field` keys win for the few names whose range differs by config. Checked by
# `load_config` after all layers (`check_ranges`); `tests/afm_align/test_config_ranges.py` fails when a config
# gains an int or float field without a range here. The configs: afm_align.init_base.InitConfig (with
# afm_align.base_model.ModelShape as `shape`), alignment.sft.SFTRecipeConfig, alignment.preference
# .PreferenceConfig, alignment.mdloo.MDLOOConfig, alignment.rejection_sampling.RSConfig (with its `sft`),
# reward_model.trainer.RMTrainConfig, committee.round_config.IterateConfig (with committee.promotion
# .PromotionRule as `promotion`). This module imports none of them (layers): the table is keyed by names.
RANGES: dict[str, Range] = {
    # ---- the shared vocabulary of training recipes
    "seed": closed(0, 2**31 - 1),
    "round": closed(0, 10**6),
    "learning_rate": closed(0, 1),  # 0 is allowed: a run that must not move the weights (tests use it)
    "epochs": above(0, 10**4),
    "max_steps": closed(1, MAX_STEPS, sentinels=((-1, "use epochs"),)),
    "steps": closed(1, MAX_STEPS),
    "batch_size": closed(1, MAX_BATCH),
    "eval_batch_size": closed(1, MAX_BATCH),
    "gen_batch_size": closed(1, MAX_BATCH),
    "gradient_accumulation_steps": closed(1, MAX_BATCH),
    "max_length": closed(1, 1 << 20),  # RMTrainConfig's may also be None (no cap)
    "lora_rank": closed(0, 4096),  # which ranks are supported: alignment.members.LORA_RANKS (check_common)
    "warmup_steps": closed(0, MAX_STEPS),  # the RM's: a fraction of all steps when below 1
    "weight_decay": closed(0, 1),
    "logging_steps": closed(1, MAX_STEPS),
    "dropout": Range(0, 1, high_open=True),
    "max_grad_norm": above(0, 1e6),
    "dataloader_num_workers": closed(0, 256),
    # ---- sampling
    "temperature": closed(0, 10),  # 0 = greedy
    "select_temperature": closed(0, 10),
    "top_p": above(0, 1),
    "max_new_tokens": closed(1, 32768),
    "eval_max_new_tokens": closed(1, 32768),
    "k": closed(1, 1024),  # MDLOO needs 2 or more (its check_config: a leave-one-out baseline)
    "best_of_n": closed(1, 1024),
    # ---- scores and weights
    "beta": closed(0, 100),  # MDLOO: KL coefficient (0 = none)
    "PreferenceConfig.beta": above(0, 100),  # DPO beta / IPO tau: divides the margin, so never 0
    "nll_weight": closed(0, 100),
    "rm_weight": closed(0, 100),
    "verifier_weight": closed(0, 100),
    "grading_weight": closed(0, 100),
    "rs_rm_weight": closed(0, 100),
    "min_score": ANY,  # combined score floor (None = no floor); RM scores are unbounded
    "rs_min_score": ANY,
    "verifier_min": closed(0, 1),  # verifier scores are in [0, 1]; 0 = no gate
    "rs_verifier_min": closed(0, 1),
    "min_level": closed(0, 3),
    "level_probs": closed(0, 1),  # each entry: a target probability
    "judge_levels": closed(0, 1000),  # each entry: an RM-score gap (check_config: three, increasing)
    "kl_budget": at_least(0),  # 0 = no budget
    "t0": above(0, 1e6),
    "epsilon": above(0, 1),
    "heldout_fraction": Range(0, 1, high_open=True),
    # ---- MDLOO
    "prompts_per_step": closed(1, MAX_BATCH),
    "num_iterations": closed(1, 1000),  # mdloo needs 2 or more (check_config)
    "micro_batches": closed(1, MAX_BATCH),
    # ---- SFT checkpoint selection, rejection sampling
    "num_checkpoints": closed(1, 1000),
    "select_prompts": closed(1, MAX_ITEMS),
    "max_prompts": closed(0, MAX_ITEMS),  # 0 = all
    # ---- init (the base model's pre-training) and its model shape
    "vocab_size": closed(260, 1 << 22),  # at least the 256 bytes and 4 special tokens of the BPE
    "drill_problems": closed(100, MAX_ITEMS),
    "drill_max_operand": closed(2, 10**9),
    "family_items": closed(0, MAX_ITEMS),
    "math_items": closed(0, MAX_ITEMS),  # 0 = family_items
    "drill_fraction": closed(0, 1),
    "seq_len": closed(2, 1 << 20),
    "chat_seq_len": closed(2, 1 << 20),
    "probes": closed(1, 19000),  # distinct two-operand +/- problems below 100
    "heldout_sequences": closed(0, MAX_ITEMS),
    "threads": closed(0, MAX_THREADS),  # init: 0 = auto (the cores free when it starts; member_io.free_cores)
    "hidden_size": closed(1, 1 << 20),
    "num_layers": closed(1, 4096),
    "num_heads": closed(1, 4096),
    "num_kv_heads": closed(1, 4096),
    "intermediate_size": closed(1, 1 << 22),
    "max_positions": closed(2, 1 << 24),
    "rope_theta": above(0, 1e12),
    # ---- iterate (the round runner) and promotion
    "IterateConfig.threads": closed(1, MAX_THREADS),  # fixed: a resumed round computes what an unbroken one did
    "init_threads": closed(0, MAX_THREADS),  # the base's pre-training in a round: 0 = auto (the count is recorded)
    "difficulty": closed(0, 3),  # synth families' MAX_DIFFICULTY
    "dev_fraction": Range(0, 1, low_open=True, high_open=True),  # synth.splits.check_fractions: dev + test < 1
    "test_fraction": Range(0, 1, low_open=True, high_open=True),
    "sft_items": closed(1, MAX_ITEMS),
    "eval_prompts": closed(1, MAX_ITEMS),
    "prompts_per_round": closed(1, MAX_ITEMS),
    "pairs_per_prompt": closed(1, 1024),
    "oracle_flip": closed(0, 0.5),
    "oracle_level_jitter": closed(0, 1),
    "human_k": closed(1, 1000),
    "human_min_labels": closed(0, MAX_ITEMS),  # 0 = all queued pairs
    "rm_bootstrap_pairs": closed(1, MAX_ITEMS),
    "rm_round_pairs": closed(0, MAX_ITEMS),
    "rm_eval_pairs": closed(1, MAX_ITEMS),
    "rm_replay": closed(0, 1),
    "eval_bootstrap": closed(1, 10**7),
    "top_k": closed(1, 1000),
    "min_improvement": closed(-1, 1),  # a difference of dev means (solved shares)
    "keep_best_earlier": closed(0, 1000),
    # ---- the on-device track (committee.on_device) and its adapter recipe (alignment.adapters)
    "AdapterConfig.lora_rank": closed(1, 4096),  # an adapter needs a rank (0 = full fine-tuning elsewhere)
    "corpus_steps": closed(0, MAX_STEPS),  # 0 = skip the pre-training phase
    "sft_steps": closed(0, MAX_STEPS),
    "seeds": closed(0, 2**31 - 1),
    "data_seed": closed(0, 2**31 - 1),
    "ranks": closed(1, 4096),
    "corpus_items": closed(1, MAX_ITEMS),
    "corpus_math_items": closed(0, MAX_ITEMS),
    "prompts_per_family": closed(10, MAX_ITEMS),
    "heldout_per_family": closed(10, MAX_ITEMS),
    "summarize_items": closed(20, MAX_ITEMS),
    "eval_per_domain": closed(1, MAX_ITEMS),
    "group_size": closed(0, 1 << 30),  # rows per look-up table; 0 = one table per whole tensor
    "task_data_words": closed(1, 10**4),
    "task_rows": closed(1, MAX_ITEMS),
    "serve_requests": closed(1, MAX_ITEMS),
    "target_bpw": closed(2, 8),  # the mixed scheme's average index bits of the projections
    "embedding_bits": closed(8, 16),  # 8 = per-row int8 (AFM), 16 = fp16
    "calibration_rows": closed(1, MAX_ITEMS),
    "PruneConfig.calibration_rows": closed(0, MAX_ITEMS),  # 0 = all train rows
    # pruning targets: 0 = keep the teacher's value
    "PruneConfig.hidden_size": closed(0, 1 << 20),
    "PruneConfig.num_heads": closed(0, 4096),
    "PruneConfig.num_kv_heads": closed(0, 4096),
    "PruneConfig.intermediate_size": closed(0, 1 << 22),
    "PruneConfig.num_layers": closed(0, 4096),
    "teacher_weight": closed(0, 1),  # AFM: 0.9 on the teacher's top-1, the rest on the true label
    "DistillConfig.temperature": above(0, 100),  # divides the logits
    # ---- online DPO (alignment.online_dpo)
    "resample_every": closed(1, MAX_STEPS),  # fresh samples and pairs every N steps
    "OnlineDPOConfig.beta": above(0, 100),  # DPO beta scales the margin, so never 0
    # ---- Qwen2's Online Merging Optimizer (alignment.online_merging)
    "omo_alpha": closed(0, 1),  # weight of the SFT delta per step (online_merging_step takes [0, 1])
    "omo_drop": Range(0, 1, high_open=True),  # the drop rate of the random mask; 1 would drop every update
    # ---- merging (alignment.merge)
    "weights": closed(0, 1e6),  # per-member weights, normalised to sum 1 (a positive sum is checked)
    "decay": closed(0, 1),
    "lam": closed(0, 1),
    "eta": closed(0, 1),
}


def range_for(owner: str, name: str) -> Range | None:
    """The range of field `name` of the config class named `owner` (its `owner.name` entry, else `name`'s)."""
    return RANGES.get(f"{owner}.{name}", RANGES.get(name))


def _numeric(typ: Any) -> str | None:
    """'scalar' for an int / float annotation (optional or not), 'items' for a list or tuple of them, else None."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        kinds = {_numeric(t) for t in typing.get_args(typ) if t is not type(None)}
        return next(iter(kinds)) if len(kinds) == 1 else None
    if origin in (list, tuple):
        args = [a for a in typing.get_args(typ) if a is not Ellipsis]
        return "items" if args and all(_numeric(a) == "scalar" for a in args) else None
    return "scalar" if typ in (int, float) else None


def numeric_fields(cfg: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(owner class name, dotted key, field name, 'scalar' | 'items') of every int / float field of a dataclass
    instance or class, nested configs included."""
    cls = cfg if isinstance(cfg, type) else type(cfg)
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        nested = typ if dataclasses.is_dataclass(typ) else None
        if nested is None and not isinstance(cfg, type) and dataclasses.is_dataclass(getattr(cfg, f.name)):
            nested = getattr(cfg, f.name)
        if nested is not None:
            out += numeric_fields(nested if isinstance(cfg, type) else getattr(cfg, f.name), f"{prefix}{f.name}.")
        elif (kind := _numeric(typ)) is not None:
            out.append((cls.__name__, prefix + f.name, f.name, kind))
    return out


def check_ranges(cfg: Any) -> Any:
    """`cfg` itself, or a one-line UserError for its first numeric value out of its `RANGES` range (or not
    finite). Fields of a config class with no range get the finiteness check only; the tests require one."""
    for owner, key, name, kind in numeric_fields(cfg):
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if value is None:
            continue
        values = list(value) if kind == "items" else [value]
        allowed = range_for(owner, name)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise UserError(f"{key} needs {'numbers' if kind == 'items' else 'a number'} (got {value!r})")
            if not math.isfinite(v):
                raise UserError(f"{key} must be a finite number (got {value!r})")
            if allowed is not None and v not in allowed:
                what = f"{key} entries" if kind == "items" else key
                raise UserError(f"{what} must be {allowed.describe()} (got {value!r})")
    return cfg


def preset_names() -> list[str]:
    """The preset folders under `configs/` (e.g. tiny, small)."""
    if not CONFIG_ROOT.is_dir():
        return []
    return sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir() and p.name != "accelerate")


def preset_file(preset: str, recipe: str) -> Path:
    """The YAML of `recipe` in `preset`. An unknown preset, or a preset without a YAML for `recipe`, is a
    one-line error naming what there is (a silent fall-back to the dataclass defaults once started a 0.47B
    pre-training on CPU for `iterate --preset small`)."""
    if preset not in preset_names():
        raise UserError(f"unknown preset '{preset}'; presets are: {', '.join(preset_names()) or 'none'}")
    path = CONFIG_ROOT / preset / f"{recipe}.yaml"
    if not path.is_file():
        having = sorted(p.stem for p in (CONFIG_ROOT / preset).glob("*.yaml"))
        with_it = [name for name in preset_names() if (CONFIG_ROOT / name / f"{recipe}.yaml").is_file()]
        raise UserError(f"preset '{preset}' has no {recipe} config (configs/{preset}/ holds: {', '.join(having)}); "
                        f"presets with one: {', '.join(with_it) or 'none'}")
    return path


def _field_names(obj) -> list[str]:
    """Every settable key of a dataclass instance, nested ones dotted."""
    names = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            names += [f"{f.name}.{sub}" for sub in _field_names(value)]
        else:
            names.append(f.name)
    return names


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check (and gently coerce) `value` against the annotation `typ`."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(typ)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ValueError:
                continue
        raise UserError(f"config key '{key}': {value!r} does not fit {typ}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' needs a list (got {value!r})")
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' needs a mapping (got {value!r})")
        return value
    if typ is Any:
        return value
    if typ in (int, float) and isinstance(value, bool):  # YAML's true/false are not numbers here
        raise UserError(f"config key '{key}' needs {typ.__name__} (got {value!r})")
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            number = float(value)
        except ValueError:
            raise UserError(f"config key '{key}' needs {typ.__name__} (got {value!r})") from None
        if typ is int and not number.is_integer():
            raise UserError(f"config key '{key}' needs int (got {value!r})")
        return typ(number)
    if typ is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(typ, type) and not isinstance(value, typ):
        raise UserError(f"config key '{key}' needs {typ.__name__} (got {value!r})")
    return value


def _apply(obj: Any, key: str, value: Any, valid: list[str], prefix: str = "") -> Any:
    """`obj` with the (possibly dotted) `key` set to `value`, type-checked."""
    head, _, rest = key.partition(".")
    fields = {f.name for f in dataclasses.fields(obj)}
    if head not in fields and RENAMED.get(head) in fields:
        raise UserError(f"config key '{prefix}{head}' was renamed to '{prefix}{RENAMED[head]}'")
    inner = getattr(obj, head, None)
    if isinstance(inner, dict) and (rest or isinstance(value, dict)):  # entries of a mapping field, merged
        return dataclasses.replace(obj, **{head: {**inner, **({rest: value} if rest else value)}})
    if head not in fields or (rest and not dataclasses.is_dataclass(inner)):
        raise UserError(f"unknown config key '{prefix}{key}'; valid keys: {', '.join(valid)}")
    if rest:
        return dataclasses.replace(obj, **{head: _apply(inner, rest, value, valid, f"{prefix}{head}.")})
    if dataclasses.is_dataclass(inner) and isinstance(value, dict):
        for sub_key, sub_value in value.items():
            inner = _apply(inner, str(sub_key), sub_value, valid, f"{prefix}{head}.")
        return dataclasses.replace(obj, **{head: inner})
    hints = typing.get_type_hints(type(obj))
    return dataclasses.replace(obj, **{head: _coerce(value, hints[head], prefix + key)})


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, YAML-parsed value); anything else is a one-line error."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override '{text}' is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def read_yaml(path: Path) -> dict:
    """A YAML file of config keys as a mapping; a missing, invalid or non-mapping file is a one-line error."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise UserError(f"config file {path} is not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(cls, *, preset: str | None = None, recipe: str | None = None,
                config_file: str | Path | None = None, overrides: list[str] | tuple = ()) -> Any:
    """Build `cls` from defaults, the preset's YAML, a config file and `key=value` overrides."""
    cfg = cls()
    valid = _field_names(cfg)
    layers: list[dict] = []
    if preset is not None and recipe is not None:
        layers.append(read_yaml(preset_file(preset, recipe)))
    if config_file is not None:
        layers.append(read_yaml(Path(config_file)))
    layers.append(dict(parse_override(o) for o in overrides))
    for layer in layers:
        for key, value in layer.items():
            cfg = _apply(cfg, str(key), value, valid)
    return check_ranges(cfg)


def config_dict(cfg: Any) -> dict:
    """The config as plain data (what gets saved and hashed)."""
    return dataclasses.asdict(cfg)


def save_resolved(cfg: Any, out_dir: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config as YAML beside a recipe's outputs (atomically)."""
    out = Path(out_dir) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{name}.tmp")
    tmp.write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False), encoding="utf-8")
    os.replace(tmp, out)
    return out
