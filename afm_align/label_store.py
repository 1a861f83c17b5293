"""The label store: human preference labels in one SQLite file (WAL mode), safe with many annotators.

Tables: `users` (accounts, `afm_align/label_accounts.py`), `pairs` (the queue: prompt, two responses,
members, k = how many annotators each pair goes to, optional gold answer), `assignments` (one per pair
and annotator, UNIQUE, with the randomised A/B order and a lease), `labels` (append-only: a label is
never updated in place; undo and edit add a version row that supersedes the previous one, and SQLite
triggers refuse UPDATE and DELETE on the table) and `settings` (project settings of the app).
The file itself (schema, private modes, read-only fallback, transactions) is `afm_align/label_db.py`;
exports are `afm_align/label_export.py`.

Every write is one `BEGIN IMMEDIATE` transaction, committed before the call returns. `next_pair` is
atomic: it counts the open and done assignments of a pair inside the transaction, so two annotators
never take its last open slot.

Leases: an open assignment holds its slot for `lease_minutes` (setting, default 30; 0 = for ever) from
when it was last handed out (`next_pair` renews the lease of the annotator's own open pair). After that
it still belongs to its annotator, who can finish it, until another annotator needs the slot: then it
is 'expired' and the slot goes to the newcomer, so an abandoned pair returns to the queue.

Labels are stored in the pair's own orientation (`better` is 'a' or 'b' = response_a / response_b);
`submit` and `edit` take the choice and grades as the annotator saw them (A/B on screen) and
un-swap them. A grade may be None (not given): the `grades` setting (required | optional | off,
default optional) is the app's to enforce.

Run: `afm-align labels import|export|status`, `afm-align annotators add`.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from afm_align import label_accounts as accounts
from afm_align.errors import UserError
from afm_align.label_db import LabelDB
from afm_align.label_export import on_screen, preference_rows
from afm_align.schema import GRADE_DIMENSIONS, validate_row

MAX_TEXT = 2000          # justification / skip reason cap, characters
RECENT_LIMIT = 20        # how many of one's own latest labels can be edited
GRADE_MODES = ("required", "optional", "off")
# optional: grades feed only the RM's grade heads, which mask a missing grade; the choice and the level
# are what every recipe trains on. So the default asks 3 keys a pair (a/b, level, Enter), not 19.
DEFAULT_SETTINGS = {"grades": "optional", "lease_minutes": 30.0}
# Slots a pair's assignments hold: done ones, and open ones whose lease has not run out (:cutoff).
_TAKEN = ("(SELECT COUNT(*) FROM assignments a WHERE a.pair_id=p.pair_id AND (a.state='done' OR "
          "(a.state='open' AND {leased} >= :cutoff)))")


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
    state: str = "open"


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


def check_settings(grades=None, lease_minutes=None) -> dict:
    """The given settings, checked: grades one of GRADE_MODES, lease_minutes a number >= 0."""
    out = {}
    if grades is not None:
        if grades not in GRADE_MODES:
            raise UserError(f"grades must be one of {', '.join(GRADE_MODES)} (got {grades!r})")
        out["grades"] = grades
    if lease_minutes is not None:
        if isinstance(lease_minutes, bool) or not isinstance(lease_minutes, (int, float)) or not \
                0 <= lease_minutes <= 7 * 24 * 60:
            raise UserError(f"lease_minutes must be a number of minutes from 0 (no expiry) to 10080 "
                            f"(got {lease_minutes!r})")
        out["lease_minutes"] = float(lease_minutes)
    return out


def pair_rows(pairs: list[dict], round: int, k: int = 2) -> list[tuple]:
    """The `pairs` table rows of `pairs`, checked (no file touched: commands check before creating)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
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
    return rows


class LabelStore:
    """The SQLite label store of one run (see the module docstring)."""

    def __init__(self, path: str | Path, seed: int | None = None):
        self.db = LabelDB(path)
        # A writable store is migrated on open; a read-only one of an older afm-align has no `leased`.
        leased = "COALESCE(a.leased, a.shown)" if self.db.has_column("assignments", "leased") else "a.shown"
        self._taken = _TAKEN.format(leased=leased)
        self._rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def readonly(self) -> str | None:
        """Why the store is read-only here; None when it is writable."""
        return self.db.readonly

    # ---- accounts (afm_align/label_accounts.py) ---------------------------------------------------
    def add_user(self, name: str, password: str, admin: bool = False, quota: int | None = None) -> None:
        accounts.add_user(self.db, name, password, admin, quota)

    def check_password(self, name: str, password: str) -> bool:
        return accounts.check_password(self.db, name, password)

    def credential_stamp(self, name: str) -> str | None:
        return accounts.credential_stamp(self.db, name)

    def user(self, name: str) -> dict:
        return accounts.user(self.db, name)

    def users(self) -> list[dict]:
        return accounts.users(self.db)

    def set_user(self, name: str, *, password: str | None = None, quota: int | None = None,
                 admin: bool | None = None) -> None:
        accounts.set_user(self.db, name, password=password, quota=quota, admin=admin)

    # ---- settings ------------------------------------------------------------------------------
    def settings(self) -> dict:
        """{grades, lease_minutes}: the stored project settings over DEFAULT_SETTINGS."""
        try:
            with self.db.connect() as con:
                stored = {r["key"]: json.loads(r["value"]) for r in con.execute("SELECT key, value FROM settings")}
        except sqlite3.OperationalError as err:
            if "no such table" not in str(err):
                raise
            stored = {}         # a store of an older afm-align, opened read-only here
        return {**DEFAULT_SETTINGS, **{k: v for k, v in stored.items() if k in DEFAULT_SETTINGS}}

    def set_settings(self, grades: str | None = None, lease_minutes: float | None = None) -> dict:
        """Store the given settings (None: unchanged); returns all settings."""
        changed = check_settings(grades, lease_minutes)
        with self.db.tx() as con:
            con.executemany("INSERT OR REPLACE INTO settings VALUES (?,?)",
                            [(k, json.dumps(v)) for k, v in changed.items()])
        return self.settings()

    def _cutoff(self, now: float) -> float:
        """Open assignments last leased before this time no longer hold their slot (0.0: leases off)."""
        minutes = self.settings()["lease_minutes"]
        return now - 60.0 * minutes if minutes else 0.0

    # ---- the queue -----------------------------------------------------------------------------
    def add_pairs(self, pairs: list[dict], round: int, k: int = 2) -> int:
        """Queue pairs (idempotent on pair_id); returns how many were new. Each goes to `k` annotators."""
        rows = pair_rows(pairs, round, k)
        with self.db.tx() as con:
            before = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
            con.executemany("INSERT OR IGNORE INTO pairs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            return con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] - before

    def next_pair(self, user: str, round: int | None = None) -> Assignment | None:
        """The user's open assignment (lease renewed), else a new one (atomic); None when nothing is
        left or the quota is met."""
        info = self.user(user)
        now = time.time()
        cutoff = self._cutoff(now)
        with self.db.tx() as con:
            row = con.execute("SELECT id FROM assignments WHERE user=? AND state='open' "
                              "ORDER BY shown DESC, id DESC LIMIT 1", (user,)).fetchone()
            if row is not None:
                con.execute("UPDATE assignments SET leased=? WHERE id=?", (now, row["id"]))
                return self._assignment(con, row["id"])
            done = con.execute("SELECT COUNT(*) FROM assignments WHERE user=? AND state='done'",
                               (user,)).fetchone()[0]
            if info["quota"] is not None and done >= info["quota"]:
                return None
            # Pairs with the most filled slots first, so pairs complete (and agreement is measurable).
            pick = con.execute(
                f"SELECT p.pair_id, p.k, {self._taken} AS taken FROM pairs p "
                "WHERE (:round IS NULL OR p.round=:round) AND taken < p.k AND NOT EXISTS "
                "(SELECT 1 FROM assignments a WHERE a.pair_id=p.pair_id AND a.user=:user) "
                "ORDER BY p.round, taken DESC, p.rowid LIMIT 1",
                {"round": round, "user": user, "cutoff": cutoff}).fetchone()
            if pick is None:
                return None
            self._reclaim(con, pick["pair_id"], pick["k"], cutoff)
            cur = con.execute("INSERT INTO assignments(pair_id, user, swapped, state, created, shown, leased) "
                              "VALUES (?,?,?,'open',?,?,?)", (pick["pair_id"], user, self._rng.random() < 0.5,
                                                              now, now, now))
            return self._assignment(con, cur.lastrowid)

    @staticmethod
    def _reclaim(con, pair_id: str, k: int, cutoff: float) -> None:
        """Expire the oldest stale open assignments of a pair until one slot is free for a newcomer."""
        held = con.execute("SELECT COUNT(*) FROM assignments WHERE pair_id=? AND state IN ('open','done')",
                           (pair_id,)).fetchone()[0]
        excess = held + 1 - k
        if excess > 0:
            con.execute("UPDATE assignments SET state='expired' WHERE id IN (SELECT id FROM assignments "
                        "WHERE pair_id=? AND state='open' AND COALESCE(leased, shown) < ? "
                        "ORDER BY COALESCE(leased, shown) LIMIT ?)", (pair_id, cutoff, excess))

    def _assignment(self, con, assignment_id: int) -> Assignment:
        r = con.execute("SELECT a.id, a.pair_id, a.swapped, a.state, p.round, p.prompt, p.response_a, "
                        "p.response_b FROM assignments a JOIN pairs p ON p.pair_id=a.pair_id WHERE a.id=?",
                        (assignment_id,)).fetchone()
        swapped = bool(r["swapped"])
        shown = (r["response_b"], r["response_a"]) if swapped else (r["response_a"], r["response_b"])
        last = con.execute("SELECT * FROM labels WHERE assignment_id=? AND status='active' "
                           "ORDER BY version DESC LIMIT 1", (assignment_id,)).fetchone()
        return Assignment(r["id"], r["pair_id"], r["round"], json.loads(r["prompt"]), shown[0], shown[1],
                          swapped, on_screen(dict(last), swapped) if last is not None else None, r["state"])

    def _own(self, con, user: str, assignment_id: int):
        row = con.execute("SELECT * FROM assignments WHERE id=? AND user=?", (assignment_id, user)).fetchone()
        if row is None:
            raise UserError(f"assignment {assignment_id} is not one of yours")
        return row

    # ---- labelling -----------------------------------------------------------------------------
    def submit(self, user: str, assignment_id: int, choice: str, level: int, grades_a: dict, grades_b: dict,
               justification: str = "", guideline_version: str = "v1") -> int:
        """Label an open assignment (choice/grades as shown on screen); returns the label id."""
        with self.db.tx() as con:
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
        with self.db.tx() as con:
            state = self._own(con, user, assignment_id)["state"]
            if state != "open":
                raise UserError(f"assignment {assignment_id} is already {state}")
            con.execute("UPDATE assignments SET state='skipped', skip_reason=? WHERE id=?", (reason, assignment_id))

    def undo(self, user: str) -> Assignment:
        """Retract the user's latest current label (a 'retracted' version row) and reopen its pair."""
        with self.db.tx() as con:
            last = con.execute("SELECT * FROM current_labels WHERE user=? AND status='active' "
                               "ORDER BY created DESC, id DESC LIMIT 1", (user,)).fetchone()
            if last is None:
                raise UserError("there is no label of yours to undo")
            now = time.time()
            con.execute("INSERT INTO labels(assignment_id, user, version, status, supersedes, created) "
                        "VALUES (?,?,?,'retracted',?,?)", (last["assignment_id"], user, last["version"] + 1,
                                                           last["id"], now))
            con.execute("UPDATE assignments SET state='open', shown=?, leased=? WHERE id=?",
                        (now, now, last["assignment_id"]))
            return self._assignment(con, last["assignment_id"])

    def edit(self, user: str, label_id: int, choice: str, level: int, grades_a: dict, grades_b: dict,
             justification: str = "", guideline_version: str = "v1") -> int:
        """Replace one of the user's recent current labels by a new version; returns the new label id."""
        with self.db.tx() as con:
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
        with self.db.connect() as con:
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
        return [dict(on_screen(r, r["swapped"]), id=r["id"], pair_id=r["pair_id"],
                     assignment_id=r["assignment_id"]) for r in rows]

    def assignment(self, user: str, assignment_id: int) -> Assignment:
        """One of the user's assignments (any state); someone else's is a UserError."""
        with self.db.connect() as con:
            self._own(con, user, assignment_id)
            return self._assignment(con, assignment_id)

    def pairs(self, round: int | None = None) -> dict[str, dict]:
        with self.db.connect() as con:
            rows = con.execute("SELECT * FROM pairs WHERE (? IS NULL OR round=?)", (round, round)).fetchall()
        return {r["pair_id"]: dict(r, prompt=json.loads(r["prompt"])) for r in rows}

    def assignments(self, user: str | None = None) -> list[dict]:
        with self.db.connect() as con:
            rows = con.execute("SELECT * FROM assignments WHERE (? IS NULL OR user=?) ORDER BY id",
                               (user, user)).fetchall()
        return [dict(r) for r in rows]

    def count_labelled(self, round: int | None = None) -> int:
        """How many pairs of the round have at least one current label."""
        return len({r["pair_id"] for r in self.labels(round=round)})

    def progress(self, user: str) -> dict:
        """{done, skipped, expired, open, quota, remaining}: the user's work so far and the pairs still
        available to them (the same rule as `next_pair`: free slots, leases counted)."""
        info = self.user(user)
        cutoff = self._cutoff(time.time())
        with self.db.connect() as con:
            states = dict(con.execute("SELECT state, COUNT(*) FROM assignments WHERE user=? GROUP BY state",
                                      (user,)).fetchall())
            remaining = con.execute(
                f"SELECT COUNT(*) FROM pairs p WHERE {self._taken} < p.k AND NOT EXISTS (SELECT 1 FROM assignments a "
                "WHERE a.pair_id=p.pair_id AND a.user=:user)", {"user": user, "cutoff": cutoff}).fetchone()[0]
        return {"done": states.get("done", 0), "skipped": states.get("skipped", 0),
                "expired": states.get("expired", 0), "open": states.get("open", 0),
                "quota": info["quota"], "remaining": remaining}

    def export_preferences(self, round: int | None = None, soft: bool = False) -> list[dict]:
        """Rows of the `preference` contract (afm_align/label_export.py); one per label, or one per pair
        with `target_prob` if soft."""
        rows = preference_rows(self.labels(round=round), self.pairs(round), soft)
        for i, row in enumerate(rows):
            validate_row("preference", row, f"{self.path} export row {i}")
        return rows
