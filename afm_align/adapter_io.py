"""Adapter I/O: load a (possibly palettised) base and put LoRA adapters on it, refusing a wrong base.

What it does:
- `load_any_base(path)` loads a plain member/base directory (`afm_align.base_model.load_base`) or a palettised
  one (`afm_align.palette_format.load_quantized`: the weights are the look-up-table values, i.e. the frozen
  quantised model an accuracy-recovery adapter is trained on).
- `base_fingerprint(path)` is the sha256 (first 16 hex digits) of the base's weight file. An adapter records
  the fingerprint of the base it was trained on in its `meta.json`; `check_adapter_base` refuses, in one line,
  to put it on any other base (the LoRA deltas of an adapter only mean something on the weights they were
  trained against: on another quantisation of the same model they silently give a different model).
- `load_adapted(base, {name: adapter_dir})` loads the base once and every adapter under its name (peft's
  multi-adapter model); `set_adapter(name)` then switches per request without reloading the base
  (`alignment.adapter_serving`). The name `none` is reserved for the bare base.
- `is_adapter(path)`: an adapter member directory (peft's `adapter_config.json` + our `meta.json`).

What it simplifies: adapters are kept as peft stores them (fp32 safetensors); their size is reported by the
recipe as it would be stored at 16 bits (AFM stores adapter values in 16 bits).

Run: `python -c "from afm_align.adapter_io import load_adapted; print(load_adapted('q4', {'summ': 'a'}))"`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from afm_align.errors import UserError

WEIGHT_FILES = ("quantized.safetensors", "model.safetensors")
ADAPTER_CONFIG = "adapter_config.json"
BARE = "none"  # the adapter name that means "the base alone"


def weight_file(path: str | Path) -> Path:
    """The weight file of a base directory (palettised or plain); a one-line UserError when there is none."""
    for name in WEIGHT_FILES:
        if (Path(path) / name).is_file():
            return Path(path) / name
    raise UserError(f"{path}: not a model directory (no {' or '.join(WEIGHT_FILES)})")


def base_fingerprint(path: str | Path) -> str:
    """sha256 (16 hex digits) of the base's weight file: which exact weights an adapter belongs to."""
    digest = hashlib.sha256()
    with open(weight_file(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def is_adapter(path: str | Path) -> bool:
    """True for a complete adapter member directory."""
    return (Path(path) / ADAPTER_CONFIG).is_file() and (Path(path) / "meta.json").is_file()


def adapter_meta(path: str | Path) -> dict:
    """An adapter's meta.json; a one-line UserError when `path` is not an adapter directory."""
    if not is_adapter(path):
        raise UserError(f"{path}: not an adapter directory (no {ADAPTER_CONFIG} and meta.json)")
    return json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))


def load_any_base(path: str | Path, dtype=None):
    """(model, tokenizer) of a plain or palettised base directory, in eval mode."""
    import torch

    from afm_align.base_model import load_base
    from afm_align.palette_format import is_quantized, load_quantized

    if not Path(path).is_dir():
        raise UserError(f"{path}: no such model directory")
    if is_quantized(path):
        model, tokenizer = load_quantized(path, dtype=dtype or torch.float32)
    else:
        model, tokenizer = load_base(path, dtype=dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def check_adapter_base(adapter: str | Path, base: str | Path) -> None:
    """One line, unless `adapter` was trained on exactly the weights in `base`."""
    meta = adapter_meta(adapter)
    want, have = meta.get("base_fingerprint"), base_fingerprint(base)
    if want != have:
        raise UserError(f"adapter {adapter} was trained on base {meta.get('base')} (weights {want}), "
                        f"not on {base} (weights {have}); train it on this base or load its own")


def check_names(adapters: dict) -> None:
    """Adapter names: non-empty identifiers, not the reserved `none`."""
    for name in adapters:
        if not name or not str(name).replace("_", "").replace("-", "").isalnum() or name == BARE:
            raise UserError(f"adapter name {name!r}: use letters, digits, - or _ (and not '{BARE}')")


def load_adapted(base: str | Path, adapters: dict[str, str | Path], dtype=None):
    """(peft model holding every adapter by name, tokenizer) over one load of `base`."""
    from peft import PeftModel

    check_names(adapters)
    for path in adapters.values():
        check_adapter_base(path, base)
    model, tokenizer = load_any_base(base, dtype=dtype)
    peft_model = None
    for name, path in adapters.items():
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=False)
        else:
            peft_model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    return (peft_model if peft_model is not None else model).eval(), tokenizer


def load_adapter_member(path: str | Path, dtype=None):
    """(model with the one adapter at `path`, tokenizer): its base comes from the adapter's meta.json."""
    meta = adapter_meta(path)
    return load_adapted(meta["base"], {Path(path).name.replace(".", "_") or "adapter": path}, dtype=dtype)


def load_model(path: str | Path, dtype=None):
    """(model, tokenizer) of any model directory: an adapter (on its own base), a palettised or a plain one."""
    return load_adapter_member(path, dtype=dtype) if is_adapter(path) else load_any_base(path, dtype=dtype)
