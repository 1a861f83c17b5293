"""The label store: human preference labels in one SQLite file (WAL mode), safe with many annotators.

Tables: `users` (scrypt-hashed passwords with a per-user salt, admin flag, quota), `pairs` (the queue:
prompt, two responses, members, k = how many annotators each pair goes to, optional gold answer),
`assignments` (one per pair and annotator, UNIQUE, with the randomised A/B order) and `labels`
(append-only: a label is never updated in place; undo and edit add a version row that supersedes the
previous one, and SQLite triggers refuse UPDATE and DELETE on the table).

Every write is one `BEGIN IMMEDIATE` transaction on a fresh connection, committed before the call
returns (synchronous=FULL), so a crash of the app loses nothing committed and concurrent writers in
threads or processes are serialised by SQLite itself. `next_pair` is atomic: it counts the open and
done assignments of a pair inside the transaction, so two annotators never take its last open slot.

Labels are stored in the pair's own orientation (`better` is 'a' or 'b' = response_a / response_b);
`submit` and `edit` take the choice and grades as the annotator saw them (A/B on screen) and
un-swap them. `export_preferences` writes rows of the `preference` contract (afm_align.schema).

The file and its `-wal`/`-shm` companions are private (0600): the store is created under umask 077
and an existing one is chmod-ed on open (SQLite gives the companions the database file's mode).
`credential_stamp(name)` changes with every password change; the app ties sessions to it, so a
password change (from any process) revokes that user's sessions.

Where the run directory or the file cannot be written (a read-only mount, another owner, chmod 0555),
the store opens read-only (`mode=ro`, or `immutable=1` when SQLite cannot open the WAL index and no WAL
content is pending): reads (`labels status`, `labels export`, `annotators list`) work, and any write is
refused up front with one line. SQLite failures caused by the environment (read-only, disk full, I/O
error, locked, not a database) become a `UserError` naming the file and the cause, after the
transaction was rolled back: nothing half-written. Other SQLite errors stay bugs (traceback).

Simplifies: an open assignment holds its slot until it is labelled or skipped (no lease expiry);
gold answers are stored per pair. Run: `afm-align labels import|export`, `afm-align annotators add`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import sqlite3
import stat
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError
from afm_align.schema import DOMAINS, GRADE_DIMENSIONS, validate_row

MAX_TEXT = 2000          # justification / skip reason cap, characters
RECENT_LIMIT = 20        # how many of one's own latest labels can be edited
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
_COMPANIONS = ("", "-wal", "-shm", "-journal")
_UMASK_LOCK = threading.Lock()
# SQLite errors that come from the environment (the user's disk, mount or permissions), not from our SQL.
_ENVIRONMENT = re.compile(r"readonly|read-only|disk is full|unable to open|disk i/o|locked|busy|not a database|"
                          r"malformed|out of memory|permission|cannot open", re.I)
_READONLY = re.compile(r"readonly|read-only|unable to open|cannot open|permission|denied", re.I)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0, quota INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pairs(pair_id TEXT PRIMARY KEY, round INTEGER NOT NULL, prompt TEXT NOT NULL,
  response_a TEXT NOT NULL, response_b TEXT NOT NULL, member_a TEXT, member_b TEXT, domain TEXT,
  gold TEXT, k INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS assignments(id INTEGER PRIMARY KEY AUTOINCREMENT,
  pair_id TEXT NOT NULL REFERENCES pairs(pair_id), user TEXT NOT NULL REFERENCES users(name),
  swapped INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','done','skipped')),
  skip_reason TEXT, created REAL NOT NULL, shown REAL NOT NULL, UNIQUE(pair_id, user));
CREATE INDEX IF NOT EXISTS assignments_user ON assignments(user, state);
CREATE TABLE IF NOT EXISTS labels(id INTEGER PRIMARY KEY AUTOINCREMENT,
  assignment_id INTEGER NOT NULL REFERENCES assignments(id), user TEXT NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL CHECK(status IN ('active','retracted')), better TEXT, level INTEGER,
  grades_a TEXT, grades_b TEXT, justification TEXT, guideline_version TEXT, supersedes INTEGER,
  seconds REAL, created REAL NOT NULL, UNIQUE(assignment_id, version));
CREATE TRIGGER IF NOT EXISTS labels_no_update BEFORE UPDATE ON labels
  BEGIN SELECT RAISE(ABORT, 'labels are append-only'); END;
CREATE TRIGGER IF NOT EXISTS labels_no_delete BEFORE DELETE ON labels
  BEGIN SELECT RAISE(ABORT, 'labels are append-only'); END;
CREATE VIEW IF NOT EXISTS current_labels AS
  SELECT l.*, a.pair_id, a.swapped, p.round FROM labels l
  JOIN assignments a ON a.id = l.assignment_id JOIN pairs p ON p.pair_id = a.pair_id
  WHERE l.version = (SELECT MAX(version) FROM labels WHERE assignment_id = l.assignment_id);
"""


@dataclass
class Assignment:
    """One pair shown to one annotator, in the A/B order they see it."""

    id: int
    pair_id: str
    round: int
    prompt: list
    shown_a: str
    shown_b: str
    swapped: bool
    prefill: dict | None = None   # the retracted label's values after an undo (screen orientation)


@contextmanager
def _private_umask():
    """Files created inside are private (umask 077); the process umask is restored on exit."""
    with _UMASK_LOCK:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


def _check_grades(grades, side: str) -> dict:
    if not isinstance(grades, dict) or set(grades) != set(GRADE_DIMENSIONS):
        raise UserError(f"grades of response {side} must give the four dimensions {', '.join(GRADE_DIMENSIONS)}")
    for dim, g in grades.items():
        if g is not None and (isinstance(g, bool) or g not in (0, 1, 2)):
            raise UserError(f"grade '{dim}' of response {side} must be 0, 1, 2 or null (got {g!r})")
    return {d: grades[d] for d in GRADE_DIMENSIONS}


def _check_text(text, what: str) -> str:
    text = text or ""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise UserError(f"the {what} must be text of at most {MAX_TEXT} characters")
    return text


class LabelStore:
    """The SQLite label store of one run (see the module docstring)."""

    def __init__(self, path: str | Path, seed: int | None = None):
        self.path = Path(path)
        self.readonly: str | None = None      # why the store is read-only here, None when writable
        self._uri: str | None = None          # the read-only connection URI
        self._rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))
        try:
            with _private_umask():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._make_private()
                with self._connect() as con:
                    con.execute("PRAGMA journal_mode=WAL")
                    con.executescript(_SCHEMA)
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
                with self._connect() as con:
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
    def _connect(self):
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
    def _tx(self):
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front; committed on exit.

        On any failure (a refused value, a full disk) the transaction is rolled back if SQLite has not
        already done so, and the original error is the one raised."""
        if self.readonly:
            raise UserError(f"cannot write the label store {self.path}: it is read-only here ({self.readonly})")
        with self._connect() as con:
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

    # ---- users ---------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, admin: bool = False, quota: int | None = None) -> None:
        """Create an account; the password is stored as scrypt(password, per-user salt)."""
        if not _NAME.match(name or ""):
            raise UserError(f"annotator name '{name}' must be 1-32 letters, digits, '.', '_' or '-'")
        if not isinstance(password, str) or len(password) < 8:
            raise UserError("a password must have at least 8 characters")
        salt = os.urandom(16)
        with self._tx() as con:
            if con.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise UserError(f"annotator '{name}' already exists")
            con.execute("INSERT INTO users VALUES (?,?,?,?,?,?)",
                        (name, salt, _hash(password, salt), int(admin), quota, time.time()))

    def check_password(self, name: str, password: str) -> bool:
        """True only for an existing user and the right password (constant-time comparison)."""
        with self._connect() as con:
            row = con.execute("SELECT salt, hash FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            _hash(password or "", b"0" * 16)   # same cost either way: no user enumeration by timing
            return False
        return hmac.compare_digest(_hash(password or "", row["salt"]), row["hash"])

    def credential_stamp(self, name: str) -> str | None:
        """A digest that changes with every password change of `name`; None for an unknown user."""
        with self._connect() as con:
            row = con.execute("SELECT salt, hash FROM users WHERE name=?", (name,)).fetchone()
        return None if row is None else hashlib.sha256(bytes(row["salt"]) + bytes(row["hash"])).hexdigest()

    def user(self, name: str) -> dict:
        """{name, admin, quota}; an unknown user is a ValueError."""
        with self._connect() as con:
            row = con.execute("SELECT name, admin, quota FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            raise UserError(f"unknown annotator '{name}'")
        return {"name": row["name"], "admin": bool(row["admin"]), "quota": row["quota"]}

    def users(self) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT name, admin, quota FROM users ORDER BY name").fetchall()
        return [{"name": r["name"], "admin": bool(r["admin"]), "quota": r["quota"]} for r in rows]

    def set_user(self, name: str, *, password: str | None = None, quota: int | None = None,
                 admin: bool | None = None) -> None:
        """Change an existing user's password, quota or role."""
        self.user(name)
        with self._tx() as con:
            if password is not None:
                if len(password) < 8:
                    raise UserError("a password must have at least 8 characters")
                salt = os.urandom(16)
                con.execute("UPDATE users SET salt=?, hash=? WHERE name=?", (salt, _hash(password, salt), name))
            if quota is not None:
                con.execute("UPDATE users SET quota=? WHERE name=?", (quota if quota > 0 else None, name))
            if admin is not None:
                con.execute("UPDATE users SET admin=? WHERE name=?", (int(admin), name))

    # ---- the queue -----------------------------------------------------------------------------
    def add_pairs(self, pairs: list[dict], round: int, k: int = 2) -> int:
        """Queue pairs (idempotent on pair_id); returns how many were new. Each goes to `k` annotators."""
        if k < 1:
            raise UserError(f"k (annotators per pair) must be at least 1 (got {k})")
        rows = []
        for i, p in enumerate(pairs):
            for field in ("pair_id", "response_a", "response_b"):
                if not isinstance(p.get(field), str) or not p[field]:
                    raise UserError(f"pair {i}: field '{field}' must be a non-empty string")
            if p.get("gold") not in (None, "a", "b"):
                raise UserError(f"pair {i}: gold must be 'a', 'b' or null (got {p['gold']!r})")
            prompt = p.get("prompt")
            if isinstance(prompt, str):
                prompt = [{"role": "user", "content": prompt}]
            rows.append((p["pair_id"], int(round), json.dumps(prompt), p["response_a"], p["response_b"],
                         p.get("member_a"), p.get("member_b"), p.get("domain"), p.get("gold"),
                         int(p.get("k") or k), time.time()))
        with self._tx() as con:
            before = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
            con.executemany("INSERT OR IGNORE INTO pairs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            return con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] - before

    def next_pair(self, user: str, round: int | None = None) -> Assignment | None:
        """The user's open assignment, else a new one (atomic); None when nothing is left or quota is met."""
        info = self.user(user)
        with self._tx() as con:
            row = con.execute("SELECT id FROM assignments WHERE user=? AND state='open' "
                              "ORDER BY shown DESC, id DESC LIMIT 1", (user,)).fetchone()
            if row is not None:
                return self._assignment(con, row["id"])
            done = con.execute("SELECT COUNT(*) FROM assignments WHERE user=? AND state='done'",
                               (user,)).fetchone()[0]
            if info["quota"] is not None and done >= info["quota"]:
                return None
            # Pairs with the most filled slots first, so pairs complete (and agreement is measurable).
            pick = con.execute(
                "SELECT p.pair_id, (SELECT COUNT(*) FROM assignments a WHERE a.pair_id=p.pair_id "
                "AND a.state IN ('open','done')) AS taken FROM pairs p "
                "WHERE (? IS NULL OR p.round=?) AND taken < p.k AND NOT EXISTS "
                "(SELECT 1 FROM assignments a WHERE a.pair_id=p.pair_id AND a.user=?) "
                "ORDER BY p.round, taken DESC, p.rowid LIMIT 1", (round, round, user)).fetchone()
            if pick is None:
                return None
            now = time.time()
            cur = con.execute("INSERT INTO assignments(pair_id, user, swapped, state, created, shown) "
                              "VALUES (?,?,?,'open',?,?)", (pick["pair_id"], user, self._rng.random() < 0.5,
                                                            now, now))
            return self._assignment(con, cur.lastrowid)

    def _assignment(self, con, assignment_id: int) -> Assignment:
        r = con.execute("SELECT a.id, a.pair_id, a.swapped, p.round, p.prompt, p.response_a, p.response_b "
                        "FROM assignments a JOIN pairs p ON p.pair_id=a.pair_id WHERE a.id=?",
                        (assignment_id,)).fetchone()
        swapped = bool(r["swapped"])
        shown = (r["response_b"], r["response_a"]) if swapped else (r["response_a"], r["response_b"])
        last = con.execute("SELECT * FROM labels WHERE assignment_id=? AND status='active' "
                           "ORDER BY version DESC LIMIT 1", (assignment_id,)).fetchone()
        return Assignment(r["id"], r["pair_id"], r["round"], json.loads(r["prompt"]), shown[0], shown[1],
                          swapped, _on_screen(dict(last), swapped) if last is not None else None)

    def _own(self, con, user: str, assignment_id: int):
        row = con.execute("SELECT * FROM assignments WHERE id=? AND user=?", (assignment_id, user)).fetchone()
        if row is None:
            raise UserError(f"assignment {assignment_id} is not one of yours")
        return row

    # ---- labelling -----------------------------------------------------------------------------
    def submit(self, user: str, assignment_id: int, choice: str, level: int, grades_a: dict, grades_b: dict,
               justification: str = "", guideline_version: str = "v1") -> int:
        """Label an open assignment (choice/grades as shown on screen); returns the label id."""
        with self._tx() as con:
            a = self._own(con, user, assignment_id)
            if a["state"] != "open":
                raise UserError(f"assignment {assignment_id} is already {a['state']}")
            prev = con.execute("SELECT id, version FROM labels WHERE assignment_id=? ORDER BY version DESC "
                               "LIMIT 1", (assignment_id,)).fetchone()
            label_id = self._insert(con, a, user, choice, level, grades_a, grades_b, justification,
                                    guideline_version, prev)
            con.execute("UPDATE assignments SET state='done' WHERE id=?", (assignment_id,))
            return label_id

    def _insert(self, con, a, user, choice, level, grades_a, grades_b, justification, guideline_version,
                prev) -> int:
        if choice not in ("A", "B"):
            raise UserError(f"choice must be 'A' or 'B' (got {choice!r})")
        if isinstance(level, bool) or level not in (0, 1, 2, 3):
            raise UserError(f"level must be 0, 1, 2 or 3 (got {level!r})")
        ga, gb = _check_grades(grades_a, "A"), _check_grades(grades_b, "B")
        swapped = bool(a["swapped"])
        better = {("A", False): "a", ("B", False): "b", ("A", True): "b", ("B", True): "a"}[(choice, swapped)]
        if swapped:
            ga, gb = gb, ga
        now = time.time()
        cur = con.execute(
            "INSERT INTO labels(assignment_id, user, version, status, better, level, grades_a, grades_b, "
            "justification, guideline_version, supersedes, seconds, created) VALUES (?,?,?,'active',?,?,?,?,?,?,?,?,?)",
            (a["id"], user, (prev["version"] + 1) if prev else 1, better, level, json.dumps(ga), json.dumps(gb),
             _check_text(justification, "justification"), str(guideline_version), prev["id"] if prev else None,
             now - a["shown"], now))
        return cur.lastrowid

    def skip(self, user: str, assignment_id: int, reason: str) -> None:
        """Skip an open assignment with a reason; its slot goes back to the queue (not to this user)."""
        reason = _check_text(reason, "skip reason").strip()
        if not reason:
            raise UserError("a skip needs a reason")
        with self._tx() as con:
            if self._own(con, user, assignment_id)["state"] != "open":
                raise UserError(f"assignment {assignment_id} is not open")
            con.execute("UPDATE assignments SET state='skipped', skip_reason=? WHERE id=?", (reason, assignment_id))

    def undo(self, user: str) -> Assignment:
        """Retract the user's latest current label (a 'retracted' version row) and reopen its pair."""
        with self._tx() as con:
            last = con.execute("SELECT * FROM current_labels WHERE user=? AND status='active' "
                               "ORDER BY created DESC, id DESC LIMIT 1", (user,)).fetchone()
            if last is None:
                raise UserError("there is no label of yours to undo")
            now = time.time()
            con.execute("INSERT INTO labels(assignment_id, user, version, status, supersedes, created) "
                        "VALUES (?,?,?,'retracted',?,?)", (last["assignment_id"], user, last["version"] + 1,
                                                           last["id"], now))
            con.execute("UPDATE assignments SET state='open', shown=? WHERE id=?", (now, last["assignment_id"]))
            return self._assignment(con, last["assignment_id"])

    def edit(self, user: str, label_id: int, choice: str, level: int, grades_a: dict, grades_b: dict,
             justification: str = "", guideline_version: str = "v1") -> int:
        """Replace one of the user's recent current labels by a new version; returns the new label id."""
        with self._tx() as con:
            recent = [r["id"] for r in con.execute(
                "SELECT id FROM current_labels WHERE user=? AND status='active' ORDER BY created DESC, id DESC "
                "LIMIT ?", (user, RECENT_LIMIT))]
            if label_id not in recent:
                raise UserError(f"label {label_id} is not one of your {RECENT_LIMIT} most recent current labels")
            prev = con.execute("SELECT * FROM labels WHERE id=?", (label_id,)).fetchone()
            a = self._own(con, user, prev["assignment_id"])
            return self._insert(con, a, user, choice, level, grades_a, grades_b, justification,
                                guideline_version, prev)

    # ---- reading -------------------------------------------------------------------------------
    def labels(self, round: int | None = None, current_only: bool = True, user: str | None = None) -> list[dict]:
        """Label rows (pair orientation) with pair_id, round, swapped; history included if not current_only."""
        source = "current_labels" if current_only else (
            "(SELECT l.*, a.pair_id, a.swapped, p.round FROM labels l JOIN assignments a ON a.id=l.assignment_id "
            "JOIN pairs p ON p.pair_id=a.pair_id)")
        where = ["(? IS NULL OR round=?)", "(? IS NULL OR user=?)"] + (["status='active'"] if current_only else [])
        with self._connect() as con:
            rows = con.execute(f"SELECT * FROM {source} WHERE {' AND '.join(where)} ORDER BY id",
                               (round, round, user, user)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["swapped"] = bool(d["swapped"])
            for key in ("grades_a", "grades_b"):
                d[key] = json.loads(d[key]) if d[key] else None
            out.append(d)
        return out

    def recent(self, user: str) -> list[dict]:
        """The user's own editable labels, newest first, in screen orientation, with their pair."""
        rows = self.labels(user=user)[::-1][:RECENT_LIMIT]
        return [dict(_on_screen(r, r["swapped"]), id=r["id"], pair_id=r["pair_id"],
                     assignment_id=r["assignment_id"]) for r in rows]

    def assignment(self, user: str, assignment_id: int) -> Assignment:
        with self._connect() as con:
            self._own(con, user, assignment_id)
            return self._assignment(con, assignment_id)

    def pairs(self, round: int | None = None) -> dict[str, dict]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM pairs WHERE (? IS NULL OR round=?)", (round, round)).fetchall()
        return {r["pair_id"]: dict(r, prompt=json.loads(r["prompt"])) for r in rows}

    def assignments(self, user: str | None = None) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM assignments WHERE (? IS NULL OR user=?) ORDER BY id",
                               (user, user)).fetchall()
        return [dict(r) for r in rows]

    def count_labelled(self, round: int | None = None) -> int:
        """How many pairs of the round have at least one current label."""
        return len({r["pair_id"] for r in self.labels(round=round)})

    def progress(self, user: str) -> dict:
        """{done, quota, open, remaining}: the user's labels so far and the pairs still available to them."""
        info = self.user(user)
        with self._connect() as con:
            states = dict(con.execute("SELECT state, COUNT(*) FROM assignments WHERE user=? GROUP BY state",
                                      (user,)).fetchall())
            remaining = con.execute(
                "SELECT COUNT(*) FROM pairs p WHERE (SELECT COUNT(*) FROM assignments a WHERE a.pair_id=p.pair_id "
                "AND a.state IN ('open','done')) < p.k AND NOT EXISTS (SELECT 1 FROM assignments a "
                "WHERE a.pair_id=p.pair_id AND a.user=?)", (user,)).fetchone()[0]
        return {"done": states.get("done", 0), "skipped": states.get("skipped", 0), "open": states.get("open", 0),
                "quota": info["quota"], "remaining": remaining}

    def export_preferences(self, round: int | None = None, soft: bool = False) -> list[dict]:
        """Rows of the `preference` contract; one per label, or one per pair with `target_prob` if soft."""
        rows = _preference_rows(self.labels(round=round), self.pairs(round), soft)
        for i, row in enumerate(rows):
            validate_row("preference", row, f"{self.path} export row {i}")
        return rows


def _on_screen(label: dict, swapped: bool) -> dict:
    """A stored label (pair orientation) as the annotator saw it: choice A/B, grades of shown A/B."""
    ga = json.loads(label["grades_a"]) if isinstance(label["grades_a"], str) else label["grades_a"]
    gb = json.loads(label["grades_b"]) if isinstance(label["grades_b"], str) else label["grades_b"]
    choice = {("a", False): "A", ("b", False): "B", ("a", True): "B", ("b", True): "A"}[(label["better"], swapped)]
    if swapped:
        ga, gb = gb, ga
    return {"choice": choice, "level": label["level"], "grades_a": ga, "grades_b": gb,
            "justification": label["justification"] or "", "guideline_version": label["guideline_version"]}


def _median_low(values: list):
    values = sorted(v for v in values if v is not None)
    return values[(len(values) - 1) // 2] if values else None


def _preference_rows(labels: list[dict], pairs: dict[str, dict], soft: bool) -> list[dict]:
    """Un-swap labels into preference rows; with `soft`, one row per pair whose target_prob is the share
    of its annotators who agree with the majority (ties keep response_a as chosen, at 0.5)."""
    groups: dict[str, list[dict]] = {}
    for label in labels:
        groups.setdefault(label["pair_id"], []).append(label)
    rows = []
    for pair_id, group in groups.items():
        pair = pairs[pair_id]
        units = [group] if soft else [[label] for label in group]
        for unit in units:
            votes_a = sum(label["better"] == "a" for label in unit)
            side = "a" if 2 * votes_a >= len(unit) else "b"
            agree = [label for label in unit if label["better"] == side]
            other = "b" if side == "a" else "a"
            row = {
                "id": f"human-{pair_id}" + ("" if soft else f"-{unit[0]['user']}"),
                "prompt": pair["prompt"], "chosen": pair[f"response_{side}"], "rejected": pair[f"response_{other}"],
                "level": _median_low([label["level"] for label in agree]),
                "grades_chosen": {d: _median_low([label[f"grades_{side}"][d] for label in unit])
                                  for d in GRADE_DIMENSIONS},
                "grades_rejected": {d: _median_low([label[f"grades_{other}"][d] for label in unit])
                                    for d in GRADE_DIMENSIONS},
                "annotator": ",".join(sorted({label["user"] for label in unit})), "source": "human",
                "guideline_version": ",".join(sorted({label["guideline_version"] for label in unit})),
                "pair_id": pair_id, "round": pair["round"], "member_chosen": pair[f"member_{side}"],
                "member_rejected": pair[f"member_{other}"],
            }
            if soft:
                row["target_prob"] = len(agree) / len(unit)
            if pair.get("domain") in DOMAINS:
                row["domain"] = pair["domain"]
            rows.append(row)
    return rows
