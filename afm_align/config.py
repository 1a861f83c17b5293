"""Config loading: one dataclass per recipe, YAML presets under `configs/<preset>/`, `key=value` overrides.

Order of precedence, lowest first: the dataclass defaults, `configs/<preset>/<recipe>.yaml`, an explicit
`--config FILE`, then `key=value` overrides from the command line. Nested dataclass fields take dotted
keys (`shape.hidden_size=64`). Values are parsed as YAML scalars (`learning_rate=1e-4`, `lora=true`,
`levels=[0.6,0.7]`) and checked against the field's type. An unknown key is a one-line `UserError`
that lists the valid keys; a key of the old vocabulary (`RENAMED`) names its new key. A mapping field
(`dict`) takes dotted keys too (`recipes.dpo=[max_steps=4]` sets one entry). `save_resolved` writes the final config beside a recipe's outputs.

Run: `python -c "from afm_align.config import preset_names; print(preset_names())"`.
"""
from __future__ import annotations

import dataclasses
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


def preset_names() -> list[str]:
    """The preset folders under `configs/` (e.g. tiny, small)."""
    if not CONFIG_ROOT.is_dir():
        return []
    return sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir() and p.name != "accelerate")


def preset_file(preset: str, recipe: str) -> Path:
    """The YAML of `recipe` in `preset`; an unknown preset is a one-line error naming the known ones."""
    if preset not in preset_names():
        raise UserError(f"unknown preset '{preset}'; presets are: {', '.join(preset_names()) or 'none'}")
    return CONFIG_ROOT / preset / f"{recipe}.yaml"


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


def _read_yaml(path: Path) -> dict:
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
        path = preset_file(preset, recipe)
        if path.is_file():
            layers.append(_read_yaml(path))
    if config_file is not None:
        layers.append(_read_yaml(Path(config_file)))
    layers.append(dict(parse_override(o) for o in overrides))
    for layer in layers:
        for key, value in layer.items():
            cfg = _apply(cfg, str(key), value, valid)
    return cfg


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
