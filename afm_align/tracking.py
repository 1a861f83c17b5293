"""Run logging: a `metrics.jsonl` per run (what reports and leaderboards read) and progress bars.

`MetricsLog(path).log(step=..., loss=...)` appends one JSON object per line with a wall-clock stamp and
flushes it at once, so a crash loses at most the line being written. `training_series(records, key)` reads
one metric's per-step values back (what the round report's training curves plot). `progress(...)` is tqdm
with our defaults (to stderr, quiet when `AFM_ALIGN_QUIET=1`, e.g. inside tests).

Trackers (tensorboard, trackio, ...) are TRL's own integrations, chosen by a recipe's `report_to` and checked
by `afm_align.member_io.check_report_to`; this file is the tracker that is always on.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Iterable


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


class MetricsLog:
    """Append-only JSON-lines metrics file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, **fields) -> dict:
        record = {"time": round(time.time(), 3), **{k: _clean(v) for k, v in fields.items()}}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
        return record

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def training_series(records: list[dict], key: str) -> list[tuple[float, float]]:
    """[(step, value)] of one numeric metric over the training records of a metrics.jsonl.

    Training records are the trainer's per-step logs (`source` "trainer" or absent); the trainer's end-of-run
    summary (it holds `train_runtime` and averages over the whole run) and other sources (e.g. SFT's
    checkpoint selection) are left out. A record without `step` counts as the next step.
    """
    out: list[tuple[float, float]] = []
    for r in records:
        if r.get("source", "trainer") != "trainer" or "train_runtime" in r:
            continue
        value = r.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            step = r.get("step")
            step = float(step) if isinstance(step, (int, float)) else (out[-1][0] + 1 if out else 0.0)
            out.append((step, float(value)))
    return out


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it"):
    """A tqdm progress bar on stderr; silent when AFM_ALIGN_QUIET=1."""
    from tqdm.auto import tqdm

    quiet = os.environ.get("AFM_ALIGN_QUIET") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, leave=True)
