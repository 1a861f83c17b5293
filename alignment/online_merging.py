"""Qwen2's Online Merging Optimizer (OnDARE, Lu et al. 2405.17931): an optimizer option of DPO / IPO, online DPO
and MDLOO / RLOO (`online_merging: true`) that merges every update with the SFT delta, against the alignment tax.

What it does: `OnlineMergingOptimizer` holds a torch optimizer (AdamW in the recipes). After each of its steps,
every parameter that had a gradient gets, instead of the plain update `u = theta_new - theta_old`,
`alignment.system_losses.online_merging_step(theta_old, u, tau, alpha, drop)`:
`theta_old + (1 - alpha) F_R(u) + alpha F_R(tau)`, where `F_R` keeps each entry with probability `1 - drop`
(no DARE rescaling; fresh masks every step, drawn from a seeded `torch.Generator` per device, so a seed gives
the same run) and `tau = theta_SFT - theta_base` is the SFT model's delta from its pre-trained base
(afm-spec §10; the paper's reference code: "we merge gradients with the parameter differences between SFT and
pretrained models"). The SFT model is the recipe's starting checkpoint (`from_checkpoint`); `tau` is computed
once, frozen, and kept on the parameters' device. The base is `omo_base`, or found by `pretrained_base`:
the `from_checkpoint` links of the members' meta.json followed back to a checkpoint that names none (a run's
`base/`); when the start is itself the base, `tau` = 0 and the merge only sparsifies and scales the update.

Defaults (`OMO_ALPHA`, `OMO_DROP`): Qwen2 states neither alpha nor the drop rate (afm-spec §10 and open
question 14), nor OnDARE vs OnTIES. The paper sweeps alpha over 1e-7 ... 1e-4; we take 1e-5, inside that
sweep (its released script: alpha 1e-7 at lr 1e-6), so that for SFT deltas of order 1e-2 the tau term is
about a tenth of an AdamW step at lr 1e-6 and 1-2% at 5e-6 ... 1e-5 (our DPO / online DPO / MDLOO defaults).
Drop 0.5 (the script keeps 1%, but its dropout rescales by 1/keep, which afm-spec's F_R does not). No
(alpha, drop > 0) keeps the plain step in expectation: with `tau = 0` the merged step is
`(1 - alpha)(1 - drop) u` on average, at most `(1 - drop) u` since `online_merging_step` takes alpha in
[0, 1] (it would need alpha = 1 - 1/(1 - drop) < 0); so drop 0.5 halves the mean step (raise the learning
rate to compensate). `alpha = 0, drop = 0` is the plain optimizer (up to float rounding).

What it simplifies: OnDARE only (no OnTIES, no k-step merging, no clipping of tau); the merge RNG and tau are
not in `state_dict()` (the inner optimizer's state is), so a resumed trainer checkpoint redraws masks; full
fine-tuning only (the recipes reject it with LoRA: adapters have no SFT delta); one extra copy of the stepped
parameters lives during a step (theta_old) besides tau.

Run: `afm-align train dpo --from runs/x/round_1/members/sft --data ... --out ... online_merging=true`;
tests: `python -m pytest tests/alignment/test_online_merging.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from afm_align.errors import UserError
from alignment.system_losses import online_merging_step

OMO_ALPHA = 1e-5  # Qwen2 gives none; inside the paper's sweep 1e-7 ... 1e-4 (see the module doc)
OMO_DROP = 0.5  # Qwen2 gives none; F_R's drop rate (halves the mean step: no DARE rescaling)


class OnlineMergingOptimizer(torch.optim.Optimizer):
    """`inner`'s step with each stepped parameter's update replaced by OnDARE's merge with its `tau`.

    A torch Optimizer (TRL / transformers schedulers require one) that keeps no state of its own kind:
    `param_groups`, `state` and `defaults` are `inner`'s (as accelerate's AcceleratedOptimizer does), so a
    scheduler or `load_state_dict` acts on the inner optimizer. `taus`: parameter -> frozen SFT delta;
    a parameter without one merges with tau = 0.
    """

    def __init__(self, inner: torch.optim.Optimizer, taus: dict | None = None, *, alpha: float = OMO_ALPHA,
                 drop: float = OMO_DROP, seed: int = 0):
        check_settings(alpha, drop)
        self.inner, self.alpha, self.drop, self.seed = inner, float(alpha), float(drop), int(seed)
        self._taus = dict(taus or {})
        self._generators: dict[str, torch.Generator] = {}

    # the inner optimizer's groups, state and defaults (read and written through)
    param_groups = property(lambda self: self.inner.param_groups,
                            lambda self, value: setattr(self.inner, "param_groups", value))
    state = property(lambda self: self.inner.state, lambda self, value: setattr(self.inner, "state", value))
    defaults = property(lambda self: self.inner.defaults, lambda self, value: setattr(self.inner, "defaults", value))

    def add_param_group(self, param_group: dict) -> None:
        self.inner.add_param_group(param_group)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.inner.load_state_dict(state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def _tau(self, p: torch.Tensor) -> torch.Tensor:
        tau = self._taus.get(p)
        if tau is None:
            return torch.zeros_like(p)
        if tau.device != p.device or tau.dtype != p.dtype:  # the trainer moved the model after we were made
            tau = self._taus[p] = tau.to(device=p.device, dtype=p.dtype)
        return tau

    @torch.no_grad()
    def step(self, closure=None):
        """One inner step, then per stepped parameter (in group order; masks: update's, then tau's) the merge."""
        loss = None
        if closure is not None:  # evaluated here, so the gradients that decide which parameters step exist
            with torch.enable_grad():
                loss = closure()
        stepped = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        before = [p.detach().clone() for p in stepped]
        self.inner.step()
        for p, theta in zip(stepped, before):
            merged = online_merging_step(theta, p - theta, self._tau(p), self.alpha, self.drop,
                                         self._generator(p.device))
            p.copy_(merged)
        return loss


def check_settings(alpha: float, drop: float) -> None:
    """One-sentence error unless alpha is in [0, 1] and drop in [0, 1) (`online_merging_step`'s domain)."""
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= drop < 1.0:
        raise UserError(f"online merging needs omo_alpha in [0, 1] and omo_drop in [0, 1) (got {alpha}, {drop})")


# ---- tau: the SFT start minus its pre-trained base ------------------------------------------------------

def _model_dir(path: Path) -> Path:
    """A base/ folder that only points at a --base PATH (base.json) stands for that PATH."""
    pointer = path / "base.json"
    if pointer.is_file() and not (path / "config.json").is_file():
        return Path(json.loads(pointer.read_text())["path"])
    return path


def _parent(path: Path) -> Path | None:
    """The checkpoint `path` was trained from (meta.json's from_checkpoint, or a merge's first member), or None
    for a pre-trained base (no meta.json, or one that names no parent)."""
    meta_file = path / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    parent = meta.get("from_checkpoint") or (meta.get("members") or [None])[0]
    return Path(parent) if parent else None


def pretrained_base(start: str | Path, base: str | Path = "") -> Path | None:
    """The pre-trained base `start` was trained from (`base` when given), or None when `start` is itself a
    pre-trained base (tau = 0). Follows meta.json's `from_checkpoint` links; a link that is not a directory here
    is a one-sentence error asking for `omo_base`."""
    start_dir = _model_dir(Path(start))
    if base:
        found = _model_dir(Path(base))
        if not found.is_dir():
            raise UserError(f"omo_base {base}: no such checkpoint directory")
    else:
        found, seen = Path(start), set()
        while (parent := _parent(found)) is not None:
            if not parent.is_dir():
                raise UserError(f"online merging: {found} was trained from {parent}, which is not a directory "
                                "here; set omo_base to the pre-trained base")
            if parent.resolve() in seen:
                raise UserError(f"online merging: the from_checkpoint links of {start} form a loop; set omo_base")
            seen.add(parent.resolve())
            found = parent
        found = _model_dir(found)
    return None if found.resolve() == start_dir.resolve() else found


def _named_parameters(base) -> dict[str, torch.Tensor]:
    if isinstance(base, torch.nn.Module):
        return dict(base.named_parameters())
    from afm_align.base_model import load_base

    model, _ = load_base(_model_dir(Path(base)), dtype=torch.float32)
    return dict(model.named_parameters())


@torch.no_grad()
def sft_deltas(model: torch.nn.Module, base) -> dict:
    """parameter of `model` -> frozen `theta_model - theta_base` on the parameter's device and dtype (trainable
    parameters only). `base`: a module of the same architecture or a checkpoint directory."""
    base_params = _named_parameters(base)
    taus = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        b = base_params.get(name)
        if b is None or b.shape != p.shape:
            raise UserError(f"online merging: the base has no parameter {name} of shape {tuple(p.shape)}; "
                            "omo_base must be the pre-trained model the start was trained from")
        taus[p] = p.detach() - b.detach().to(device=p.device, dtype=p.dtype)
    return taus


# ---- what the recipes call --------------------------------------------------------------------------------

def make_optimizer(model: torch.nn.Module, base_optimizer: torch.optim.Optimizer, *, alpha: float, drop: float,
                   seed: int, base=None) -> OnlineMergingOptimizer:
    """`base_optimizer` (over `model`'s parameters, made now, before any step: `model` is the SFT start) wrapped
    in OnDARE; `base`: the pre-trained base (module or directory) for tau, None = tau 0."""
    check_settings(alpha, drop)
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for group in base_optimizer.param_groups for p in group["params"]):
        raise UserError("online merging: the optimizer holds parameters that are not the model's")
    taus = sft_deltas(model, base) if base is not None else None
    return OnlineMergingOptimizer(base_optimizer, taus, alpha=alpha, drop=drop, seed=seed)


def trainer_optimizers(model: torch.nn.Module, learning_rate: float, weight_decay: float, *, alpha: float,
                       drop: float, seed: int, base=None) -> tuple[OnlineMergingOptimizer, None]:
    """`(optimizer, None)` for a TRL trainer's `optimizers=`: AdamW grouped as transformers' Trainer groups it
    (no decay on biases and norms, betas 0.9/0.999, eps 1e-8), wrapped by `make_optimizer`; the trainer makes
    the learning-rate schedule of its args itself (`Trainer.create_scheduler` when the scheduler is None)."""
    from transformers import Trainer

    decay = set(Trainer.get_decay_parameter_names(None, model))  # uses no trainer state: one rule, theirs
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
              {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}]
    inner = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)
    return make_optimizer(model, inner, alpha=alpha, drop=drop, seed=seed, base=base), None


def check_recipe(cfg) -> None:
    """A recipe config's online-merging checks (fields `online_merging, omo_alpha, omo_drop, omo_base`, LoRA
    rank), before anything is loaded: settings in range, full fine-tuning, a findable base."""
    if not cfg.online_merging:
        return
    check_settings(cfg.omo_alpha, cfg.omo_drop)
    if cfg.lora_rank:
        raise UserError("online_merging needs full fine-tuning (lora_rank 0): LoRA adapters have no SFT delta")
    pretrained_base(cfg.from_checkpoint, cfg.omo_base)


def recipe_optimizers(model, cfg, learning_rate: float, weight_decay: float):
    """`(optimizer, None)` for a TRL trainer when `cfg.online_merging`, else `(None, None)` (the trainer's own)."""
    if not cfg.online_merging:
        return None, None
    return trainer_optimizers(model, learning_rate, weight_decay, alpha=cfg.omo_alpha, drop=cfg.omo_drop,
                              seed=cfg.seed, base=pretrained_base(cfg.from_checkpoint, cfg.omo_base))


def recipe_meta(cfg) -> dict | None:
    """meta.json's `online_merging` record: None when off, else alpha, drop, seed and the base tau came from."""
    if not cfg.online_merging:
        return None
    base = pretrained_base(cfg.from_checkpoint, cfg.omo_base)
    return {"variant": "ondare", "alpha": cfg.omo_alpha, "drop": cfg.omo_drop, "seed": cfg.seed,
            "base": str(base) if base else None}
