"""The optimizer of `afm-align init`'s pre-training: AdamW, or Muon with AdamW beside it (the tiny preset's).

Split from `afm_align.init_base` (the recipe), which builds it with `pretrain_optimizer(model, cfg)` and
scales every param group's learning rate by its schedule (`init_base.lr_factor`) by hand, so that one schedule
drives both optimizers of the Muon option. The tiny preset pre-trains with Muon (with six times the tool
conversations; chosen on dev, README "More tries"); AdamW is the dataclass default and the small preset's.

Muon is written here in fp32: torch's `torch.optim.Muon` runs its Newton-Schulz iteration in bfloat16, which on
a CPU took 0.27 s a step for the tiny preset's 21 matrices (0.025 s in fp32), so a 0.38 s pre-training step
became 0.6 s.

Run: `afm-align init --preset tiny optimizer=muon`.
"""
from __future__ import annotations

import math

OPTIMIZERS = ("adamw", "muon")


def pretrain_optimizer(model, cfg):
    """The pre-training optimizer: AdamW over every parameter, or (`optimizer: muon`) Muon (`_Muon`, fp32) over
    the transformer layers' 2-D weight matrices and AdamW over the rest (the tied embedding, the norms), as Muon's
    authors use it. Muon orthogonalises each matrix's momentum (Newton-Schulz), which in published small-model
    runs learns more per token than AdamW; its step is scaled to AdamW's RMS (`_muon_step`), so the one
    `learning_rate` serves both. Returns an object with `step`, `zero_grad` and `param_groups` (for the
    schedule)."""
    import torch

    betas = (0.9, 0.98)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=betas, weight_decay=cfg.weight_decay)
    matrices = [p for n, p in model.named_parameters() if p.ndim == 2 and ".layers." in f".{n}"]
    chosen = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    return _Optimizers([
        _Muon(matrices, lr=cfg.learning_rate, weight_decay=cfg.weight_decay),
        torch.optim.AdamW(rest, lr=cfg.learning_rate, betas=betas, weight_decay=cfg.weight_decay),
    ])


NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # the quintic Newton-Schulz iteration of Muon's authors (and torch's)


def orthogonalise(update, steps: int = 5, eps: float = 1e-7):
    """The nearest semi-orthogonal matrix to `update`, approximately (Newton-Schulz, `steps` iterations, fp32):
    Muon's step direction. Works on the wide orientation and transposes back."""
    a, b, c = NS_COEFFICIENTS
    x = update.T if update.size(0) > update.size(1) else update
    x = x / (x.norm() + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if update.size(0) > update.size(1) else x


def _muon_step(param, grad, buf, lr: float, momentum: float, weight_decay: float) -> None:
    """One Muon update of a 2-D `param` in place: Nesterov momentum, orthogonalised, decoupled weight decay,
    the step scaled by 0.2 sqrt(max(rows, cols)) so that its RMS matches AdamW's (torch's `match_rms_adamw`)."""
    buf.lerp_(grad, 1 - momentum)
    direction = orthogonalise(grad.lerp(buf, momentum))
    param.mul_(1 - lr * weight_decay)
    param.add_(direction, alpha=-lr * 0.2 * math.sqrt(max(param.shape)))


class _Muon:
    """Muon over 2-D parameters in fp32 (`_muon_step`), with a torch-style `param_groups` and `zero_grad`."""

    def __init__(self, params, lr: float, weight_decay: float, momentum: float = 0.95):
        import torch

        self.param_groups = [{"params": list(params), "lr": lr, "weight_decay": weight_decay, "momentum": momentum}]
        self.buffers = {id(p): torch.zeros_like(p) for p in self.param_groups[0]["params"]}

    def step(self):
        import torch

        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        _muon_step(p, p.grad, self.buffers[id(p)], group["lr"], group["momentum"],
                                   group["weight_decay"])

    def zero_grad(self, set_to_none: bool = True):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


class _Optimizers:
    """Several torch optimizers stepped as one, with their param groups joined so that one LambdaLR-style
    schedule (`lr_factor`) scales them all."""

    def __init__(self, optimizers):
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    def step(self):
        for o in self.optimizers:
            o.step()

    def zero_grad(self, set_to_none: bool = True):
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)
