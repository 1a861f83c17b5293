"""Config loading: one dataclass per recipe, YAML presets under `configs/<preset>/`, `key=value` overrides.

Order of precedence, lowest first: the dataclass defaults, `configs/<preset>/<recipe>.yaml`, an explicit
`--config FILE`, then `key=value` overrides from the command line. Nested dataclass fields take dotted
keys (`shape.hidden_size=64`). Values are parsed as YAML scalars (`learning_rate=1e-4`, `lora=true`,
`levels=[0.6,0.7]`) and checked against the field's type. An unknown key is a one-line `UserError`
that lists the valid keys; a key of the old vocabulary (`RENAMED`) names its new key. A mapping field
(`dict`) takes dotted keys too (`recipes.dpo=[max_steps=4]` sets one entry). `save_resolved` writes the final
config beside a recipe's outputs.

Every numeric knob of every config has a range in one table, `RANGES` (`afm_align.config_ranges`), keyed by field name (every recipe
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


from afm_align.config_ranges import RANGES, Range, range_for  # noqa: F401 - the table; re-exported


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
