"""The label store's leases, project settings, schema migration and the export of what annotators wrote."""
import json
import sqlite3
from types import SimpleNamespace

import pytest

from afm_align import label_store
from afm_align.errors import UserError
from afm_align.label_export import NOTES_FILE, write_export
from afm_align.label_store import LabelStore, pair_rows
from afm_align.schema import GRADE_DIMENSIONS, validate_rows
from afm_align.store import read_rows

G1 = dict.fromkeys(GRADE_DIMENSIONS, 1)
NONE = dict.fromkeys(GRADE_DIMENSIONS)


def _pairs(n, k=None):
    return [{"pair_id": f"p{i}", "prompt": "q", "response_a": f"a{i}", "response_b": f"b{i}", **({"k": k} if k else {})}
            for i in range(n)]


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(label_store, "time", SimpleNamespace(time=lambda: now[0]))
    return now


def test_settings_default_validate_and_persist(store):
    assert store.settings() == {"grades": "optional", "lease_minutes": 30.0}
    assert store.set_settings(grades="off", lease_minutes=0.5) == {"grades": "off", "lease_minutes": 0.5}
    assert LabelStore(store.path).settings()["grades"] == "off"
    for bad in ({"grades": "sometimes"}, {"lease_minutes": -1}, {"lease_minutes": "30"}, {"lease_minutes": True}):
        with pytest.raises(UserError):
            store.set_settings(**bad)
    assert store.settings() == {"grades": "off", "lease_minutes": 0.5}


def test_an_abandoned_pair_returns_to_the_queue_after_its_lease(store, clock):
    store.set_settings(lease_minutes=30)
    store.add_pairs(_pairs(1), round=1, k=1)
    first = store.next_pair("ann1")
    assert store.next_pair("ann2") is None and store.progress("ann2")["remaining"] == 0
    clock[0] += 29 * 60
    assert store.next_pair("ann1").id == first.id                    # a reload renews the lease
    clock[0] += 29 * 60
    assert store.next_pair("ann2") is None                           # still within the renewed lease
    clock[0] += 2 * 60
    assert store.progress("ann2")["remaining"] == 1
    taken = store.next_pair("ann2")
    assert taken.pair_id == "p0" and store.assignment("ann1", first.id).state == "expired"
    with pytest.raises(UserError, match="already expired"):
        store.submit("ann1", first.id, "A", 1, G1, G1)
    assert store.next_pair("ann1") is None                           # never the same pair twice
    store.submit("ann2", taken.id, "A", 1, G1, G1)
    assert [label["user"] for label in store.labels()] == ["ann2"]


def test_a_stale_lease_nobody_needs_can_still_be_finished(store, clock):
    store.add_pairs(_pairs(1), round=1, k=2)
    a = store.next_pair("ann1")
    clock[0] += 3 * 3600
    store.next_pair("ann2")                                          # a free slot: nothing to reclaim
    assert store.assignment("ann1", a.id).state == "open"
    store.submit("ann1", a.id, "B", 2, G1, G1)
    assert store.next_pair("ann3") is None                           # ann2's open slot and ann1's done one


def test_leases_off_hold_the_slot_for_ever(store, clock):
    store.set_settings(lease_minutes=0)
    store.add_pairs(_pairs(1), round=1, k=1)
    store.next_pair("ann1")
    clock[0] += 30 * 24 * 3600
    assert store.next_pair("ann2") is None


def test_only_the_oldest_stale_slots_are_reclaimed(store, clock):
    store.add_user("ann4", "ann4-password")
    store.add_pairs(_pairs(1), round=1, k=2)
    old = store.next_pair("ann1")
    clock[0] += 20 * 60
    newer = store.next_pair("ann2")
    clock[0] += 20 * 60                                              # ann1 stale, ann2 still within 30 min
    assert store.next_pair("ann3").pair_id == "p0"
    assert store.assignment("ann1", old.id).state == "expired"
    assert store.assignment("ann2", newer.id).state == "open"
    assert store.next_pair("ann4") is None


def _old_store(path):
    """A label store as the afm-align before leases wrote it: one done and one open assignment."""
    con = sqlite3.connect(path)
    con.executescript("""
    CREATE TABLE users(name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL,
      admin INTEGER NOT NULL DEFAULT 0, quota INTEGER, created REAL NOT NULL);
    CREATE TABLE pairs(pair_id TEXT PRIMARY KEY, round INTEGER NOT NULL, prompt TEXT NOT NULL,
      response_a TEXT NOT NULL, response_b TEXT NOT NULL, member_a TEXT, member_b TEXT, domain TEXT,
      gold TEXT, k INTEGER NOT NULL, created REAL NOT NULL);
    CREATE TABLE assignments(id INTEGER PRIMARY KEY AUTOINCREMENT,
      pair_id TEXT NOT NULL REFERENCES pairs(pair_id), user TEXT NOT NULL REFERENCES users(name),
      swapped INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN ('open','done','skipped')),
      skip_reason TEXT, created REAL NOT NULL, shown REAL NOT NULL, UNIQUE(pair_id, user));
    CREATE TABLE labels(id INTEGER PRIMARY KEY AUTOINCREMENT,
      assignment_id INTEGER NOT NULL REFERENCES assignments(id), user TEXT NOT NULL, version INTEGER NOT NULL,
      status TEXT NOT NULL CHECK(status IN ('active','retracted')), better TEXT, level INTEGER,
      grades_a TEXT, grades_b TEXT, justification TEXT, guideline_version TEXT, supersedes INTEGER,
      seconds REAL, created REAL NOT NULL, UNIQUE(assignment_id, version));
    CREATE VIEW current_labels AS SELECT l.*, a.pair_id, a.swapped, p.round FROM labels l
      JOIN assignments a ON a.id = l.assignment_id JOIN pairs p ON p.pair_id = a.pair_id
      WHERE l.version = (SELECT MAX(version) FROM labels WHERE assignment_id = l.assignment_id);
    INSERT INTO users VALUES ('ann', x'00', x'00', 0, NULL, 1.0);
    INSERT INTO pairs VALUES ('p0', 1, '[{"role": "user", "content": "q"}]', 'a', 'b', NULL, NULL, NULL, NULL, 1, 1.0);
    INSERT INTO pairs VALUES ('p1', 1, '[{"role": "user", "content": "q"}]', 'a', 'b', NULL, NULL, NULL, NULL, 1, 1.0);
    INSERT INTO assignments VALUES (1, 'p0', 'ann', 0, 'done', NULL, 1.0, 1.0);
    INSERT INTO assignments VALUES (2, 'p1', 'ann', 0, 'open', NULL, 1.0, 1.0);
    INSERT INTO labels VALUES (1, 1, 'ann', 1, 'active', 'a', 2, '{}', '{}', 'why', 'v1', NULL, 3.0, 2.0);
    """)
    con.close()


def test_a_store_of_the_old_schema_is_migrated_with_its_data(tmp_path):
    path = tmp_path / "labels.sqlite"
    _old_store(path)
    store = LabelStore(path)
    store.add_user("ann2", "ann2-password")
    assert [(label["pair_id"], label["justification"]) for label in store.labels()] == [("p0", "why")]
    assert [a["state"] for a in store.assignments()] == ["done", "open"]
    assert store.next_pair("ann2").pair_id == "p1"                   # the 1970 lease of p1 had run out
    assert [a["state"] for a in store.assignments("ann")] == ["done", "expired"]
    sql = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master WHERE name='assignments'").fetchone()[0]
    assert "'expired'" in sql and "leased" in sql


def test_an_old_store_that_is_read_only_here_still_reads(tmp_path, monkeypatch):
    path = tmp_path / "labels.sqlite"
    _old_store(path)

    def cannot_write(con):
        raise sqlite3.OperationalError("attempt to write a readonly database")
    monkeypatch.setattr(label_store.LabelDB, "_migrate", staticmethod(cannot_write))
    store = LabelStore(path)
    assert store.readonly and "readonly" in store.readonly
    assert store.settings() == {"grades": "optional", "lease_minutes": 30.0}   # no settings table: defaults
    assert store.progress("ann") == {"done": 1, "skipped": 0, "expired": 0, "open": 1, "quota": None,
                                     "remaining": 0}
    assert [row["justification"] for row in store.export_preferences()] == ["why"]
    with pytest.raises(UserError, match="read-only here"):
        store.set_settings(grades="off")


def test_pairs_and_k_are_checked_without_touching_any_file(tmp_path):
    with pytest.raises(UserError, match="at least 1"):
        pair_rows(_pairs(1), 0, k=0)
    with pytest.raises(UserError, match="response_b"):
        pair_rows([{"pair_id": "x", "response_a": "a", "response_b": ""}], 0)
    assert list(tmp_path.iterdir()) == []


def test_export_keeps_justifications_and_skip_reasons(store, tmp_path):
    store.add_pairs(_pairs(3), round=1, k=2)
    for user, why in (("ann1", "A is correct"), ("ann2", "")):
        a = store.next_pair(user)
        store.submit(user, a.id, "A" if not a.swapped else "B", 2, G1, NONE, why)
    skipped = store.next_pair("ann3")
    store.skip("ann3", skipped.id, "not my language")
    hard = {row["annotator"]: row for row in store.export_preferences(round=1)}
    assert hard["ann1"]["justification"] == "A is correct" and hard["ann2"]["justification"] == ""
    assert hard["ann2"]["grades_rejected"] == NONE                  # grades not given stay null
    [soft] = store.export_preferences(round=1, soft=True)
    assert soft["justifications"] == {"ann1": "A is correct"}
    manifest, n = write_export(store, tmp_path / "out", round=1)
    rows = read_rows(tmp_path / "out", "preference")
    validate_rows("preference", rows)
    assert manifest.rows == 2 and {r["justification"] for r in rows} == {"A is correct", ""}
    notes = [json.loads(line) for line in (tmp_path / "out" / NOTES_FILE).read_text().splitlines()]
    assert n == 3 and [(x["kind"], x["annotator"], x["text"]) for x in notes] == [
        ("label", "ann1", "A is correct"), ("label", "ann2", ""), ("skip", "ann3", "not my language")]
