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


# ---- issue 20: one line, not a traceback; a failed command creates nothing ---------------------------
@pytest.mark.parametrize("port", ["99999", "0", "-5"])
def test_annotate_on_an_impossible_port_is_one_line(port, capsys):
    LabelStore(RunDir.named("r6").ensure().labels).add_user("bob", "bob-password")
    code, _, err = _run(["annotate", "--run", "r6", "--port", port], capsys)
    assert code == 2 and err.count("\n") == 1 and f"port must be 1-65535 (got {port})" in err


@pytest.mark.parametrize("argv, stdin, message", [
    (["annotators", "add", "--run", "fresh", "--password-stdin"], "bob-password\n", "needs an annotator NAME"),
    (["annotators", "add", "b@d", "--run", "fresh", "--password-stdin"], "bob-password\n", "must be 1-32 letters"),
    (["annotators", "add", "bob", "--run", "fresh", "--password-stdin"], "short\n", "at least 8 characters"),
    (["annotate", "--run", "fresh", "--port", "1"], "", "no annotators yet"),
    (["annotate", "--run", "fresh", "--port", "99999"], "", "port must be 1-65535"),
    (["labels", "import", "--run", "fresh", "--data", "PREFS", "--k", "0"], "", "must be at least 1"),
    (["labels", "import", "--run", "fresh", "--data", "/no/such/folder"], "", "no such dataset folder"),
])
def test_a_failed_command_leaves_no_run_folder(argv, stdin, message, capsys, monkeypatch, tmp_path,
                                               preference_rows):
    write_dataset(preference_rows(2), "preference", tmp_path / "prefs", producer="test")
    argv = [str(tmp_path / "prefs") if a == "PREFS" else a for a in argv]
    code, _, err = _run(argv, capsys, stdin, monkeypatch)
    assert code == 2 and err.count("\n") == 1 and message in err
    run = RunDir.named("fresh")
    assert not run.labels.exists() and not run.root.exists()


def test_export_writes_justifications_and_skip_reasons(tmp_path, capsys, grades):
    store = LabelStore(RunDir.named("r7").ensure().labels, seed=0)
    store.add_user("ann", "ann-password")
    store.add_pairs([{"pair_id": f"p{i}", "prompt": "q", "response_a": "x", "response_b": "y"} for i in range(2)],
                    round=1, k=1)
    a = store.next_pair("ann")
    store.submit("ann", a.id, "A", 2, grades(2), grades(1), "x is right")
    store.skip("ann", store.next_pair("ann").id, "cannot read it")
    code, out, _ = _run(["labels", "export", "--run", "r7", "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "1 preference rows" in out and "2 justifications and skip reasons" in out
    assert read_rows(tmp_path / "out", "preference")[0]["justification"] == "x is right"
    notes = (tmp_path / "out" / "annotations.jsonl").read_text()
    assert '"x is right"' in notes and '"cannot read it"' in notes


def test_annotate_stores_the_settings_it_is_given(monkeypatch):
    from types import SimpleNamespace

    from ui import commands

    LabelStore(RunDir.named("r8").ensure().labels).add_user("bob", "bob-password")
    served = []
    monkeypatch.setattr("ui.annotate_app.serve", lambda rd, **kw: served.append(rd))
    args = SimpleNamespace(run="r8", host="127.0.0.1", port=0, guidelines=None, grades="off", lease_minutes=5)
    with pytest.raises(ValueError, match="port must be"):
        commands.annotate(args)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        args.port = s.getsockname()[1]
    assert commands.annotate(args) == 0 and served
    assert LabelStore(RunDir.named("r8").labels).settings() == {"grades": "off", "lease_minutes": 5.0}
    args.grades = "maybe"
    with pytest.raises(ValueError, match="grades must be one of"):
        commands.annotate(args)


def test_export_replaces_an_earlier_export_only_with_overwrite(tmp_path, capsys, grades):
    store = LabelStore(RunDir.named("r9").ensure().labels, seed=0)
    store.add_user("ann", "ann-password")
    store.add_pairs([{"pair_id": f"p{i}", "prompt": "q", "response_a": "x", "response_b": "y"} for i in range(2)],
                    round=1, k=1)
    out = ["labels", "export", "--run", "r9", "--out", str(tmp_path / "out")]
    for n in (1, 2):
        a = store.next_pair("ann")
        store.submit("ann", a.id, "A", 2, grades(2), grades(1), f"label {n}")
        code, _, err = _run(out, capsys)
        assert (code, err.count("\n")) == ((0, 0) if n == 1 else (2, 1))
    assert len(read_rows(tmp_path / "out", "preference")) == 1
    assert _run(out + ["--overwrite"], capsys)[0] == 0 and len(read_rows(tmp_path / "out", "preference")) == 2
    assert "label 2" in (tmp_path / "out" / "annotations.jsonl").read_text()
