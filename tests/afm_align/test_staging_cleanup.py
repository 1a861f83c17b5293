"""Issue 17, finding 15: staging folders a killed run left are removed when the run starts again; those of a
running process, and anything not of our own staging pattern, are never touched."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from afm_align.member_io import remove_stale_staging, stale_staging, staged_dir
from afm_align.store import write_dataset

ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def make(path: Path, folder: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"half written")
    else:
        path.write_text("{")
    return path


def test_only_the_dead_processes_staging_is_removed(tmp_path, live_pid):
    run, dead = tmp_path / "run", dead_pid()
    stale = [make(run / f".base.tmp-{dead}-ab12_cd3"), make(run / "round_1" / "members" / f".r1-sft.tmp-{dead}-x9y8z7w6"),
             make(run / "round_1" / f".rm.tmp-{dead}-q1w2e3r4"), make(run / "data" / f".prompt-0a1b.tmp-{dead}-zzzzzzzz"),
             make(run / "round_1" / f".manifest.json.tmp-{dead}-k3k3k3k3", folder=False), make(run / f".data.old-{dead}-0a1b2c3d")]
    kept = [make(run / f".base.tmp-{live_pid}-ab12_cd3"), make(run / f".rm.tmp-{os.getpid()}-mine1234"),  # running
            make(run / ".base.tmp-ab12cd34"),  # an older name without a pid: cannot tell, kept
            make(run / f"base.tmp-{dead}-abcdefgh"),  # not hidden: not ours
            make(run / f".notes.tmp-{dead}-abcdefghi"), make(run / f".notes.tmp-{dead}-ABCDEFGH"),  # not mkdtemp's
            make(run / f".notes.old-{dead}"), make(run / ".notes.old-2024-report"),  # user files that look close
            make(run / f".base.tmp-{dead}"), make(run / "base"), make(run / "round_1" / "manifest.json", folder=False)]
    inner = make(run / f".base.tmp-{dead}-ab12_cd3" / f".x.tmp-{live_pid}-in123456")  # inside a stale folder: goes too

    assert sorted(stale_staging(run)) == sorted(stale)
    removed = remove_stale_staging(run, quiet=True)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in [*stale, inner])
    assert all(p.exists() for p in kept)
    assert remove_stale_staging(run, quiet=True) == []  # nothing else, the second time
    assert remove_stale_staging(tmp_path / "no-such-run", quiet=True) == []


def test_our_writers_name_their_staging_with_their_pid(tmp_path):
    with staged_dir(tmp_path / "member") as stage:
        assert stage.name.startswith(f".member.tmp-{os.getpid()}-") and stage.parent == tmp_path
        assert stale_staging(tmp_path) == []  # ours, and we run
        (stage / "meta.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["member"]


def test_a_sigkilled_writer_leaves_staging_that_the_next_start_removes(tmp_path):
    code = ("import os, signal, sys\n"
            "from pathlib import Path\n"
            "from afm_align.member_io import staged_dir\n"
            "with staged_dir(Path(sys.argv[1]) / 'round_1' / 'rm') as stage:\n"
            "    (stage / 'weights').write_bytes(b'x' * 1000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL
    left = list((tmp_path / "run" / "round_1").iterdir())
    assert len(left) == 1 and left[0].name.startswith(".rm.tmp-")
    assert remove_stale_staging(tmp_path / "run", quiet=True) == left
    assert list((tmp_path / "run" / "round_1").iterdir()) == []


def test_iterate_run_checks_remove_a_killed_runs_staging(tmp_path, capsys):
    from afm_align.rundir import RunDir
    from committee.round_config import IterateConfig
    from committee.run_checks import check_run

    run = RunDir.named(str(tmp_path / "run")).ensure()
    dead = dead_pid()
    stale = [make(run.root / f".base.tmp-{dead}-a1a1a1a1"), make(run.root / "round_0" / "members" / f".sft.tmp-{dead}-b2b2b2b2")]
    check_run(IterateConfig(run=str(run.root)), 1)
    assert not any(p.exists() for p in stale)
    assert "removed 2 staging folder(s) left by a killed run" in capsys.readouterr().out


def test_init_removes_a_killed_runs_staging_before_it_starts(tmp_path):
    from afm_align.init_base import InitConfig, main
    from afm_align.rundir import RunDir

    run = RunDir.named(str(tmp_path / "run")).ensure()
    stale = make(run.root / f".base.tmp-{dead_pid()}-a1b2c3d4")
    local = tmp_path / "no-such-base"  # `--base PATH`: the cleanup runs first, then the path is refused
    with pytest.raises(ValueError, match="no such directory"):
        main(InitConfig(run=str(run.root), base=str(local)))
    assert not stale.exists()


def test_write_dataset_stages_under_its_pid(tmp_path, monkeypatch):
    import tempfile

    made = []
    real = tempfile.mkdtemp

    def spy(*args, **kwargs):
        made.append(kwargs.get("prefix"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    rows = [{"id": "a", "prompt": [{"role": "user", "content": "q"}], "domain": "math", "verifier": "{}",
             "source": "s", "split": "train"}]
    write_dataset(rows, "prompt", tmp_path / "ds", producer="t")
    assert made == [f".ds.tmp-{os.getpid()}-"]


def test_every_temporary_name_our_writers_make_matches_the_cleanup_pattern(tmp_path, monkeypatch):
    import tempfile

    import afm_align.store as store
    from afm_align.member_io import STAGING_NAME

    rows = [{"id": f"a{i}", "prompt": [{"role": "user", "content": "q"}], "domain": "math", "verifier": "{}",
             "source": "s", "split": "train"} for i in range(3)]
    write_dataset(rows[:2], "prompt", tmp_path / "ds", producer="t")
    monkeypatch.setattr(store.shutil, "rmtree", lambda *a, **k: None)  # keep what a kill would have left
    write_dataset(rows, "prompt", tmp_path / "ds", producer="t")  # replaces the folder: `.ds.old-<pid>-*`
    names = [p.name for p in tmp_path.iterdir() if p.name != "ds"]
    names += [Path(tempfile.mkdtemp(prefix=store.staging_prefix("member"), dir=tmp_path)).name,
              Path(tempfile.mkstemp(prefix=store.staging_prefix("manifest.json"), dir=tmp_path)[1]).name]
    assert any(n.startswith(".ds.old-") for n in names)
    for name in names:
        match = STAGING_NAME.match(name)
        assert match and match.group(1) == str(os.getpid()), name
