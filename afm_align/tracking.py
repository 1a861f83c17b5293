"""Run logging: a `metrics.jsonl` per run (what reports and leaderboards read) and progress bars.

`MetricsLog(path).log(step=..., loss=...)` appends one JSON object per line with a wall-clock stamp and
flushes it at once, so a crash loses at most the line being written. `progress(...)` is tqdm with our
defaults (to stderr, quiet when `AFM_ALIGN_QUIET=1`, e.g. inside tests).
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


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it"):
    """A tqdm progress bar on stderr; silent when AFM_ALIGN_QUIET=1."""
    from tqdm.auto import tqdm

    quiet = os.environ.get("AFM_ALIGN_QUIET") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, leave=True)
