"""The run directory of DESIGN §3: where every artefact of a run lives, in one place.

```
runs/<name>/
  base/                 tiny base model + tokenizer (or base.json pointing at --base PATH)
  data/<kind>-<hash>/   datasets with manifests
  round_<N>/            manifest.json, responses/, preferences/, rm/, members/<m>/, eval/, report.md, plots/
  labels.sqlite         the label store of the annotation app
  run.json              the afm-align version that made the run (checked on every later command)
```
`RunDir` only computes paths and checks the run's version stamp; the stages write the files.
The runs root is `./runs`, or `$AFM_ALIGN_RUNS` when set.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError

RUN_FORMAT = 2  # 2: train/dev/test splits by problem identity, a test stage after promotion
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def runs_root() -> Path:
    """Where runs live: `$AFM_ALIGN_RUNS`, else `./runs`."""
    return Path(os.environ.get("AFM_ALIGN_RUNS", "runs"))


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    @classmethod
    def named(cls, name: str) -> "RunDir":
        """The run called `name` under the runs root; a path-like name is used as given."""
        if "/" in name or name.startswith("."):
            return cls(Path(name))
        if not _NAME.match(name):
            raise UserError(f"run name '{name}' must be 1-64 letters, digits, '.', '_' or '-'")
        return cls(runs_root() / name)

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def labels(self) -> Path:
        return self.root / "labels.sqlite"

    @property
    def stamp(self) -> Path:
        return self.root / "run.json"

    def round(self, n: int) -> Path:
        return self.root / f"round_{n}"

    def member(self, n: int, member: str) -> Path:
        return self.round(n) / "members" / member

    def base_model_path(self) -> Path:
        """The base model directory: ours under base/, or the --base PATH recorded in base/base.json."""
        pointer = self.base / "base.json"
        if pointer.is_file():
            return Path(json.loads(pointer.read_text())["path"])
        return self.base

    def ensure(self) -> "RunDir":
        """Create the run folder and its version stamp, or check an existing stamp."""
        self.check_format()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.stamp.exists():
            from afm_align import __version__
            self.stamp.write_text(json.dumps({"format": RUN_FORMAT, "afm_align": __version__}))
        return self

    def check_format(self) -> None:
        """A run made by another on-disk format, or with a corrupt stamp, is a one-line error."""
        if not self.stamp.exists():
            return
        try:
            fmt = json.loads(self.stamp.read_text()).get("format")
        except (json.JSONDecodeError, AttributeError):
            raise UserError(f"{self.stamp}: corrupt run stamp; this run cannot be used") from None
        if fmt != RUN_FORMAT:
            raise UserError(f"{self.root}: made by run format {fmt}, this afm-align reads format {RUN_FORMAT}")
