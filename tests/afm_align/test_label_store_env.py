"""The label store against its environment: private file modes, a read-only run directory, a full disk.

The read-only checks run the real CLI in a subprocess as another user (uid 65534 via `setpriv`) when the
tests run as root, since root ignores permission bits; as a normal user they chmod and run as themselves.
A full disk is SQLite's own SQLITE_FULL, produced by capping the database size (`PRAGMA max_page_count`)
on every connection the store opens.
"""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from afm_align import cli, label_db
from afm_align.errors import UserError
from afm_align.label_store import LabelStore
from afm_align.schema import GRADE_DIMENSIONS
from afm_align.store import MANIFEST_FILE, write_dataset

REPO = Path(__file__).resolve().parents[2]
G2 = dict.fromkeys(GRADE_DIMENSIONS, 2)
NOBODY = 65534


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _pairs(n, size=10):
    return [{"pair_id": f"p{i}", "prompt": "q", "response_a": "a" * size, "response_b": "b" * size}
            for i in range(n)]


def test_store_and_its_wal_files_are_private(tmp_path):
    path = tmp_path / "labels.sqlite"
    old = os.umask(0o022)
    try:
        store = LabelStore(path)
        assert _mode(path) == 0o600
        holder = sqlite3.connect(path)             # keeps -wal and -shm alive, as a running app does
        holder.execute("SELECT COUNT(*) FROM users").fetchone()
        store.add_user("ann", "ann-password")
        for suffix in ("-wal", "-shm"):
            assert _mode(f"{path}{suffix}") == 0o600, suffix
        holder.close()
        assert os.umask(0o022) == 0o022            # the process umask is left as it was
    finally:
        os.umask(old)


def test_an_existing_world_readable_store_is_made_private(tmp_path):
    path = tmp_path / "labels.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t(x)")
    os.chmod(path, 0o644)
    for suffix in ("-wal", "-shm"):
        os.chmod(f"{path}{suffix}", 0o644)
    LabelStore(path)
    assert {s: _mode(f"{path}{s}") for s in ("", "-wal", "-shm")} == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    con.close()


# ---- a full disk --------------------------------------------------------------------------------
@pytest.fixture
def full_disk(monkeypatch):
    """While on, every connection the store opens can grow its database by at most 2 pages."""
    real = sqlite3.connect
    state = {"on": False}

    def connect(*args, **kwargs):
        con = real(*args, **kwargs)
        if state["on"]:
            pages = con.execute("PRAGMA page_count").fetchone()[0]
            con.execute(f"PRAGMA max_page_count={pages + 2}")
        return con
    monkeypatch.setattr(label_db.sqlite3, "connect", connect)
    return state


def test_full_disk_is_one_line_naming_file_and_cause_and_saves_nothing(tmp_path, full_disk):
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add_user("ann", "ann-password")
    full_disk["on"] = True
    with pytest.raises(UserError) as err:
        store.add_pairs(_pairs(40, size=5000), round=1)
    message = str(err.value)
    assert "database or disk is full" in message and str(store.path) in message and "\n" not in message
    assert "cannot rollback" not in message
    full_disk["on"] = False
    assert store.pairs() == {}                     # the transaction was rolled back as a whole
    assert store.add_pairs(_pairs(2), round=1) == 2   # and the store is usable again


def test_full_disk_through_the_commands_exits_2(tmp_path, full_disk, capsys, monkeypatch, preference_dataset):
    assert cli.main(["labels", "import", "--run", "full", "--data", str(preference_dataset(tmp_path, 40))]) == 0
    capsys.readouterr()
    full_disk["on"] = True
    code = cli.main(["labels", "import", "--run", "full2", "--data", str(preference_dataset(tmp_path, 40, 5000))])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "database or disk is full" in err and "labels.sqlite" in err
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("bob-password\n"))
    code = cli.main(["annotators", "add", "bob", "--run", "full", "--password-stdin"])
    err = capsys.readouterr().err
    if code != 0:                                  # a user row may still fit in 2 pages; if not, one line
        assert code == 2 and err.count("\n") == 1 and "disk is full" in err


@pytest.fixture
def preference_dataset():
    def build(where: Path, n: int, size: int = 10) -> Path:
        rows = [{"id": f"pref{i}", "prompt": [{"role": "user", "content": f"Say {i}."}],
                 "chosen": f"{i}." + "x" * size, "rejected": f"Not {i}.", "level": 2,
                 "grades_chosen": dict.fromkeys(GRADE_DIMENSIONS, 2),
                 "grades_rejected": dict.fromkeys(GRADE_DIMENSIONS, 1), "annotator": "synth",
                 "source": "synthetic", "guideline_version": "synth-v1", "domain": "general"} for i in range(n)]
        out = where / f"prefs-{n}-{size}"
        write_dataset(rows, "preference", out, producer="test")
        return out
    return build


# ---- a read-only run directory ------------------------------------------------------------------
def _as_other_user() -> list[str]:
    """The command prefix that drops root (root ignores permission bits); empty for a normal user."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot check permissions as another user")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import afm_align.cli"], cwd="/", capture_output=True,
                           env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    if probe.returncode != 0:  # e.g. a clone inside a 0700 `mktemp -d` folder: another uid cannot reach it
        pytest.skip(f"the checkout {REPO} or its interpreter is not reachable by uid {NOBODY}, so the CLI cannot run "
                    "as another user here (the in-process read-only test still runs)")
    return prefix


@pytest.fixture
def readonly_run(preference_dataset):
    """A run 'ro' with two annotators, queued pairs and one label, in a run directory chmod 0555.

    `pending=True` keeps a connection open while the label is written, so it sits in the -wal file,
    as with an app still running (or crashed) when the directory became read-only; the files are then
    made read-only too (0444, as on a read-only mount: SQLite could otherwise write into the existing
    -wal, which is not a failure)."""
    root = Path(tempfile.mkdtemp(prefix="afm-ro-"))
    os.chmod(root, 0o755)
    holders = []

    def make(pending: bool):
        runs = root / "runs"
        store = LabelStore(runs / "ro" / "labels.sqlite")
        store.add_user("alice", "alice-password", admin=True)
        store.add_pairs(_pairs(3), round=1, k=1)
        if pending:
            holders.append(sqlite3.connect(store.path))
            holders[-1].execute("SELECT COUNT(*) FROM users").fetchone()
        a = store.next_pair("alice")
        store.submit("alice", a.id, "A", 2, G2, G2)
        (root / "out").mkdir()
        data = preference_dataset(root, 2)
        if os.geteuid() == 0:
            for path in [root, *root.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        if pending:
            for path in (runs / "ro").iterdir():
                os.chmod(path, 0o444)
        os.chmod(runs / "ro", 0o555)
        return root, store, data
    yield make
    for con in holders:
        con.close()
    os.chmod(root / "runs" / "ro", 0o755)
    shutil.rmtree(root, ignore_errors=True)


def _cli(root: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, AFM_ALIGN_RUNS=str(root / "runs"), HOME=str(root), AFM_ALIGN_QUIET="1",
               PYTHONPATH=str(REPO), MPLCONFIGDIR=str(root / "mpl"))
    return subprocess.run([*_as_other_user(), sys.executable, "-m", "afm_align.cli", *argv], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def _one_line(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("pending", [False, True], ids=["clean", "pending-wal"])
def test_read_only_run_directory(readonly_run, pending):
    root, store, data = readonly_run(pending)
    labels = str(store.path)
    before = sorted(os.listdir(store.path.parent))
    proc = _cli(root, "annotators", "list", "--run", "ro")
    assert proc.returncode == 0 and proc.stdout.startswith("alice\tadmin"), proc.stderr
    proc = _cli(root, "labels", "status", "--run", "ro")
    assert proc.returncode == 0 and "labels: 1" in proc.stdout, proc.stderr   # the label in the WAL is seen
    proc = _cli(root, "labels", "export", "--run", "ro", "--out", str(root / "out" / "prefs"))
    assert proc.returncode == 0 and "wrote 1 preference rows" in proc.stdout, proc.stderr
    assert json.loads((root / "out" / "prefs" / MANIFEST_FILE).read_text())["rows"] == 1
    proc = _cli(root, "labels", "export", "--run", "ro")             # the default --out is inside the run
    _one_line(proc, str(store.path.parent))
    assert "Permission denied" in proc.stderr or "read-only" in proc.stderr, proc.stderr
    _one_line(_cli(root, "annotators", "add", "bob", "--run", "ro", "--password-stdin", stdin="bob-password\n"),
              labels, "read-only")
    _one_line(_cli(root, "annotators", "passwd", "alice", "--run", "ro", "--password-stdin",
                   stdin="alice-new-password\n"), labels, "read-only")
    _one_line(_cli(root, "labels", "import", "--run", "ro", "--data", str(data)), labels, "read-only")
    _one_line(_cli(root, "annotate", "--run", "ro", "--port", "1"), labels, "read-only")
    assert sorted(os.listdir(store.path.parent)) == before       # nothing written, not even a -shm
    os.chmod(store.path.parent, 0o755)
    for path in store.path.parent.iterdir():
        os.chmod(path, 0o600)
    assert [u["name"] for u in store.users()] == ["alice"] and len(store.labels()) == 1
    assert store.check_password("alice", "alice-password")


def test_read_only_database_file_in_process(tmp_path):
    """Without another user: SQLite opened read-only (as in a read-only directory) still serves reads."""
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add_user("ann", "ann-password")
    store.db._open_readonly("simulated")
    assert store.readonly and [u["name"] for u in store.users()] == ["ann"]
    with pytest.raises(UserError, match="read-only here"):
        store.add_user("bob", "bob-password")
    with pytest.raises(UserError, match="read-only here"):
        store.set_user("ann", password="ann-new-password")
