"""Member I/O: the one place that puts a checkpoint on a device, generates with it, frees it, publishes a staged
folder and builds a trainer's arguments. Every stage of every recipe and round goes through it.

Why one module: a device chosen in three places drifts (before this module, only evaluation moved members to
CUDA, so committee and rejection sampling ran on the CPU of a GPU machine). Here:
- `device()` is chosen once per process: `$AFM_ALIGN_DEVICE` when set (`cpu`, `cuda`, `cuda:1`, `meta` in
  tests), else CUDA when present, else the CPU. `stage_device(stage)` is what a stage asks: it returns
  `device()`, logs `device <stage>: <device>` once per stage and records it in `DEVICES` (tests read that).
- `dtype(bf16)`: bfloat16 where the preset says `bf16: true`, float32 where it says false; for inference
  (`bf16=None`, the default of `load` and `generate_from`) bfloat16 on a GPU that supports it, else float32.
- `load(path, stage=...)` loads a member, a base or a trainer checkpoint for inference on the stage's device
  (`load_for_training` leaves placement to the trainer, whose arguments come from `trainer_args`);
  `free(model)` drops it and returns cached GPU memory; `loaded(...)` does both around a block.
- `generate_from(path, prompts, stage=..., backend=...)` samples from a saved checkpoint through
  `afm_align.generation`: the vLLM backend when asked, or with `auto` when vLLM is installed and a GPU is
  present; the Hugging Face backend otherwise. One member is in memory at a time.
- `staged_dir(out, required=..., drop=...)` yields a temporary sibling of `out` (`.<name>.tmp-<pid>-<random>`)
  and publishes it with one rename when the block succeeds (under `accelerate launch` only the main process
  publishes; all wait); a crash never leaves a half-written folder, and nothing outside the staging folder is
  touched. `remove_stale_staging(root)` removes the staging folders a killed process (SIGKILL, power loss)
  left under a run directory: only names of that pattern whose pid is no longer running (`init` and
  `iterate` call it when they start).
- `trainer_args(TRLConfig, output_dir, stage=..., ...)` builds any TRL / transformers config safe on this
  device: bf16 only when asked, gradient checkpointing off, trackers from `report_to` (checked, off by
  default), no dataloader workers, no checkpoints unless asked, `use_cpu` when the device is the CPU.

Run: `python -c "from afm_align.member_io import device; print(device())"`.
"""
from __future__ import annotations

import gc
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from afm_align.errors import UserError
from afm_align.store import ensure_parent, publish_dir, staging_prefix

logger = logging.getLogger(__name__)

DEVICES: dict[str, str] = {}  # stage -> the device it ran on, in this process (what tests and logs read)
TRACKERS = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}  # name -> package
TRACKING_EXTRA = ("tensorboard", "trackio")  # what `pip install -e '.[tracking]'` installs
TRACKING_DIR = "tracking"  # a member's tracker logs (tensorboard event files), kept when the member is published


# ---- device and dtype ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def device():
    """The device of every model in this process: $AFM_ALIGN_DEVICE, else CUDA when present, else the CPU."""
    import torch

    chosen = os.environ.get("AFM_ALIGN_DEVICE", "").strip()
    if chosen:
        try:
            return torch.device(chosen)
        except RuntimeError:
            raise UserError(f"AFM_ALIGN_DEVICE={chosen!r} is not a torch device (try cpu or cuda)") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def stage_device(stage: str):
    """The device `stage` runs on (always `device()`), logged once per stage and recorded in `DEVICES`."""
    dev = device()
    if DEVICES.get(stage) != str(dev):
        DEVICES[stage] = str(dev)
        logger.info("device %s: %s", stage, dev)
        if os.environ.get("AFM_ALIGN_LOG_DEVICES") == "1":
            print(f"device {stage}: {dev}", flush=True)
    return dev


def dtype(bf16: bool | None = False):
    """bfloat16 where the preset says so (`bf16=True`), float32 where it says not; `None` (inference): bfloat16
    on a GPU that supports it, float32 on the CPU (where bf16 matmuls are slow)."""
    import torch

    if bf16 is None:
        dev = device()
        bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16 else torch.float32


def set_threads() -> None:
    """Use `$AFM_ALIGN_THREADS` torch threads when set (the round runner fixes them; default: torch's choice)."""
    if os.environ.get("AFM_ALIGN_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["AFM_ALIGN_THREADS"]))


# ---- threads: the cores actually free -----------------------------------------------------------------
# Measured (benchmarks/threads_under_load.py, results in benchmarks/results/threads_under_load.json): on a
# 2-core machine a pre-training step of the tiny base takes ~0.22 s at 2 threads and ~0.27 s at 1 when quiet,
# but with one core busy 0.80 s at 2 threads (0.47 s with OMP_WAIT_POLICY=PASSIVE) against 0.28 s at 1: every
# OpenMP region waits for the thread that shares its core. So a thread count left to us (`threads: 0`) is the
# number of cores free when the work starts.

def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota when one is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = None
    try:  # cgroup v2, then v1
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            quota = int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            if q > 0:
                quota = q / int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            pass
    if quota is not None:
        cores = min(cores, max(1, int(quota + 0.5)))
    return max(1, cores)


def cpu_times() -> dict[int, tuple[int, int]]:
    """{cpu: (busy, total) jiffies} from /proc/stat (empty where there is none)."""
    out = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and len(fields) >= 8:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[:8])
            busy = user + nice + system + irq + softirq + steal
            out[int(name[3:])] = (busy, busy + idle + iowait)
    return out


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def busy_cores(interval: float = 0.3) -> float:
    """How many of this process's cores other processes kept busy over `interval` seconds (from /proc/stat;
    0.0 where it cannot be read). This process's own CPU time in the window is not counted."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    before, own = cpu_times(), _own_cpu_seconds()
    if not before:
        return 0.0
    time.sleep(interval)
    after, own = cpu_times(), _own_cpu_seconds() - own
    busy = 0.0
    for cpu, (b0, t0) in before.items():
        if (allowed is None or cpu in allowed) and cpu in after and after[cpu][1] > t0:
            busy += (after[cpu][0] - b0) / (after[cpu][1] - t0)
    return max(0.0, busy - own / interval)


def free_cores(interval: float = 0.5) -> int:
    """The cores free for our threads now: available ones minus the busy ones, at least 1. A core busy for more
    than 0.15 of the window counts as taken (a thread sharing a core slows every thread that waits for it)."""
    cores = available_cores()
    return max(1, min(cores, int(cores - busy_cores(interval) + 0.15)))


def resolve_threads(requested: int) -> int:
    """The torch thread count to use: `requested` when it is 1 or more, else (`0`: auto) `free_cores()`."""
    return int(requested) if requested and requested > 0 else free_cores()


# ---- loading, freeing --------------------------------------------------------------------------------

def load_for_training(path: str | Path, *, stage: str):
    """(model, tokenizer) of a checkpoint to train, in float32 (the optimiser's master weights; bf16 is the
    trainer's mixed precision, from `trainer_args`); the trainer places it on the stage's device."""
    from afm_align.base_model import load_base

    if not Path(path).is_dir():
        raise UserError(f"from_checkpoint {path}: no such checkpoint directory.")
    stage_device(stage)
    set_threads()
    model, tokenizer = load_base(path, dtype=dtype(False))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def place(model, *, stage: str):
    """`model` moved to the stage's device, in eval mode (for generation or scoring)."""
    dev = stage_device(stage)
    if dev.type != "meta" and next(model.parameters()).device != dev:
        model = model.to(dev)
    return model.eval()


def load(path: str | Path, *, stage: str, bf16: bool | None = None):
    """(model, tokenizer) of a member or base directory, on the stage's device, ready to generate."""
    from afm_align.base_model import load_base

    set_threads()
    model, tokenizer = load_base(path, dtype=dtype(bf16))
    return place(model, stage=stage), tokenizer


def free(model) -> None:
    """Drop a model and give cached GPU memory back (one member in memory at a time)."""
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def loaded(path: str | Path, *, stage: str, bf16: bool | None = None) -> Iterator[tuple]:
    """`load` for the length of a block, then `free`."""
    model, tokenizer = load(path, stage=stage, bf16=bf16)
    try:
        yield model, tokenizer
    finally:
        free(model)


# ---- generation ----------------------------------------------------------------------------------------

def generate_from(path: str | Path, prompts: list, *, stage: str, k: int = 1, max_new_tokens: int = 128,
                  temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 32, seed: int = 0,
                  backend: str = "auto", bf16: bool | None = None) -> list[list[str]]:
    """K completion texts per chat prompt from the checkpoint at `path` (vLLM or HF, see the module doc)."""
    import torch

    from afm_align import generation

    if generation.resolve_backend(backend) == "vllm":
        from transformers import AutoTokenizer

        stage_device(stage)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return generation.sample_vllm(path, tokenizer, prompts, k=k, max_new_tokens=max_new_tokens,
                                      temperature=temperature, top_p=top_p, seed=seed,
                                      dtype="bfloat16" if dtype(bf16) == torch.bfloat16 else "float32").texts
    with loaded(path, stage=stage, bf16=bf16) as (model, tokenizer):
        return generation.generate(model, tokenizer, prompts, k=k, max_new_tokens=max_new_tokens,
                                   temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed)


# ---- publishing ----------------------------------------------------------------------------------------

def is_main_process() -> bool:
    """True in a plain run and in the main process of an `accelerate launch` run."""
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    """A barrier across the processes of an `accelerate launch` run; nothing in a plain run."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


@contextmanager
def staged_dir(out: str | Path, *, required: str | None = None, drop: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of `out`; when the block succeeds, publish it as `out` with one rename.

    `required`: a file the block must have written (else RuntimeError: the folder is not published);
    `drop`: a subfolder removed before publishing (trainer checkpoints), after its tracker logs
    (`<drop>/runs`, tensorboard's event files) are moved to `tracking/`. Under `accelerate launch` only the
    main process publishes, and no process returns before the folder is in place.
    """
    out = Path(out)
    ensure_parent(out)
    stage = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name), dir=out.parent))
    try:
        yield stage
        if is_main_process():
            if required and not (stage / required).is_file():
                raise RuntimeError(f"{out}: the recipe finished without writing {required}")
            if drop:
                if (stage / drop / "runs").is_dir():
                    shutil.move(str(stage / drop / "runs"), str(stage / TRACKING_DIR))
                shutil.rmtree(stage / drop, ignore_errors=True)
            publish_dir(stage, out, marker=required or "meta.json")  # replaces only an older artefact, once complete
        wait_for_everyone()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# what our writers leave while they work: `.<name>.tmp-<pid>-<8 random>` (afm_align.store.staging_prefix +
# tempfile's 8 random characters: staged folders, datasets, atomic JSON files) and `.<name>.old-<pid>-<8 random>`
# (store.publish_dir: the folder being replaced)
STAGING_NAME = re.compile(r"^\..+\.(?:tmp|old)-(\d+)-[a-z0-9_]{8}$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_staging(root: str | Path) -> list[Path]:
    """The staging folders and files under `root` (recursively) whose creating process is gone.

    Only names of our own pattern (`STAGING_NAME`) count, and only when their pid is not running: a process
    writing into the same run right now is never disturbed, and nothing else is ever listed. Symlinks are
    not followed. (A pid is of this machine: a run directory shared by several machines at once is not.)
    """
    found: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return found
    for parent, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            match = STAGING_NAME.match(name)
            if match and not pid_alive(int(match.group(1))):
                found.append(Path(parent) / name)
        dirs[:] = [d for d in dirs if not STAGING_NAME.match(d)]  # never look inside a staging folder
    return found


def remove_stale_staging(root: str | Path, *, quiet: bool = False) -> list[Path]:
    """Remove what `stale_staging(root)` lists (what killed runs left); returns the removed paths."""
    removed = []
    for path in stale_staging(root):
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    if removed and not quiet:
        print(f"removed {len(removed)} staging folder(s) left by a killed run under {root}: "
              f"{', '.join(str(p.relative_to(root)) for p in removed[:5])}{' ...' if len(removed) > 5 else ''}",
              flush=True)
    return removed


# ---- trainer arguments ---------------------------------------------------------------------------------

def check_report_to(report_to: str) -> str:
    """`none` or comma-separated tracker names whose packages are installed; else a one-line UserError."""
    names = [n.strip() for n in str(report_to or "none").split(",") if n.strip()]
    if names in ([], ["none"]):
        return "none"
    for name in names:
        if name not in TRACKERS:
            raise UserError(f"report_to '{name}' is not a tracker; choose none or some of: {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            extra = ", or pip install -e '.[tracking]'" if name in TRACKING_EXTRA else ""
            raise UserError(f"report_to {name} needs the {TRACKERS[name]} package (pip install {TRACKERS[name]}{extra})")
    return ",".join(names)


def trainer_args(config_cls, output_dir: str | Path, *, stage: str, bf16: bool = False, report_to: str = "none",
                 **fields):
    """A TRL / transformers training config safe on this device, then `fields` on top.

    TRL defaults to bf16 and gradient checkpointing, which fail or crawl on a CPU: both are off unless asked.
    Trackers come from `report_to` (TRL's own integrations; `metrics.jsonl` is written either way); data
    loads in the main process; nothing is saved or pushed unless `fields` says so.
    """
    dev = stage_device(stage)
    trackers = check_report_to(report_to)
    base = dict(output_dir=str(output_dir), bf16=bool(bf16), fp16=False, gradient_checkpointing=False,
                activation_checkpointing=False, report_to=trackers.split(",") if trackers != "none" else "none",
                dataloader_num_workers=0, dataloader_pin_memory=dev.type == "cuda", save_strategy="no",
                save_only_model=True, disable_tqdm=os.environ.get("AFM_ALIGN_QUIET") == "1", push_to_hub=False,
                logging_strategy="steps", logging_first_step=True, use_cpu=dev.type == "cpu")
    return config_cls(**{**base, **fields})
