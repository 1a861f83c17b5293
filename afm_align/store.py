"""The dataset store: a folder of rows (`rows.jsonl`) plus `manifest.json`, written atomically.

Every dataset afm-align makes goes through `write_dataset`: rows are validated against their kind's
contract (`afm_align.schema`), serialised canonically (sorted keys, one JSON object a line), hashed
(sha256 of those bytes: the content hash, stable across runs and machines), and written to a temporary
sibling folder that is renamed into place, so a crash never leaves a half-written dataset. The
manifest records kind, row count, content hash, producer, the resolved config and parent hashes.

`read_rows` loads and validates (errors name file, line and field); `load_hf` gives a
`datasets.Dataset` through `datasets.load_dataset("json", ...)`, so every dataset loads with the HF
stack too. Nested fields whose shape varies by row (`verifier`, `sampling`) are stored as JSON strings.

Run: `python -c "from afm_align.store import read_manifest; print(read_manifest('runs/x/data/prompt-...'))"`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from afm_align.errors import UserError
from afm_align.schema import RowError, validate_row, validate_rows

ROWS_FILE = "rows.jsonl"
MANIFEST_FILE = "manifest.json"
STORE_VERSION = 1


@dataclass
class Manifest:
    """What a dataset folder holds and where it came from."""

    kind: str
    rows: int
    content_hash: str
    producer: str
    config: dict = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    created: float = 0.0
    store_version: int = STORE_VERSION


def canonical_line(row: dict) -> str:
    """One row as canonical JSON: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(rows: Iterable[dict]) -> str:
    """sha256 of the canonical JSONL bytes; equal rows in equal order give equal hashes."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical_line(row).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_dir(staging: str | Path, out: str | Path) -> None:
    """Move a fully written `staging` folder to `out`, replacing an older `out` only at the last moment.

    Both are on one filesystem, so each step is a rename: a crash leaves either the old folder or the new one
    in place (plus a hidden leftover), never a half-written `out`.
    """
    staging, out = Path(staging), Path(out)
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


def write_dataset(rows: list[dict], kind: str, out_dir: str | Path, *, producer: str,
                  config: dict | None = None, parents: list[str] | None = None) -> Manifest:
    """Validate, hash and atomically write `rows` as a dataset folder at `out_dir`.

    An existing folder with the same content hash is kept as is (idempotent re-runs); one with
    different content is replaced only after the new one is fully written.
    """
    out_dir = Path(out_dir)
    if not rows:
        raise UserError(f"{out_dir}: refusing to write an empty {kind} dataset")
    validate_rows(kind, rows, source=f"{out_dir}/{ROWS_FILE} (to be written)")
    lines = [canonical_line(r) for r in rows]
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()
    manifest = Manifest(kind=kind, rows=len(rows), content_hash=digest, producer=producer,
                        config=config or {}, parents=list(parents or []), created=time.time())
    if out_dir.is_dir() and (out_dir / MANIFEST_FILE).is_file():
        old = read_manifest(out_dir)
        if old.content_hash == digest and old.kind == kind:
            return old
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with open(tmp / ROWS_FILE, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
        write_json_atomic(tmp / MANIFEST_FILE, asdict(manifest))
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of a dataset folder; a missing or corrupt one is a one-line ValueError."""
    file = Path(path) / MANIFEST_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Manifest(**data)
    except FileNotFoundError:
        raise UserError(f"{path}: not a dataset folder (no {MANIFEST_FILE})") from None
    except (json.JSONDecodeError, TypeError) as err:
        raise UserError(f"{file}: corrupt manifest ({err})") from None


def read_rows(path: str | Path, kind: str | None = None) -> list[dict]:
    """Rows of a dataset folder (or a bare .jsonl file), each validated against its kind."""
    path = Path(path)
    if path.is_dir():
        manifest = read_manifest(path)
        if kind is not None and manifest.kind != kind:
            raise UserError(f"{path}: holds a {manifest.kind} dataset, expected {kind}")
        kind, file = manifest.kind, path / ROWS_FILE
    elif path.is_file():
        file = path
    else:
        raise UserError(f"{path}: no such dataset folder or file")
    if kind is None:
        raise UserError(f"{path}: a bare JSONL file needs its kind stated")
    rows = []
    with open(file, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise RowError(f"{file} line {line_no}: not valid JSON ({err.msg})") from None
            validate_row(kind, row, f"{file} line {line_no}")
            rows.append(row)
    return rows


def load_hf(path: str | Path):
    """The dataset folder as a `datasets.Dataset` (via `load_dataset('json', ...)`)."""
    from datasets import load_dataset

    read_manifest(path)
    return load_dataset("json", data_files=str(Path(path) / ROWS_FILE), split="train")


def dataset_dirname(kind: str, digest: str) -> str:
    """The folder name of a dataset inside a run's `data/`: `<kind>-<first 12 hex of hash>`."""
    return f"{kind}-{digest[:12]}"
