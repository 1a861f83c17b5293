"""The label store: accounts, the assignment policy, append-only history, export, crash safety."""
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from afm_align.label_store import LabelStore
from afm_align.schema import GRADE_DIMENSIONS, validate_rows

REPO = Path(__file__).resolve().parents[2]
G2 = dict.fromkeys(GRADE_DIMENSIONS, 2)
G0 = dict.fromkeys(GRADE_DIMENSIONS, 0)


def _pairs(n, prefix="p"):
    return [{"pair_id": f"{prefix}{i}", "prompt": [{"role": "user", "content": f"q{i}"}],
             "response_a": f"good {i}", "response_b": f"bad {i}", "member_a": "m1", "member_b": "m2",
             "domain": "math"} for i in range(n)]


def _label(store, user, choice_better="a", level=2, ga=G2, gb=G0, **kw):
    """Take the user's next pair and label it so that `choice_better` (pair orientation) wins."""
    a = store.next_pair(user)
    shown = "A" if (choice_better == "a") != a.swapped else "B"
    first, second = (gb, ga) if a.swapped else (ga, gb)
    return a, store.submit(user, a.id, shown, level, first, second, kw.get("why", ""), "v1")


def test_wal_mode_and_hashed_passwords(store, tmp_path):
    con = sqlite3.connect(tmp_path / "labels.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    salts = {row[0] for row in con.execute("SELECT salt FROM users")}
    assert len(salts) == 3
    assert b"ann1-password" not in (tmp_path / "labels.sqlite").read_bytes()
    assert store.check_password("ann1", "ann1-password")
    assert not store.check_password("ann1", "ann2-password")
    assert not store.check_password("nobody", "ann1-password")
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("ann1", "another-password")
    with pytest.raises(ValueError, match="at least 8"):
        store.add_user("ann4", "short")


def test_add_pairs_is_idempotent(store):
    assert store.add_pairs(_pairs(3), round=1) == 3
    assert store.add_pairs(_pairs(4), round=1) == 1
    assert len(store.pairs(1)) == 4
    with pytest.raises(ValueError, match="response_b"):
        store.add_pairs([{"pair_id": "x", "prompt": "q", "response_a": "a"}], round=1)


def test_k_annotators_per_pair_and_never_twice(store):
    store.add_pairs(_pairs(2), round=1, k=2)
    seen = {u: [] for u in ("ann1", "ann2", "ann3")}
    for _ in range(3):
        for user in seen:
            a = store.next_pair(user)
            if a is not None:
                seen[user].append(a.pair_id)
                store.submit(user, a.id, "A", 1, G2, G2)
    for pairs in seen.values():
        assert len(pairs) == len(set(pairs))            # never the same pair twice
    counts = [sum(p in pairs for pairs in seen.values()) for p in ("p0", "p1")]
    assert counts == [2, 2]                              # exactly k annotators each
    assert all(store.next_pair(u) is None for u in seen)


def test_the_open_assignment_comes_back_and_holds_its_slot(store):
    store.add_pairs(_pairs(1), round=1, k=1)
    first = store.next_pair("ann1")
    assert store.next_pair("ann1").id == first.id        # a reload shows the same pair
    assert store.next_pair("ann2") is None               # the only slot is taken


def test_skip_releases_the_slot_but_not_to_the_same_user(store):
    store.add_pairs(_pairs(1), round=1, k=1)
    a = store.next_pair("ann1")
    with pytest.raises(ValueError, match="reason"):
        store.skip("ann1", a.id, "  ")
    store.skip("ann1", a.id, "not my language")
    assert store.next_pair("ann1") is None
    assert store.next_pair("ann2").pair_id == "p0"


def test_two_threads_never_share_the_last_slot(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    users = [f"u{i}" for i in range(6)]
    for user in users:
        store.add_user(user, "password-123")
    store.add_pairs(_pairs(3), round=1, k=1)
    got, barrier = {}, threading.Barrier(len(users))

    def take(user):
        barrier.wait()
        got[user] = store.next_pair(user)
    threads = [threading.Thread(target=take, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [a.pair_id for a in got.values() if a is not None]
    assert sorted(taken) == ["p0", "p1", "p2"]


def test_ab_order_is_recorded_and_unswapped(store):
    store.add_pairs(_pairs(12), round=1, k=1)
    swaps = []
    for _ in range(12):
        a = store.next_pair("ann1")
        swaps.append(a.swapped)
        assert (a.shown_a, a.shown_b) == ((f"bad {a.pair_id[1:]}", f"good {a.pair_id[1:]}") if a.swapped
                                          else (f"good {a.pair_id[1:]}", f"bad {a.pair_id[1:]}"))
        # The annotator picks the screen's A and grades the screen's A high, B low.
        store.submit("ann1", a.id, "A", 3, G2, G0, "", "v7")
    assert any(swaps) and not all(swaps)
    rows = {r["pair_id"]: r for r in store.export_preferences(round=1)}
    for (pair_id, row), swapped in zip(sorted(rows.items(), key=lambda kv: int(kv[0][1:])), swaps):
        assert row["chosen"].startswith("bad" if swapped else "good")
        assert row["grades_chosen"] == G2 and row["grades_rejected"] == G0
        assert (row["source"], row["annotator"], row["level"], row["guideline_version"]) == ("human", "ann1", 3, "v7")


def test_undo_and_edit_keep_history(store):
    store.add_pairs(_pairs(2), round=1, k=1)
    a, first = _label(store, "ann1", "a", level=1)
    b, second = _label(store, "ann1", "a", level=2)
    back = store.undo("ann1")
    assert back.id == b.id and back.prefill["level"] == 2
    assert store.next_pair("ann1").id == b.id            # the undone pair is shown again
    third = store.submit("ann1", b.id, back.prefill["choice"], 3, G2, G2, "changed", "v1")
    edited = store.edit("ann1", first, "B" if not a.swapped else "A", 0, G0, G0, "wrong side", "v1")
    history = store.labels(current_only=False)
    assert [(h["id"], h["version"], h["status"], h["supersedes"]) for h in history] == [
        (first, 1, "active", None), (second, 1, "active", None), (second + 1, 2, "retracted", second),
        (third, 3, "active", second + 1), (edited, 2, "active", first)]
    current = {c["pair_id"]: c for c in store.labels()}
    assert (current[a.pair_id]["better"], current[a.pair_id]["level"]) == ("b", 0)
    assert (current[b.pair_id]["level"], current[b.pair_id]["justification"]) == (3, "changed")
    con = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE labels SET level=0 WHERE id=?", (first,))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM labels")


def test_annotators_cannot_touch_each_others_work(store):
    store.add_pairs(_pairs(2), round=1, k=2)
    a, label = _label(store, "ann1")
    other = store.next_pair("ann2")
    with pytest.raises(ValueError, match="not one of yours"):
        store.submit("ann1", other.id, "A", 1, G2, G2)
    with pytest.raises(ValueError, match="not one of your"):
        store.edit("ann2", label, "A", 1, G2, G2)
    with pytest.raises(ValueError, match="no label of yours"):
        store.undo("ann2")
    assert store.labels(user="ann2") == []
    with pytest.raises(ValueError, match="already done"):
        store.submit("ann1", a.id, "A", 1, G2, G2)


def test_bad_label_values_are_refused(store):
    store.add_pairs(_pairs(1), round=1)
    a = store.next_pair("ann1")
    for kwargs, match in (({"choice": "C"}, "choice"), ({"level": 4}, "level"),
                          ({"grades_a": {"verbosity": 2}}, "four dimensions"),
                          ({"justification": "x" * 5000}, "at most")):
        args = {"choice": "A", "level": 1, "grades_a": G2, "grades_b": G2, "justification": ""} | kwargs
        with pytest.raises(ValueError, match=match):
            store.submit("ann1", a.id, **args)
    assert store.labels() == []


def test_quota_stops_the_queue(store):
    store.set_user("ann1", quota=1)
    store.add_pairs(_pairs(3), round=1, k=1)
    _label(store, "ann1")
    assert store.next_pair("ann1") is None
    assert store.progress("ann1") == {"done": 1, "skipped": 0, "expired": 0, "open": 0, "quota": 1, "remaining": 2}


def test_soft_export_takes_the_majority(store):
    store.add_pairs(_pairs(1), round=2, k=3)
    _label(store, "ann1", "a", level=3, ga=G2, gb=G0)
    _label(store, "ann2", "a", level=1, ga=G2, gb=G2)
    _label(store, "ann3", "b", level=2, ga=G0, gb=G0)
    rows = store.export_preferences(round=2, soft=True)
    assert len(rows) == 1
    row = rows[0]
    assert (row["chosen"], row["rejected"], row["target_prob"]) == ("good 0", "bad 0", pytest.approx(2 / 3))
    assert row["level"] == 1                              # median (low) of the agreeing levels 3 and 1
    assert row["grades_chosen"] == G2 and row["grades_rejected"] == G0
    assert row["annotator"] == "ann1,ann2,ann3"
    validate_rows("preference", rows)
    hard = store.export_preferences(round=2)
    assert sorted(r["chosen"] for r in hard) == ["bad 0", "good 0", "good 0"]
    assert store.export_preferences(round=5) == [] and store.count_labelled(2) == 1


def test_a_crash_loses_nothing_committed(store, tmp_path):
    store.add_pairs(_pairs(1), round=1, k=1)
    code = ("import os, sys; from afm_align.label_store import LabelStore; s = LabelStore(sys.argv[1]); "
            "a = s.next_pair('ann1'); s.submit('ann1', a.id, 'A', 2, {d: 1 for d in %r}, {d: 1 for d in %r}); "
            "os.kill(os.getpid(), 9)") % (GRADE_DIMENSIONS, GRADE_DIMENSIONS)
    proc = subprocess.run([sys.executable, "-c", code, str(store.path)], cwd=REPO, capture_output=True)
    assert proc.returncode == -9
    labels = LabelStore(store.path).labels()
    assert [(label["user"], label["level"]) for label in labels] == [("ann1", 2)]
