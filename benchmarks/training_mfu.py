"""Model FLOP utilisation of the real SFT, DPO, RM and MDLOO training steps, against two stated peaks.

What it does: builds a base of the tiny preset's shape in-process, writes small synth datasets, and runs each
recipe's own `main(cfg)` (its preset config, its TRL trainer, padded batches as the recipe makes them) for a
few steps at the rounds' thread count (`threads` of configs/tiny/iterate.yaml). Two instruments watch it:
- a FLOP ledger (global forward hooks) counts the FLOPs each pass does: a decoder stack (the LM's or the
  RM's backbone, however it is called) 2 x (its Linear weights) per non-padding token plus 4 x layers x
  attention width x (query tokens x attended tokens) per row for the attention products; a Linear layer
  outside a stack (the LM head, the RM's small heads; the RM has no LM head) 2 x its weights per row it is
  applied to (TRL applies the LM head to padding positions too, and that work is counted); all x3 when the
  pass builds a graph (forward + backward). KV-cached sampling counts each new token against its context;
- a trainer callback (added to every `transformers.Trainer` built in the process) times each optimiser step
  from `on_step_begin` to `on_step_end` (forward, backward, optimiser; for MDLOO also its sampling).
MFU of a step = its FLOPs / its seconds / peak; the figure is the median over the steps after the first.

Peaks, both stated: the measured one is the median of 5 timed 2048^3 fp32 matmuls at the same thread count
(the same statistic as the steps); the theoretical one is cores x nominal clock x FP32 FLOPs per cycle
(2 FMA units x SIMD lanes x 2: 64 with AVX-512, 32 with AVX2+FMA), from /proc/cpuinfo. A measured peak above
the theoretical one means the cores run above their nominal clock (turbo).

Run: `python benchmarks/training_mfu.py [--steps 6] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("AFM_ALIGN_QUIET", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ---- peaks ------------------------------------------------------------------------------------------------

def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n fp32 matmul: the median of `repeats` timed runs after one warm-up."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times)


def theoretical_peak(threads: int) -> dict:
    """cores x nominal clock x FP32 FLOPs per cycle, from /proc/cpuinfo (None where it cannot be read)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"flops": None, "how": "no /proc/cpuinfo"}
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    mhz = next((float(line.split(":", 1)[1]) for line in info.splitlines() if line.startswith("cpu MHz")), None)
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 8
    if mhz is None:
        return {"flops": None, "how": "no clock in /proc/cpuinfo"}
    flops = threads * mhz * 1e6 * per_cycle
    return {"flops": flops, "how": f"{threads} cores x {mhz:.0f} MHz (nominal) x {per_cycle} FP32 FLOP/cycle"}


# ---- the FLOP ledger --------------------------------------------------------------------------------------

def linear_weights(model) -> int:
    """Weights of every Linear layer of a decoder stack: its matmul work per token."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    return total


def attention_shape(model) -> tuple[int, int]:
    """(layers, attention width = heads x head dim) of a decoder stack."""
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return cfg.num_hidden_layers, cfg.num_attention_heads * head_dim


def pass_flops(model, input_ids, attention_mask, graph: bool, cache: dict) -> float:
    """FLOPs of one forward pass on its non-padding tokens (x3 when it builds a graph for a backward)."""
    key = id(model)
    if key not in cache:
        cache[key] = (linear_weights(model), *attention_shape(model))
    weights, layers, width = cache[key]
    rows, width_q = input_ids.shape[0], input_ids.shape[-1]
    if attention_mask is None:
        queries = torch.full((rows,), width_q)
        attended = queries
    else:
        mask = attention_mask.reshape(rows, -1).to(torch.int64)
        queries, attended = mask[:, -width_q:].sum(1), mask.sum(1)
    dense = 2 * weights * int(queries.sum())
    attention = 4 * layers * width * int((queries * attended).sum())
    return (dense + attention) * (3 if graph else 1)


def is_backbone(module) -> bool:
    """A decoder stack (embeddings + `layers`): where a model's per-token work is counted."""
    return hasattr(module, "layers") and hasattr(module, "embed_tokens") and hasattr(module, "config")


class FlopLedger:
    """Counts, while installed, the FLOPs of every decoder-stack pass and of every Linear layer outside one.

    Decoder stacks (the causal LM's and the RM's backbone) are counted per non-padding token from their
    attention mask (`pass_flops`), however they are called (through the LM, or directly, as MDLOO's log-prob
    pass does). A Linear layer outside a stack (the LM head, the RM's heads) is counted for the rows it is
    applied to: TRL's trainers apply the LM head to every position, padding included, so that work counts.
    """

    def __init__(self):
        self.total, self._cache, self._inside, self._handle = 0.0, {}, set(), None

    def hook(self, module, args, kwargs, output):
        if isinstance(module, torch.nn.Linear):
            if id(module) not in self._inside and args and torch.is_tensor(args[0]):
                rows = args[0].numel() // module.in_features
                graph = torch.is_grad_enabled() and (module.weight.requires_grad or args[0].requires_grad)
                self.total += 2 * module.in_features * module.out_features * rows * (3 if graph else 1)
            return
        if not is_backbone(module):
            return
        if id(module) not in self._cache:
            self._inside.update(id(m) for m in module.modules() if isinstance(m, torch.nn.Linear))
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or not torch.is_tensor(ids):
            embeds = kwargs.get("inputs_embeds")
            if embeds is None:
                return
            ids = embeds[..., 0]
        graph = torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters())
        self.total += pass_flops(module, ids, kwargs.get("attention_mask"), graph, self._cache)

    def __enter__(self):
        self._handle = torch.nn.modules.module.register_module_forward_hook(self.hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def install_step_timer(ledger: FlopLedger, steps: list):
    """Add a callback to every Trainer built from now on; it appends (seconds, FLOPs) per optimiser step."""
    import transformers
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.start, self.flops = time.perf_counter(), ledger.total

        def on_step_end(self, args, state, control, **kw):
            steps.append((time.perf_counter() - self.start, ledger.total - self.flops))

    original = transformers.Trainer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(StepTimer())
    transformers.Trainer.__init__ = init
    return lambda: setattr(transformers.Trainer, "__init__", original)


# ---- the recipes' steps -----------------------------------------------------------------------------------

def make_inputs(work: Path) -> dict:
    """A tiny-preset-shaped base and small sft, preference and prompt datasets under `work`."""
    from synth.builders import build
    from throughput_models import TINY, tokenizer_and_model

    tok, model = tokenizer_and_model(TINY)
    model.save_pretrained(work / "base")
    tok.save_pretrained(work / "base")
    (work / "base" / "meta.json").write_text("{}")
    build("math", 96, 0, work / "sft", kind="sft")
    build("prefs", 200, 0, work / "prefs")
    build("math", 96, 0, work / "prompts")
    return {"base": work / "base", "sft": work / "sft", "prefs": work / "prefs", "prompts": work / "prompts"}


def run_recipe(name: str, paths: dict, work: Path, steps: int) -> None:
    """One recipe's `main(cfg)` at its tiny preset, for `steps` optimiser steps."""
    if name == "rm":
        from reward_model import recipe

        cfg = recipe.load("tiny", None, [f"data={paths['prefs']}", f"out={work / 'out' / 'rm'}",
                                         f"from_checkpoint={paths['base']}", f"max_steps={steps}"])
        recipe.main(cfg)
        return
    from alignment import recipes

    data = {"sft": paths["sft"], "dpo": paths["prefs"], "mdloo": paths["prompts"]}[name]
    limit = f"steps={steps}" if name == "mdloo" else f"max_steps={steps}"
    extra = ["verifier_weight=1.0", "rm_weight=0.0", "kl_budget=0"] if name == "mdloo" else []
    cfg = recipes.load(name, preset="tiny", overrides=[f"from_checkpoint={paths['base']}", f"data={data}",
                                                        f"out={work / 'out' / name}", limit, *extra])
    recipes.main_of(name)(cfg)


def measure(name: str, paths: dict, work: Path, steps: int, peak: float, theory: float | None) -> dict:
    ledger, timed = FlopLedger(), []
    restore = install_step_timer(ledger, timed)
    try:
        with ledger:
            run_recipe(name, paths, work, steps)
    finally:
        restore()
    kept = timed[1:] or timed  # the first step warms the allocator and the kernels
    if not kept:
        raise RuntimeError(f"{name}: the trainer ran no timed step")
    rates = [flops / seconds for seconds, flops in kept]
    out = {"steps_timed": len(kept), "step_s": round(statistics.median(s for s, _ in kept), 4),
           "step_gflop": round(statistics.median(f for _, f in kept) / 1e9, 3),
           "mfu_vs_measured_peak": round(statistics.median(rates) / peak, 4)}
    out["mfu_vs_theoretical_peak"] = round(statistics.median(rates) / theory, 4) if theory else None
    return out


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per recipe (the first is not timed)")
    parser.add_argument("--recipes", default="sft,dpo,rm,mdloo")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    threads = int(yaml.safe_load((ROOT / "configs" / "tiny" / "iterate.yaml").read_text())["threads"])
    threads = min(threads, os.cpu_count() or 1)
    os.environ["AFM_ALIGN_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    peak, theory = matmul_peak(), theoretical_peak(threads)
    result = {"benchmark": "training_mfu", "threads": threads, "peak_matmul_gflops": round(peak / 1e9, 1),
              "theoretical_peak_gflops": None if theory["flops"] is None else round(theory["flops"] / 1e9, 1),
              "theoretical_peak_how": theory["how"], "shape": "tiny preset (configs/tiny/init.yaml)",
              "counting": "non-padding tokens; Linear weights of the model (no LM head in the RM); attention "
                          "products; x3 for passes with a backward"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = make_inputs(work)
        for name in args.recipes.split(","):
            result[name] = measure(name, paths, work, args.steps, peak, theory["flops"])
            r = result[name]
            print(f"{name:<6} step {1000 * r['step_s']:8.1f} ms  {r['step_gflop']:8.3f} GFLOP  MFU "
                  f"{100 * r['mfu_vs_measured_peak']:5.1f}% of measured {result['peak_matmul_gflops']} GFLOP/s, "
                  f"{100 * (r['mfu_vs_theoretical_peak'] or 0):5.1f}% of theoretical "
                  f"{result['theoretical_peak_gflops']} GFLOP/s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
