"""Issue 17, finding 11: a dataset folder is checked against its manifest when read, and rows files are read
in chunks with a per-line size cap: a tampered count or hash, a missing rows file, a non-UTF-8 line and an
over-long line are one-line errors naming the folder or the file and line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from afm_align.errors import UserError
from afm_align.schema import RowError
from afm_align.store import (MANIFEST_FILE, ROWS_FILE, content_hash, iter_lines, load_hf, max_row_bytes,
                             read_manifest, read_rows, verify_dataset, write_dataset)


def prompt_rows(n=5):
    return [{"id": f"m{i}", "prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "domain": "math",
             "verifier": json.dumps({"answer": i + 1}), "source": "synth/math", "split": "train"}
            for i in range(n)]


def edit_manifest(folder: Path, **fields) -> None:
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data.update(fields)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


@pytest.fixture
def ds(tmp_path):
    write_dataset(prompt_rows(3), "prompt", tmp_path / "ds", producer="t")
    return tmp_path / "ds"


def test_a_manifest_claiming_more_rows_is_refused_in_one_line(ds):
    edit_manifest(ds, rows=999)
    with pytest.raises(UserError) as err:
        read_rows(ds)
    assert str(err.value) == (f"{ds}: {ROWS_FILE} holds 3 rows but its manifest records 999; the folder was "
                              "changed after it was written (write the dataset again)")
    with pytest.raises(UserError, match="manifest records 999"):
        verify_dataset(ds)
    with pytest.raises(UserError, match="manifest records 999"):
        load_hf(ds)


def test_a_wrong_content_hash_is_refused_in_one_line(ds):
    edit_manifest(ds, content_hash="0" * 64)
    with pytest.raises(UserError, match=rf"^{ds}: {ROWS_FILE} does not match the content hash of its manifest "
                                        r"\(000000000000\); the folder was changed after it was written"):
        read_rows(ds)
    with pytest.raises(UserError, match="does not match the content hash"):
        verify_dataset(ds)


def test_rows_edited_after_writing_are_refused(ds):
    file = ds / ROWS_FILE
    file.write_text(file.read_text().replace("What is 1 + 1?", "What is 7 + 1?"))  # still a valid row
    with pytest.raises(UserError, match="does not match the content hash"):
        read_rows(ds)


def test_the_same_rows_in_another_formatting_still_pass(ds):
    rows = prompt_rows(3)
    lines = [json.dumps(dict(reversed(list(r.items()))), indent=None) for r in rows]  # other key order, spaces
    (ds / ROWS_FILE).write_text("\n".join(lines) + "\n\n")
    assert read_rows(ds) == rows and verify_dataset(ds).content_hash == content_hash(rows)


def test_a_missing_rows_file_is_one_line(ds):
    (ds / ROWS_FILE).unlink()
    with pytest.raises(UserError, match=rf"^{ds}: the dataset folder has a {MANIFEST_FILE} but no {ROWS_FILE}$"):
        read_rows(ds)


def test_a_rows_file_that_is_a_directory_is_one_line(ds):
    (ds / ROWS_FILE).unlink()
    (ds / ROWS_FILE).mkdir()
    with pytest.raises(UserError, match=rf"^{ds}: {ROWS_FILE} is not a file$"):
        read_rows(ds)


def test_a_non_utf8_line_names_file_and_line(ds):
    file = ds / ROWS_FILE
    lines = file.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"What", b"Wh\xffat")
    file.write_bytes(b"\n".join(lines))
    with pytest.raises(RowError, match=rf"^{file} line 2: not valid UTF-8 \(byte \d+ of the line\)$"):
        read_rows(ds)


def test_a_bare_jsonl_file_is_read_too(tmp_path):
    file = tmp_path / "rows.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in prompt_rows(4)))
    assert read_rows(file, "prompt") == prompt_rows(4)


def test_iter_lines_splits_across_chunks_and_keeps_a_last_line_without_newline(tmp_path, monkeypatch):
    import afm_align.store as store

    monkeypatch.setattr(store, "READ_CHUNK", 7)
    file = tmp_path / "f"
    file.write_bytes(b"abc\n" + b"x" * 20 + b"\n\nlast")
    with open(file, "rb") as fh:
        assert list(iter_lines(fh, file, cap=20)) == [(1, b"abc"), (2, b"x" * 20), (3, b""), (4, b"last")]
    with open(file, "rb") as fh, pytest.raises(RowError, match=rf"^{file} line 2: longer than 19 bytes"):
        list(iter_lines(fh, file, cap=19))


def test_an_over_long_line_is_refused_naming_file_and_line(ds, monkeypatch):
    monkeypatch.setenv("AFM_ALIGN_MAX_ROW_BYTES", "4096")
    assert max_row_bytes() == 4096
    file = ds / ROWS_FILE
    with open(file, "a", encoding="utf-8") as fh:
        fh.write('{"id": "' + "x" * 10000 + '"}\n')
    with pytest.raises(RowError, match=rf"^{file} line 4: longer than 4,096 bytes, the row size cap "
                                       r"\(set AFM_ALIGN_MAX_ROW_BYTES to allow longer rows\)$"):
        read_rows(ds)
    monkeypatch.setenv("AFM_ALIGN_MAX_ROW_BYTES", "lots")
    with pytest.raises(UserError, match="AFM_ALIGN_MAX_ROW_BYTES must be a positive number of bytes"):
        read_rows(ds)


def test_a_huge_line_is_refused_without_reading_it_into_memory(tmp_path):
    """A 1 GiB line (a sparse file: no disk used) fails fast, in a fresh process whose peak memory we read."""
    file = tmp_path / "huge.jsonl"
    with open(file, "wb") as fh:
        fh.write(b'{"id": "')
        fh.truncate(1 << 30)  # the rest reads as zero bytes, never a newline
    code = ("import sys, time\n"  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
            "from afm_align.store import read_rows\n"
            "t = time.time()\n"
            "try:\n    read_rows(sys.argv[1], 'prompt')\nexcept ValueError as e:\n    print(e)\n"
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(time.time() - t, hwm)\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code, str(file)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)}).stdout.splitlines()
    assert out[0] == f"{file} line 1: longer than 16,777,216 bytes, the row size cap " \
                     "(set AFM_ALIGN_MAX_ROW_BYTES to allow longer rows)"
    seconds, peak_kib = out[1].split()
    assert int(peak_kib) < 400 * 1024  # the interpreter and the store, plus at most ~2 x 16 MiB of the line


def test_round_trip_of_a_large_dataset_is_checked_and_exact(tmp_path):
    rows = prompt_rows(3000)
    manifest = write_dataset(rows, "prompt", tmp_path / "big", producer="t")
    assert read_rows(tmp_path / "big") == rows
    assert verify_dataset(tmp_path / "big") == read_manifest(tmp_path / "big") == manifest
