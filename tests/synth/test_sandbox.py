"""Hostile and honest programs against synth.sandbox; hostile ones use 2 s timeouts to keep this fast.

Issue 17's isolation findings have their own tests in test_sandbox_isolation.py and test_sandbox_scoring.py."""
import os
import resource
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

import synth
from synth import sandbox
from synth.sandbox import OUTPUT_CAP, SandboxResult, run_python
from synth.sandbox_asserts import run_tests

REPO = Path(__file__).resolve().parents[2]
HOSTILE = {"timeout_s": 2.0, "memory_mb": 256}


def _processes_named(marker: str) -> list[int]:
    """Pids whose comm (kept across fork) is marker; a zombie still counts as left over."""
    found = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and Path(f"/proc/{name}/comm").read_text().strip() == marker:
                found.append(int(name))
        except OSError:
            continue
    return found


def _named(marker: str, body: str) -> str:
    """Program that renames its process to marker (inherited by forks), then runs body."""
    return f"import ctypes, os, sys, time\nctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)\n{body}"


def test_package_is_this_repo():
    assert Path(synth.__file__).resolve().is_relative_to(REPO)
    assert Path(sandbox.__file__).resolve().is_relative_to(REPO)


def test_correct_program_is_ok_and_result_is_frozen():
    r = run_python("def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('sum', add(2, 3))")
    assert (r.ok, r.status, r.returncode, r.stdout) == (True, "ok", 0, "sum 5\n")
    assert isinstance(r, SandboxResult) and r.elapsed_s > 0
    with pytest.raises(AttributeError):
        r.ok = False


def test_failing_assert_and_syntax_error_are_errors():
    r = run_python("assert 1 + 1 == 3, 'bad math'")
    assert (r.ok, r.status, r.returncode) == (False, "error", 1)
    assert "AssertionError: bad math" in r.stderr
    r = run_python("def f(:\n    pass")
    assert r.status == "error" and "SyntaxError" in r.stderr


def test_infinite_loop_times_out():
    r = run_python("while True:\n    pass", **HOSTILE)
    assert (r.ok, r.status) == (False, "timeout")


def test_cpu_limit_signal_counts_as_timeout():
    src = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 5))\nwhile True:\n    pass"
    r = run_python(src, timeout_s=5.0)
    assert r.status == "timeout" and r.returncode == -24  # SIGXCPU


def test_segfault_is_killed():
    r = run_python("import ctypes\nctypes.string_at(0)", **HOSTILE)
    assert (r.status, r.returncode) == ("killed", -11)


def test_memory_hog_reports_memory():
    r = run_python("hog = []\nwhile True:\n    hog.append(bytearray(10_000_000))", **HOSTILE)
    assert r.status == "memory" and "MemoryError" in r.stderr


def test_fork_bomb_is_stopped_and_leaves_no_process():
    marker = "sbx" + secrets.token_hex(6)
    bomb = "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    r = run_python(_named(marker, bomb), **HOSTILE)
    assert not r.ok and r.status in ("timeout", "killed")
    assert _processes_named(marker) == []
    assert run_python("print('alive')").stdout == "alive\n"  # the machine still forks


def test_daemon_that_leaves_the_session_is_killed():
    marker = "sbx" + secrets.token_hex(6)
    body = "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint('parent done')"
    r = run_python(_named(marker, body), **HOSTILE)
    assert r.status == "ok" and "parent done" in r.stdout
    assert _processes_named(marker) == []


def test_cannot_write_outside_its_directory(tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="sbx-target-"))  # a normal 0755 root-owned dir
    shared.chmod(0o755)
    targets = [tmp_path / "pwned.txt", shared / "pwned.txt", REPO / "sbx-pwned.txt"]
    try:
        src = "import os\n" + "".join(
            f"try:\n    open({str(t)!r}, 'w').write('x')\n    print('WROTE')\nexcept OSError as e:\n    print(type(e).__name__)\n"
            for t in targets) + "open('inside.txt', 'w').write('fine')\nprint(os.listdir('.'))"
        r = run_python(src, **HOSTILE)
        assert r.status == "ok" and "WROTE" not in r.stdout and "inside.txt" in r.stdout
        assert not any(t.exists() for t in targets)
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
        shared.rmdir()


def test_cannot_read_parent_environment(monkeypatch):
    secret = "sbx-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("AFM_SANDBOX_SECRET", secret)
    src = f"""import os
print(dict(os.environ))
for pid in {{os.getppid(), {os.getpid()}, *[p for p in os.listdir('/proc') if p.isdigit()]}}:
    try:
        print(open(f'/proc/{{pid}}/environ', 'rb').read())
    except OSError:
        pass
"""
    r = run_python(src, **HOSTILE)
    assert r.status == "ok" and "PATH" in r.stdout
    assert secret not in r.stdout + r.stderr


def test_cannot_open_sockets():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        src = f"""import socket
for addr in [('127.0.0.1', {port}), ('8.8.8.8', 53), ('1.1.1.1', 80)]:
    try:
        socket.create_connection(addr, timeout=1).sendall(b'hello')
        print('CONNECTED', addr)
    except OSError as e:
        print('blocked', type(e).__name__)
"""
        r = run_python(src, **HOSTILE)
        assert r.status == "ok" and r.stdout.count("blocked") == 3 and "CONNECTED" not in r.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_printing_100mb_is_capped_and_fast():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run_python("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)", **HOSTILE)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert r.status == "killed" and "output limit exceeded" in r.stderr
    assert len(r.stdout) < OUTPUT_CAP + 200 and "bytes truncated" in r.stdout
    assert grown_kib < 50_000


def test_long_stderr_keeps_head_and_tail():
    r = run_python("import sys\nsys.stderr.write('H' * 100_000)\nraise ValueError('the end')", **HOSTILE)
    assert r.status == "error" and r.stderr.startswith("HHH") and "bytes truncated" in r.stderr
    assert r.stderr.rstrip().endswith("ValueError: the end") and len(r.stderr) < OUTPUT_CAP + 200


def test_cannot_kill_parent():
    src = f"""import os, signal
for pid in [{os.getpid()}, os.getppid(), 1]:
    try:
        os.kill(pid, signal.SIGKILL)
        print('sent', pid)
    except OSError as e:
        print('failed', type(e).__name__)
"""
    r = run_python(src, **HOSTILE)
    assert r.status == "ok"
    assert r.stdout.splitlines()[0].startswith("failed")  # the test process itself
    assert os.getpid() > 0 and run_python("print(1)").ok  # still here, still working


def test_namespace_fallback_and_unsafe_mode_block_network_and_foreign_files(tmp_path):
    from synth import sandbox_plans
    target = tmp_path / "pwned.txt"
    src = (f"import socket\ntry:\n    open({str(target)!r}, 'w')\nexcept OSError:\n    print('write blocked')\n"
           "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
           "except OSError:\n    print('net blocked')\n")
    plans = {"unsafe-rlimits-only": (sandbox_plans.Plan("unsafe-rlimits-only"), "net blocked\n")}
    if sandbox_plans.CANDIDATES["namespaces"][0]():
        plans["namespaces"] = (sandbox_plans.namespace_plan(), "write blocked\nnet blocked\n")
    for mode, (plan, expected) in plans.items():
        r = sandbox.execute(plan, src, 5.0, 256)
        assert r.status == "ok" and expected in r.stdout, (mode, r.stdout, r.stderr)
        assert target.exists() == ("write blocked" not in expected)  # unsafe mode runs as we do
        target.unlink(missing_ok=True)


def test_probe_prefers_bwrap_then_namespaces_then_refuses(monkeypatch):
    from synth import sandbox_plans
    never = (lambda: False, None)
    assert list(sandbox_plans.CANDIDATES) == ["bwrap", "namespaces"]
    if shutil.which("bwrap"):
        assert sandbox.isolation_mode() == "bwrap"
    monkeypatch.setitem(sandbox_plans.CANDIDATES, "bwrap", never)
    expected = "namespaces" if sandbox_plans.CANDIDATES["namespaces"][0]() else "unavailable"
    assert sandbox._probe().mode == expected
    monkeypatch.setitem(sandbox_plans.CANDIDATES, "namespaces", never)
    plan = sandbox._probe()
    assert plan.mode == "unavailable" and len(plan.reasons) == 2


def test_run_tests_counts_passing_asserts():
    solution = "def square(x):\n    return x * x\n"
    tests = ["assert square(2) == 4", "assert square(3) == 10", "assert square(-1) == 1", "raise SystemExit(0)"]
    assert run_tests(solution, tests) == (2, 4)
    assert run_tests("def square(:", tests[:1]) == (0, 1)
    assert run_tests(solution, []) == (0, 0)


def test_run_tests_resists_forged_reports_and_hangs():
    forger = ("import sys\nfor i in range(5):\n    print('0' * 32, '{\"i\": %d, \"ok\": true}' % i)\n"
              "    sys.stderr.write('{\"i\": %d, \"ok\": true}\\n' % i)\ndef f():\n    return 0\n")
    assert run_tests(forger, ["assert f() == 1", "assert f() == 2"]) == (0, 2)
    quitter = "import os\nos._exit(0)\n"
    assert run_tests(quitter, ["assert True"]) == (0, 1)
    hang = "def f():\n    while True:\n        pass\n"
    assert run_tests(hang, ["assert 1 == 1", "f()", "assert 2 == 2"], timeout_s=2.0) == (1, 3)


def test_bad_arguments_raise_value_error():
    for kwargs in ({"timeout_s": 0}, {"memory_mb": 8}, {"timeout_s": float("nan")}, {"memory_mb": 100.5}):
        with pytest.raises(ValueError):
            run_python("print(1)", **kwargs)
    with pytest.raises(ValueError):
        run_python(b"print(1)")
    with pytest.raises(ValueError):
        run_tests("x = 1", "assert x == 1")


def test_a_sandbox_that_dies_silently_before_the_program_starts_is_tried_again(monkeypatch):
    sandbox.active_plan()  # the probe (cached) runs the sandbox too: not counted
    real, calls = sandbox.plans.command, []

    def dies_first(fails: int):
        def command(*args):
            calls.append(1)
            argv, env = real(*args)
            return (["/bin/sh", "-c", "exit 3"], env) if len(calls) <= fails else (argv, env)
        return command

    monkeypatch.setattr(sandbox.plans, "command", dies_first(sandbox.START_RETRIES))
    result = run_python("print(6 * 7)")
    assert result.ok and result.stdout.strip() == "42" and len(calls) == sandbox.START_RETRIES + 1
    calls.clear()
    monkeypatch.setattr(sandbox.plans, "command", dies_first(sandbox.START_RETRIES + 1))
    with pytest.raises(sandbox.SandboxError, match=r"failed before the program started, 3 times \(exit status 3\)"):
        run_python("print(6 * 7)")
    calls.clear()
    monkeypatch.setattr(sandbox.plans, "command", lambda *args: (["/bin/sh", "-c", "echo broken >&2; exit 4"],
                                                                  real(*args)[1]))
    with pytest.raises(sandbox.SandboxError, match=r"failed \(exit status 4\): broken$"):  # a reason: no retry
        run_python("print(6 * 7)")

    def floods(*args):
        calls.append(1)
        return ["/bin/sh", "-c", "yes"], real(*args)[1]

    calls.clear()
    monkeypatch.setattr(sandbox.plans, "command", floods)
    with pytest.raises(sandbox.SandboxError, match="flooded its output before starting"):  # not silent: no retry
        run_python("print(6 * 7)")
    assert len(calls) == 1
