"""The round manifest, `round_<N>/manifest.json`: what a round is, and where each of its stages stands.

A manifest holds the manifest format, the afm-align version, the round, the resolved IterateConfig,
the committee the round samples and the member its candidates start from, and one record per stage:

    {"status": "running" | "waiting" | "done", "seed": int, "attempts": int, "outputs": {name: path},
     "seconds": float, "peak_rss_mb": float, "rss_growth_mb": float, ...stage extras}

plus what stages add at the top level (`rm_accuracy`, `promotion`). Every write goes through
`afm_align.store.write_json_atomic` (temp file + rename), so a crash leaves the previous manifest or the
new one. Output paths are relative to the run directory when they lie inside it.

`Manifest.is_done(stage)` is the resume rule of DESIGN §3: the record says done *and* every output path
exists. `read(path)` turns a corrupt manifest, or one of another format, into a one-line ValueError
(checked before a round runner touches anything).

Memory: `resource.getrusage(RUSAGE_SELF).ru_maxrss` is the process's peak resident set so far (torch
allocations included, unlike tracemalloc); a stage records the peak at its end and how much the stage
raised it (0 when an earlier stage had already reached a higher peak).

Run: `python -c "from committee.manifest import read; print(read('runs/default/round_1/manifest.json'))"`.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError
from afm_align.store import write_json_atomic

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
STATUSES = ("running", "waiting", "done")
_REQUIRED = {"format": int, "round": int, "config": dict, "stages": dict}


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def validate(data, path: str | Path) -> dict:
    """`data` when it is a round manifest this afm-align reads; else a one-line ValueError."""
    if not isinstance(data, dict):
        raise UserError(f"{path}: corrupt round manifest (not a JSON object); the round cannot be resumed")
    if data.get("format") != MANIFEST_FORMAT:
        raise UserError(f"{path}: round manifest of format {data.get('format')!r}; this afm-align reads "
                         f"format {MANIFEST_FORMAT}")
    for key, typ in _REQUIRED.items():
        if not isinstance(data.get(key), typ):
            raise UserError(f"{path}: corrupt round manifest (field '{key}' missing or not a {typ.__name__})")
    for stage, record in data["stages"].items():
        if not isinstance(record, dict) or record.get("status") not in STATUSES:
            raise UserError(f"{path}: corrupt round manifest (stage '{stage}' has no valid status)")
    return data


def read(path: str | Path) -> dict | None:
    """The manifest at `path`, None when there is none, a one-line ValueError when it is corrupt."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise UserError(f"{path}: corrupt round manifest ({type(err).__name__}); "
                         "the round cannot be resumed") from None
    return validate(data, path)


@dataclass
class Manifest:
    """One round's manifest in memory, saved atomically after every change."""

    path: Path
    root: Path  # the run directory; output paths are stored relative to it
    data: dict

    @classmethod
    def open(cls, round_dir: Path, root: Path, round_n: int, header: dict) -> Manifest:
        """The round's manifest, created with `header` (version, config, committee, ...) when missing."""
        path = Path(round_dir) / MANIFEST_FILE
        data = read(path)
        if data is None:
            data = {"format": MANIFEST_FORMAT, "round": round_n, **header, "stages": {},
                    "created": round(time.time(), 3)}
            write_json_atomic(path, data)
        return cls(path=path, root=Path(root), data=data)

    def save(self) -> None:
        write_json_atomic(self.path, self.data)

    def stage(self, name: str) -> dict:
        return self.data["stages"].get(name, {})

    def _rel(self, path) -> str:
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        """A stored output path as a usable path (relative ones live under the run directory)."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    def output(self, stage: str, name: str) -> Path:
        """The path a done stage recorded as its output `name`."""
        outputs = self.stage(stage).get("outputs") or {}
        if name not in outputs:
            raise ValueError(f"{self.path}: stage '{stage}' recorded no output '{name}'")
        return self.resolve(outputs[name])

    def is_done(self, name: str) -> bool:
        """True when the stage is recorded done and all its outputs exist (then it is skipped)."""
        record = self.stage(name)
        if record.get("status") != "done":
            return False
        return all(self.resolve(p).exists() for p in (record.get("outputs") or {}).values())

    def start(self, name: str, seed: int) -> None:
        """Record that `name` is running (with its seed); counts attempts across resumes."""
        attempts = int(self.stage(name).get("attempts", 0)) + 1
        self.data["stages"][name] = {"status": "running", "seed": seed, "attempts": attempts,
                                     "started": round(time.time(), 3)}
        self.save()

    def wait(self, name: str, message: str) -> None:
        """Record that `name` waits for something outside the process (human labels)."""
        self.data["stages"][name].update(status="waiting", message=message)
        self.save()

    def finish(self, name: str, outputs: dict, seconds: float, rss_before: float, **extra) -> dict:
        """Record `name` done with its outputs, wall time, peak memory and extras; returns the record."""
        record = self.data["stages"][name]
        peak = peak_rss_mb()
        record.update(status="done", outputs={k: self._rel(v) for k, v in outputs.items()},
                      seconds=round(seconds, 2), peak_rss_mb=peak, rss_growth_mb=round(max(0.0, peak - rss_before), 1),
                      finished=round(time.time(), 3), **extra)
        record.pop("message", None)
        self.save()
        return record

    def set(self, **fields) -> None:
        """Top-level fields (rm_accuracy, promotion, ...), saved at once."""
        self.data.update(fields)
        self.save()

    def all_done(self, stages) -> bool:
        return all(self.is_done(s) for s in stages)
