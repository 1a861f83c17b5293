"""The dataset store: a folder of rows (`rows.jsonl`) plus `.manifest.json`, written atomically.

The manifest is a hidden file so that the folder is a plain JSON dataset to the HF stack:
`datasets.load_dataset(folder)` and `load_dataset("json", data_dir=folder)` read `rows.jsonl` alone (they skip
hidden files). Folders written before (with a visible `manifest.json`) are still read.

Every dataset afm-align makes goes through `write_dataset`: rows are validated against their kind's
contract (`afm_align.schema`), serialised canonically (sorted keys, one JSON object a line), hashed
(sha256 of those bytes: the content hash, stable across runs and machines), and written to a temporary
sibling folder that is renamed into place, so a crash never leaves a half-written dataset. The
manifest records kind, row count, content hash, producer, the resolved config and parent hashes.

`read_rows` streams `rows.jsonl` in chunks and validates every row (errors name file, line and field); a
line longer than `max_row_bytes()` (16 MiB, `$AFM_ALIGN_MAX_ROW_BYTES`) is refused before the rest of it is
read, and a line that is not UTF-8 names its file and line. Reading a dataset folder also checks it against
its manifest: the row count and the content hash (the sha256 of the bytes read, which for a folder
`write_dataset` wrote are exactly the canonical lines; a file rewritten in another formatting is hashed
canonically, as `content_hash` does, before it is refused). A folder changed after it was written is a
one-line `UserError` naming the folder. `load_hf` gives a `datasets.Dataset` through
`datasets.load_dataset("json", ...)` after the same check, so every dataset loads with the HF stack too.
Nested fields whose shape varies by row (`verifier`, `sampling`) are stored as JSON strings.

Nothing that afm-align did not write is ever replaced: `publish_dir` replaces only an empty folder or one
holding the artefact's marker file, and `check_out` is the one-line refusal the commands' `--out` goes
through (`--overwrite` replaces a dataset or model of the same kind, nothing else).

Staging folders (and temporary files) are named `.<name>.tmp-<pid>-<8 random>` (`staging_prefix`), and a
folder being replaced `.<name>.old-<pid>-<8 random>` (`publish_dir`), so what a killed process left behind can
be told from what a running one is writing (`afm_align.member_io
.remove_stale_staging`).

Run: `python -c "from afm_align.store import read_manifest; print(read_manifest('runs/x/data/prompt-...'))"`.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from afm_align.errors import UserError
from afm_align.schema import RowError, validate_row, validate_rows

ROWS_FILE = "rows.jsonl"
MANIFEST_FILE = ".manifest.json"  # hidden, so `datasets.load_dataset(folder)` reads rows.jsonl alone
LEGACY_MANIFEST = "manifest.json"  # datasets written before it was hidden keep it here (still read)
STORE_VERSION = 1
MAX_ROW_BYTES = 16 << 20  # the default cap on one row (line) of a JSONL file; $AFM_ALIGN_MAX_ROW_BYTES changes it
READ_CHUNK = 1 << 20  # rows files are read in chunks of this many bytes


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


def staging_prefix(name: str) -> str:
    """The name prefix of a temporary sibling of `name` made by this process: `.<name>.tmp-<pid>-` (mkdtemp
    and mkstemp add a random suffix). The pid tells a killed writer's leftovers from a live one's."""
    return f".{name}.tmp-{os.getpid()}-"


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    ensure_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=staging_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def folder_state(out: str | Path, marker: str) -> str:
    """What is at `out`: "absent", "empty" (an empty folder), "ours" (a folder holding `marker`: an afm-align
    artefact, `manifest.json` for a dataset, `meta.json` for a model) or "foreign" (anything else)."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return "absent"
    if out.is_dir() and not out.is_symlink():
        if not any(out.iterdir()):
            return "empty"
        if (out / marker).is_file() or (marker == MANIFEST_FILE and (out / LEGACY_MANIFEST).is_file()):
            return "ours"
    return "foreign"


def check_out(out: str | Path, *, marker: str, what: str, overwrite: bool, same_kind=None) -> None:
    """Refuse, with one line, an `--out` that would replace something the command did not make.

    `out` may be absent or an empty folder. A folder holding `marker` for which `same_kind(out)` holds (for a
    dataset: a manifest of the same kind) is replaced only with `overwrite` (`--overwrite`). Anything else
    (a file, a user's folder, a dataset of another kind) is never touched: choose another `--out`.
    """
    state = folder_state(out, marker)
    if state in ("absent", "empty"):
        return
    if state == "ours" and (same_kind is None or same_kind(Path(out))):
        if overwrite:
            return
        raise UserError(f"{out}: already holds a {what}; pass --overwrite to replace it")
    raise UserError(f"{out}: exists and is not a {what} afm-align wrote; it is left as it is "
                    f"(choose a new or empty folder for --out)")


def ensure_parent(out: str | Path) -> None:
    """Create the folder `out` will be written in; one that cannot be made is a one-line UserError."""
    parent = Path(out).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out}: cannot create the folder {parent} ({err.strerror or type(err).__name__})") from None


def publish_dir(staging: str | Path, out: str | Path, *, marker: str = MANIFEST_FILE) -> None:
    """Move a fully written `staging` folder to `out`, replacing an older `out` only at the last moment.

    Only an empty folder or an afm-align artefact (a folder holding `marker`) is ever replaced; anything else
    at `out` is a one-line UserError and is left untouched (a user's folder is theirs). Both are on one
    filesystem, so each step is a rename: a crash leaves either the old folder or the new one in place (plus
    a hidden leftover), never a half-written `out`.
    """
    staging, out = Path(staging), Path(out)
    state = folder_state(out, marker)
    if state == "foreign":
        raise UserError(f"{out}: exists and is not something afm-align wrote (no {marker}); it is left as it is "
                        f"(choose a new or empty folder)")
    if state == "ours":
        trash = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
        return
    if state == "empty":
        out.rmdir()
    os.replace(staging, out)


def write_dataset(rows: list[dict], kind: str, out_dir: str | Path, *, producer: str,
                  config: dict | None = None, parents: list[str] | None = None, overwrite: bool = True) -> Manifest:
    """Validate, hash and atomically write `rows` as a dataset folder at `out_dir`.

    An existing folder with the same content hash is kept as is (idempotent re-runs); a dataset of the same
    kind with different content is replaced (only after the new one is fully written) when `overwrite`, else
    refused. A folder that is not a dataset of this kind is never replaced (`check_out`).
    """
    out_dir = Path(out_dir)
    if not rows:
        raise UserError(f"{out_dir}: refusing to write an empty {kind} dataset")
    validate_rows(kind, rows, source=f"{out_dir}/{ROWS_FILE} (to be written)")
    lines = [canonical_line(r) for r in rows]
    digest = hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()
    manifest = Manifest(kind=kind, rows=len(rows), content_hash=digest, producer=producer,
                        config=config or {}, parents=list(parents or []), created=time.time())
    if folder_state(out_dir, MANIFEST_FILE) == "ours":
        old = read_manifest(out_dir)
        if old.content_hash == digest and old.kind == kind:
            return old
    check_out(out_dir, marker=MANIFEST_FILE, what=f"{kind} dataset", overwrite=overwrite,
              same_kind=lambda p: read_manifest(p).kind == kind)
    ensure_parent(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=staging_prefix(out_dir.name), dir=out_dir.parent))
    try:
        with open(tmp / ROWS_FILE, "w", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
        write_json_atomic(tmp / MANIFEST_FILE, asdict(manifest))
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def manifest_file(path: str | Path) -> Path:
    """The manifest of a dataset folder: `.manifest.json`, or `manifest.json` in a folder written before it
    was hidden (kept readable; `load_dataset` on such a folder also reads the manifest, so write it again)."""
    hidden, legacy = Path(path) / MANIFEST_FILE, Path(path) / LEGACY_MANIFEST
    return legacy if legacy.is_file() and not hidden.is_file() else hidden


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of a dataset folder; a missing or corrupt one is a one-line ValueError."""
    file = manifest_file(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Manifest(**data)
    except FileNotFoundError:
        raise UserError(f"{path}: not a dataset folder (no {MANIFEST_FILE})") from None
    except (json.JSONDecodeError, TypeError) as err:
        raise UserError(f"{file}: corrupt manifest ({err})") from None


def max_row_bytes() -> int:
    """The longest row (line) a JSONL file may hold, in bytes: `$AFM_ALIGN_MAX_ROW_BYTES`, else 16 MiB."""
    raw = os.environ.get("AFM_ALIGN_MAX_ROW_BYTES", "").strip()
    if not raw:
        return MAX_ROW_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"AFM_ALIGN_MAX_ROW_BYTES must be a positive number of bytes (got {raw!r})")
    return value


def iter_lines(fh: BinaryIO, file: str | Path, digest=None, cap: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, the line's bytes without its newline) of a binary file, read in chunks.

    A line longer than `cap` bytes (default `max_row_bytes()`) is a RowError naming file and line as soon as
    its first `cap + 1` bytes are seen: the rest is never held in memory. `digest` (a hashlib object), when
    given, is fed every byte read.
    """
    cap = max_row_bytes() if cap is None else cap
    pieces: list[bytes] = []  # the unfinished line, in chunks
    size, line_no = 0, 0

    def too_long(n: int) -> RowError:
        return RowError(f"{file} line {n}: longer than {cap:,} bytes, the row size cap "
                        f"(set AFM_ALIGN_MAX_ROW_BYTES to allow longer rows)")

    while chunk := fh.read(READ_CHUNK):
        if digest is not None:
            digest.update(chunk)
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            line_no += 1
            if size + len(part) > cap:
                raise too_long(line_no)
            if pieces:
                pieces.append(part)
                part = b"".join(pieces)
                pieces, size = [], 0
            yield line_no, part
        if parts[-1]:
            pieces.append(parts[-1])
            size += len(parts[-1])
            if size > cap:
                raise too_long(line_no + 1)
    if pieces:
        yield line_no + 1, b"".join(pieces)


def _rows_file(path: Path) -> Path:
    """The rows file of a dataset folder; missing, or not a file, is a one-line UserError."""
    file = path / ROWS_FILE
    if not file.exists():
        raise UserError(f"{path}: the dataset folder has a {MANIFEST_FILE} but no {ROWS_FILE}")
    if not file.is_file():
        raise UserError(f"{path}: {ROWS_FILE} is not a file")
    return file


def _check_against_manifest(path: Path, manifest: Manifest, n_rows: int, digest: str, rows=None) -> None:
    """A one-line UserError unless the rows read match the manifest's row count and content hash."""
    if n_rows != manifest.rows:
        raise UserError(f"{path}: {ROWS_FILE} holds {n_rows} rows but its manifest records {manifest.rows}; "
                        f"the folder was changed after it was written (write the dataset again)")
    if digest != manifest.content_hash and (rows is None or content_hash(rows) != manifest.content_hash):
        raise UserError(f"{path}: {ROWS_FILE} does not match the content hash of its manifest "
                        f"({str(manifest.content_hash)[:12]}); the folder was changed after it was written "
                        f"(write the dataset again)")


def _open_rows(file: Path) -> BinaryIO:
    try:
        return open(file, "rb")
    except OSError as err:  # a directory, no permission, ...
        raise UserError(f"{file}: cannot be read ({err.strerror or type(err).__name__})") from None


def read_rows(path: str | Path, kind: str | None = None) -> list[dict]:
    """Rows of a dataset folder (or a bare .jsonl file), each validated against its kind.

    A folder is checked against its manifest (row count and content hash, see the module doc).
    """
    path = Path(path)
    manifest = None
    if path.is_dir():
        manifest = read_manifest(path)
        if kind is not None and manifest.kind != kind:
            raise UserError(f"{path}: holds a {manifest.kind} dataset, expected {kind}")
        kind, file = manifest.kind, _rows_file(path)
    elif path.is_file():
        file = path
    else:
        raise UserError(f"{path}: no such dataset folder or file")
    if kind is None:
        raise UserError(f"{path}: a bare JSONL file needs its kind stated")
    digest = hashlib.sha256()
    rows = []
    with _open_rows(file) as fh:
        for line_no, raw in iter_lines(fh, file, digest):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                raise RowError(f"{file} line {line_no}: not valid UTF-8 (byte {err.start + 1} of the line)") from None
            except json.JSONDecodeError as err:
                raise RowError(f"{file} line {line_no}: not valid JSON ({err.msg})") from None
            validate_row(kind, row, f"{file} line {line_no}")
            rows.append(row)
    if manifest is not None:
        _check_against_manifest(path, manifest, len(rows), digest.hexdigest(), rows)
    return rows


def verify_dataset(path: str | Path) -> Manifest:
    """The manifest of a dataset folder, after checking its rows file's row count and content hash (streamed,
    rows not parsed unless the bytes differ from what `write_dataset` wrote)."""
    path = Path(path)
    manifest = read_manifest(path)
    file = _rows_file(path)
    digest, count = hashlib.sha256(), 0
    with _open_rows(file) as fh:
        for _, raw in iter_lines(fh, file, digest):
            count += bool(raw.strip())
    if digest.hexdigest() != manifest.content_hash or count != manifest.rows:
        read_rows(path)  # parsed: another formatting of the same rows passes, anything else is a UserError
    return manifest


def load_hf(path: str | Path):
    """The dataset folder as a `datasets.Dataset` (via `load_dataset('json', ...)`)."""
    from datasets import load_dataset

    verify_dataset(path)
    return load_dataset("json", data_files=str(Path(path) / ROWS_FILE), split="train")


def dataset_dirname(kind: str, digest: str) -> str:
    """The folder name of a dataset inside a run's `data/`: `<kind>-<first 12 hex of hash>`."""
    return f"{kind}-{digest[:12]}"
