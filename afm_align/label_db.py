"""The label store's SQLite file: its schema, private file modes, read-only fallback and transactions.

`LabelDB(path)` owns the file and nothing of what is in it (`afm_align/label_store.py` owns the queue
and the labels, `afm_align/label_accounts.py` the accounts). It gives `connect()` (a fresh connection
per call) and `tx()` (one `BEGIN IMMEDIATE` write transaction, committed on exit, rolled back on any
failure), so a crash of the app loses nothing committed and concurrent writers in threads or processes
are serialised by SQLite itself (WAL mode, synchronous=FULL).

The file and its `-wal`/`-shm` companions are private (0600): the store is created under umask 077
and an existing one is chmod-ed on open (SQLite gives the companions the database file's mode).

Where the run directory or the file cannot be written (a read-only mount, another owner, chmod 0555),
the store opens read-only (`mode=ro`, or `immutable=1` when SQLite cannot open the WAL index and no WAL
content is pending): reads work, and any write is refused up front with one line. SQLite failures
caused by the environment (read-only, disk full, I/O error, locked, not a database) become a
`UserError` naming the file and the cause, after the transaction was rolled back: nothing half-written.
Other SQLite errors stay bugs (traceback).

Schema changes are migrations run once on a writable open (`_migrate`): the first lets an assignment
be 'expired' (its lease ran out and another annotator took the slot), adds `assignments.leased` (when
its lease was last renewed) and the `settings` table.
Run: `python -c "from afm_align.label_db import LabelDB; print(LabelDB('/tmp/l.sqlite').readonly)"`.
"""
from __future__ import annotations

import os
import re
import sqlite3
import stat
import threading
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

from afm_align.errors import UserError

_COMPANIONS = ("", "-wal", "-shm", "-journal")
_UMASK_LOCK = threading.Lock()
# SQLite errors that come from the environment (the user's disk, mount or permissions), not from our SQL.
_ENVIRONMENT = re.compile(r"readonly|read-only|disk is full|unable to open|disk i/o|locked|busy|not a database|"
                          r"malformed|out of memory|permission|cannot open", re.I)
_READONLY = re.compile(r"readonly|read-only|unable to open|cannot open|permission|denied", re.I)
ASSIGNMENTS = """CREATE TABLE IF NOT EXISTS {name}(id INTEGER PRIMARY KEY AUTOINCREMENT,
  pair_id TEXT NOT NULL REFERENCES pairs(pair_id), user TEXT NOT NULL REFERENCES users(name),
  swapped INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','done','skipped','expired')),
  skip_reason TEXT, created REAL NOT NULL, shown REAL NOT NULL, leased REAL, UNIQUE(pair_id, user));"""
INDEX = "CREATE INDEX IF NOT EXISTS assignments_user ON assignments(user, state);"
VIEW = """CREATE VIEW IF NOT EXISTS current_labels AS
  SELECT l.*, a.pair_id, a.swapped, p.round FROM labels l
  JOIN assignments a ON a.id = l.assignment_id JOIN pairs p ON p.pair_id = a.pair_id
  WHERE l.version = (SELECT MAX(version) FROM labels WHERE assignment_id = l.assignment_id);"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0, quota INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pairs(pair_id TEXT PRIMARY KEY, round INTEGER NOT NULL, prompt TEXT NOT NULL,
  response_a TEXT NOT NULL, response_b TEXT NOT NULL, member_a TEXT, member_b TEXT, domain TEXT,
  gold TEXT, k INTEGER NOT NULL, created REAL NOT NULL);
{assignments}
{index}
CREATE TABLE IF NOT EXISTS labels(id INTEGER PRIMARY KEY AUTOINCREMENT,
  assignment_id INTEGER NOT NULL REFERENCES assignments(id), user TEXT NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('active','retracted')), better TEXT, level INTEGER,
  grades_a TEXT, grades_b TEXT, justification TEXT, guideline_version TEXT, supersedes INTEGER,
  seconds REAL, created REAL NOT NULL, UNIQUE(assignment_id, version));
CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS labels_no_update BEFORE UPDATE ON labels
  BEGIN SELECT RAISE(ABORT, 'labels are append-only'); END;
CREATE TRIGGER IF NOT EXISTS labels_no_delete BEFORE DELETE ON labels
  BEGIN SELECT RAISE(ABORT, 'labels are append-only'); END;
{view}
""".format(assignments=ASSIGNMENTS.format(name="assignments"), index=INDEX, view=VIEW)


@contextmanager
def _private_umask():
    """Files created inside are private (umask 077); the process umask is restored on exit."""
    with _UMASK_LOCK:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)


class LabelDB:
    """The SQLite file of one label store (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.readonly: str | None = None      # why the store is read-only here, None when writable
        self._uri: str | None = None          # the read-only connection URI
        try:
            with _private_umask():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._make_private()
                with self.connect() as con:
                    con.execute("PRAGMA journal_mode=WAL")
                    self._migrate(con)
                    con.executescript(SCHEMA)
                    # Can we write? SQLite opens a file it may not write read-only without a word, and
                    # the schema may already be there: try a change and roll it back.
                    version = con.execute("PRAGMA user_version").fetchone()[0]
                    con.execute("BEGIN IMMEDIATE")
                    try:
                        con.execute(f"PRAGMA user_version={int(version)}")
                    finally:
                        if con.in_transaction:
                            con.execute("ROLLBACK")
        except UserError as err:
            cause = str(err.__cause__ or err)
            if not (self.path.is_file() and _READONLY.search(cause)):
                raise
            self._open_readonly(cause)
        except OSError as err:
            if not self.path.is_file():
                raise UserError(f"cannot create the label store {self.path}: {err.strerror or err}") from None
            self._open_readonly(err.strerror or str(err))

    @staticmethod
    def _migrate(con) -> None:
        """Bring a store made by an older afm-align to the current schema (one transaction; data kept)."""
        def needed() -> bool:       # False for a new store (the schema creates it) or one already migrated
            row = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='assignments'").fetchone()
            return row is not None and "'expired'" not in row[0]
        if not needed():
            return
        # The state CHECK gains 'expired' and the table `leased`. SQLite cannot alter a CHECK: rebuild the
        # table (foreign keys off while the referenced table is swapped; the view is dropped and recreated).
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("BEGIN IMMEDIATE")
        try:
            if not needed():        # another process migrated it while we waited for the lock
                con.execute("COMMIT")
                return
            con.execute("DROP VIEW IF EXISTS current_labels")
            con.execute(ASSIGNMENTS.format(name="assignments_v1"))
            con.execute("INSERT INTO assignments_v1(id, pair_id, user, swapped, state, skip_reason, created, shown) "
                        "SELECT id, pair_id, user, swapped, state, skip_reason, created, shown FROM assignments")
            con.execute("DROP TABLE assignments")
            con.execute("ALTER TABLE assignments_v1 RENAME TO assignments")
            con.execute(INDEX)
            con.execute(VIEW)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.execute("PRAGMA foreign_keys=ON")

    def has_column(self, table: str, column: str) -> bool:
        """Whether `table` has `column` (a read-only store of an older afm-align may lack a new one)."""
        with self.connect() as con:
            return any(row["name"] == column for row in con.execute(f"PRAGMA table_info({table})"))

    def _make_private(self) -> None:
        """Create the database file 0600; an existing one and its companions lose group and other access."""
        if not self.path.exists():
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for suffix in _COMPANIONS:
            file = Path(f"{self.path}{suffix}")
            try:
                mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0
                if mode & 0o077:
                    os.chmod(file, mode & 0o700)      # group and others lose access; the owner's bits stay
            except OSError:
                pass        # not ours or a read-only mount: opening read-only below still works

    def _open_readonly(self, why: str) -> None:
        """Fall back to reading only (mode=ro; immutable=1 when the WAL index cannot be opened)."""
        self.readonly = f"{why}; {self.path.parent} or the file is not writable by this user"
        quoted = urllib.parse.quote(str(self.path.absolute()))
        wal = Path(f"{self.path}-wal")
        pending = wal.exists() and wal.stat().st_size > 0
        for self._uri in (f"file:{quoted}?mode=ro", f"file:{quoted}?immutable=1"):
            if pending and self._uri.endswith("immutable=1"):
                break       # WAL content that only a writer can read: immutable would show stale data
            try:
                with self.connect() as con:
                    con.execute("SELECT COUNT(*) FROM users").fetchone()
                return
            except UserError:
                continue
        raise UserError(f"cannot read the label store {self.path}: it is read-only here ({why}) and SQLite "
                        f"cannot open it read-only" + (" (its -wal file holds unsaved changes)" if pending else ""))

    def _error(self, err: Exception) -> UserError:
        """One line naming the file and the cause of an environment failure."""
        text, low = str(err), str(err).lower()
        if "full" in low:
            return UserError(f"cannot write the label store {self.path}: {text}; nothing was saved")
        if "readonly" in low or "read-only" in low:
            return UserError(f"cannot write the label store {self.path}: {text} (the file or {self.path.parent} "
                             f"is read-only); nothing was saved")
        if "unable to open" in low or "cannot open" in low:
            return UserError(f"cannot open the label store {self.path}: {text} (is {self.path.parent} read-only "
                             f"or not accessible?)")
        return UserError(f"label store {self.path}: {text}")

    @contextmanager
    def connect(self):
        """A fresh connection (rows as sqlite3.Row); environment failures become one-line UserErrors."""
        try:
            if self._uri:
                con = sqlite3.connect(self._uri, uri=True, timeout=60, isolation_level=None)
            else:
                con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as err:
            raise self._error(err) from err
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout=60000")
            if not self._uri:
                con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        except sqlite3.Error as err:
            if not isinstance(err, sqlite3.IntegrityError) and _ENVIRONMENT.search(str(err)):
                raise self._error(err) from err
            raise
        finally:
            con.close()

    @contextmanager
    def tx(self):
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front; committed on exit.

        On any failure (a refused value, a full disk) the transaction is rolled back if SQLite has not
        already done so, and the original error is the one raised."""
        if self.readonly:
            raise UserError(f"cannot write the label store {self.path}: it is read-only here ({self.readonly})")
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    try:
                        con.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass        # the first error is the one that explains what happened
                raise
