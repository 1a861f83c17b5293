"""The `merge` recipe: one member from several of the same architecture, by the merging rules of our sources.

What it does, top to bottom (`main(cfg)`):
1. check the method and its numbers, load every member's weights (`cfg.members`, member or base directories)
   and, for the methods that need one, the initialisation `cfg.from_checkpoint`; members of different
   architectures are a one-line error (`alignment.merging.check_same_architecture`);
2. merge the state dicts with the pure functions of `alignment.merging`:
   - `average`: uniform average (Llama 3.1 averages RM, SFT and DPO models of several runs; Gemma 2 its final
     models); `weighted`: with `weights`;
   - `ema`: an exponential moving average over the members in order, `decay` on the running anchor (WARP's
     anchor, applied to saved checkpoints);
   - `slerp`: spherical interpolation of the two members' task vectors from the initialisation at `lam` (WARP);
   - `liti`: interpolation of the first member toward the initialisation, `eta` of the way from it (WARP);
   - `warp`: `slerp` of two members, then `liti` toward the initialisation (WARP's full merge);
3. load the merged weights into the first member's architecture and write a member directory (weights, the
   first member's tokenizer, meta.json with the method, the members and the numbers) atomically.

What it simplifies: merges whole state dicts in float32 on the CPU (no sharding); SLERP takes exactly two
members, as WARP's pairwise merge does. Reused: the formulas follow mergekit's SLERP and linear merges, written
here as small functions with hand-checked tests.

Run: `afm-align train merge --from runs/x/round_2/members/r2-rs --out runs/x/merged members=[A,B] method=slerp`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from afm_align.errors import UserError

METHODS = ("average", "weighted", "ema", "slerp", "liti", "warp")
NEEDS_INIT = ("slerp", "liti", "warp")  # methods that read `from_checkpoint` (the initialisation)


@dataclass
class MergeConfig:
    """Which members to merge and how."""

    from_checkpoint: str = ""  # the initialisation (slerp, liti, warp: task vectors start here); else unused
    data: str = ""  # unused: merging reads no data (kept for the shared recipe vocabulary)
    out: str = ""  # member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to (0 outside rounds)
    members: list[str] = field(default_factory=list)  # member directories to merge (same architecture)
    method: str = "average"  # average | weighted | ema | slerp | liti | warp
    weights: list[float] = field(default_factory=list)  # weighted: one per member (normalised to sum 1)
    decay: float = 0.9  # ema: weight of the running anchor at each step
    lam: float = 0.5  # slerp / warp: 0 gives the first member, 1 the second
    eta: float = 0.3  # liti / warp: 0 gives the initialisation, 1 the merged model
    seed: int = 0


def check(cfg: MergeConfig) -> None:
    """One line for a method, member count or path the merge cannot use."""
    if cfg.method not in METHODS:
        raise UserError(f"unknown merge method '{cfg.method}'; methods are: {', '.join(METHODS)}")
    if not cfg.out:
        raise UserError("config key 'out' must be set")
    wanted = {"slerp": 2, "warp": 2, "liti": 1}.get(cfg.method)
    if wanted and len(cfg.members) != wanted:
        raise UserError(f"merge method {cfg.method} takes {wanted} member(s) (got {len(cfg.members)})")
    if not wanted and len(cfg.members) < 2:
        raise UserError(f"merge method {cfg.method} takes two or more members (got {len(cfg.members)})")
    if cfg.method == "weighted" and len(cfg.weights) != len(cfg.members):
        raise UserError(f"method weighted needs one weight per member ({len(cfg.members)}), got {len(cfg.weights)}")
    paths = [*cfg.members, *([cfg.from_checkpoint] if cfg.method in NEEDS_INIT else [])]
    if cfg.method in NEEDS_INIT and not cfg.from_checkpoint:
        raise UserError(f"merge method {cfg.method} needs the initialisation as from_checkpoint")
    for path in paths:
        if not (Path(path) / "config.json").is_file():
            raise UserError(f"{path}: not a model directory (no config.json)")


def load_state(path: str) -> dict:
    """The float32 state dict of a member directory (tied weights once, as saved)."""
    from afm_align.base_model import load_base

    model, _ = load_base(path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def merged_state(cfg: MergeConfig, states: list[dict], init: dict | None) -> dict:
    """The merged state dict of `cfg.method` (see the module doc)."""
    from alignment import merging

    names = [str(m) for m in cfg.members]
    merging.check_same_architecture(states + ([init] if init is not None else []),
                                    names + (["the initialisation"] if init is not None else []))
    if cfg.method == "average":
        return merging.weighted_average(states)
    if cfg.method == "weighted":
        return merging.weighted_average(states, cfg.weights)
    if cfg.method == "ema":
        anchor = states[0]
        for state in states[1:]:
            anchor = merging.ema_update(anchor, state, cfg.decay)
        return anchor
    if cfg.method == "liti":
        return merging.liti(init, states[0], cfg.eta)
    combined = merging.slerp(init, states[0], states[1], cfg.lam)
    return combined if cfg.method == "slerp" else merging.liti(init, combined, cfg.eta)


def main(cfg: MergeConfig) -> dict:
    """Merge and write the member; returns its meta."""
    from afm_align.base_model import load_base
    from afm_align.member_io import staged_dir
    from alignment.members import META_FILE, write_member

    check(cfg)
    states = [load_state(p) for p in cfg.members]
    init = load_state(cfg.from_checkpoint) if cfg.method in NEEDS_INIT else None
    merged = merged_state(cfg, states, init)
    model, tokenizer = load_base(cfg.members[0])
    model.load_state_dict(merged)
    meta = {"member": cfg.member or Path(cfg.out).name, "recipe": "merge", "round": cfg.round, "method": cfg.method, "members": list(map(str, cfg.members)),
            "from_checkpoint": cfg.from_checkpoint if init is not None else None,
            "weights": cfg.weights or None, "decay": cfg.decay if cfg.method == "ema" else None,
            "lam": cfg.lam if cfg.method in ("slerp", "warp") else None,
            "eta": cfg.eta if cfg.method in ("liti", "warp") else None, "lora_rank": 0}
    with staged_dir(cfg.out, required=META_FILE) as stage:
        meta = write_member(stage, model, tokenizer, meta=meta, cfg=cfg)
    print(f"merge ({cfg.method}): {len(cfg.members)} member(s) -> {cfg.out}")
    return meta
