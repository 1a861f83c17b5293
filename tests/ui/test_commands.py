"""The `annotators` and `labels` commands, and their one-line errors with exit code 2."""
import io
import socket

import pytest

from afm_align import cli
from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir
from afm_align.store import read_rows, write_dataset


def _run(argv, capsys, stdin: str = "", monkeypatch=None):
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_annotators_add_and_list(capsys, monkeypatch):
    code, out, _ = _run(["annotators", "add", "alice", "--admin", "--run", "r1", "--password-stdin"], capsys,
                        "alice-secret\n", monkeypatch)
    assert code == 0 and "alice\tadmin" in out
    store = LabelStore(RunDir.named("r1").labels)
    assert store.check_password("alice", "alice-secret") and store.user("alice")["admin"]
    code, _, _ = _run(["annotators", "quota", "alice", "--quota", "5", "--run", "r1"], capsys)
    assert code == 0 and store.user("alice")["quota"] == 5


@pytest.mark.parametrize("argv, message", [
    (["annotators", "passwd", "ghost", "--run", "r2", "--password-stdin"], "unknown annotator 'ghost'"),
    (["labels", "export", "--run", "r2"], "run 'r2' has no labels to export"),
    (["labels", "export", "--run", "nowhere"], "has no label store"),
    (["labels", "import", "--run", "r2", "--data", "/no/such/folder"], "no such dataset folder"),
    (["annotators", "add", "bob", "--run", "r2", "--password-stdin"], "already exists"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, monkeypatch):
    LabelStore(RunDir.named("r2").ensure().labels).add_user("bob", "bob-password")
    code, _, err = _run(argv, capsys, "bob-password\n", monkeypatch)
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_annotate_on_a_port_in_use(capsys):
    LabelStore(RunDir.named("r3").ensure().labels).add_user("bob", "bob-password")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _run(["annotate", "--run", "r3", "--port", str(port)], capsys)
    assert code == 2 and err.count("\n") == 1 and f"port {port} on 127.0.0.1 is in use" in err


def test_annotate_without_accounts(capsys):
    code, _, err = _run(["annotate", "--run", "r4", "--port", "1"], capsys)
    assert code == 2 and "no annotators yet" in err


def test_import_then_export_round_trip(tmp_path, capsys, preference_rows, grades):
    write_dataset(preference_rows(4), "preference", tmp_path / "prefs", producer="test")
    code, out, _ = _run(["labels", "import", "--run", "r5", "--data", str(tmp_path / "prefs"), "--round", "3",
                         "--k", "1", "--gold"], capsys)
    assert code == 0 and "queued 4 new pairs" in out
    store = LabelStore(RunDir.named("r5").labels)
    assert {p["gold"] for p in store.pairs(3).values()} == {"a"}
    store.add_user("ann", "ann-password")
    for _ in range(2):
        a = store.next_pair("ann")
        store.submit("ann", a.id, "A", 2, grades(2), grades(1), "", "g1")
    code, out, _ = _run(["labels", "export", "--run", "r5", "--round", "3", "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "wrote 2 preference rows" in out
    rows = read_rows(tmp_path / "out", "preference")
    assert len(rows) == 2 and {r["source"] for r in rows} == {"human"}
    code, out, _ = _run(["labels", "status", "--run", "r5"], capsys)
    assert code == 0 and "labelled pairs: 2" in out
