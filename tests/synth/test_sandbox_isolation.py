"""Issue 17's sandbox findings 2-6 and 14, as hostile programs with concrete outcomes on the host.

Each test runs under the mode this machine uses (run_python: bwrap where installed); the filesystem,
/proc and socket tests also run under the "namespaces" fallback where it applies (root with unshare).
Module-level imports are only names that existed before the fix, so each test fails on its substance
against the old sandbox rather than at import."""
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from afm_align.errors import UserError
from synth import sandbox
from synth.sandbox import run_python
from synth.sandbox_asserts import run_tests

REPO = Path(__file__).resolve().parents[2]


def _modes() -> list[str]:
    """"default" (run_python) plus "namespaces" where that fallback applies on this machine."""
    modes = ["default"]
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv"):
        modes.append("namespaces")
    return modes


def _run(mode: str, source: str, timeout_s: float = 5.0, memory_mb: int = 256):
    if mode == "default":
        return run_python(source, timeout_s=timeout_s, memory_mb=memory_mb)
    from synth import sandbox_plans
    return sandbox.execute(sandbox_plans.namespace_plan(), source, timeout_s, memory_mb)


# ---- finding 2: no silent unconfined runs ------------------------------------------------------
def test_no_isolation_refuses_unless_opted_in(monkeypatch):
    from synth import sandbox_plans
    for mode in list(sandbox_plans.CANDIDATES):
        monkeypatch.setitem(sandbox_plans.CANDIDATES, mode, (lambda: False, None))
    plan = sandbox._probe()
    assert plan.mode == "unavailable"
    monkeypatch.setattr(sandbox, "_plan", lambda: plan)
    monkeypatch.delenv("AFM_ALIGN_UNSAFE_SANDBOX", raising=False)
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        run_python("print('ran unconfined')")
    message = str(refused.value)
    assert isinstance(refused.value, UserError) and "\n" not in message
    assert "bubblewrap" in message and "AFM_ALIGN_UNSAFE_SANDBOX=1" in message
    with pytest.raises(sandbox.SandboxUnavailable):
        run_tests("x = 1", ["assert x == 1"])
    assert sandbox.isolation_mode() == "unavailable"

    monkeypatch.setenv("AFM_ALIGN_UNSAFE_SANDBOX", "1")
    assert sandbox.isolation_mode() == "unsafe-rlimits-only"
    r = run_python("import socket\ntry:\n    socket.socket()\nexcept PermissionError:\n    print('net blocked')\n")
    assert r.ok and r.stdout == "net blocked\n"
    assert run_tests("x = 1", ["assert x == 1"]) == (1, 1)


def test_isolation_mode_names_the_probed_mode():
    mode = sandbox.isolation_mode()
    assert mode in ("bwrap", "namespaces", "unavailable")
    if shutil.which("bwrap"):
        assert mode == "bwrap"


# ---- finding 3: private /tmp, /dev/shm, /var/tmp -----------------------------------------------
@pytest.mark.parametrize("mode", _modes())
def test_temp_dirs_are_private_capped_and_gone_after_the_run(mode):
    tag = "sbx-" + secrets.token_hex(6)
    dirs = [d for d in ("/tmp", "/dev/shm", "/var/tmp") if os.path.isdir(d)]
    src = f"""import os
for d in {dirs!r}:
    try:
        with open(os.path.join(d, {tag!r}), 'w') as f:
            f.write('x')
        print('wrote', d)
    except OSError as e:
        print('denied', d, e)
total = 0
try:
    for i in range(64):  # 1 MiB files, each under RLIMIT_FSIZE: only the tmpfs size stops this
        with open('/dev/shm/{tag}-%d' % i, 'wb') as f:
            f.write(b'x' * (1 << 20))
        total += 1
except OSError:
    pass
print('shm MiB', total)
"""
    try:
        r = _run(mode, src)
        assert r.ok, r.stderr
        assert r.stdout.count("wrote") == len(dirs)  # writable inside...
        assert not [d for d in dirs if os.path.exists(os.path.join(d, tag))]  # ...and nothing left on the host
        assert not list(Path("/dev/shm").glob(f"{tag}-*"))
        shm_mib = int(r.stdout.split("shm MiB")[1])
        assert shm_mib <= 8  # the tmpfs size cap (sandbox_plans.TMPFS_BYTES)
    finally:
        for d in dirs:
            Path(d, tag).unlink(missing_ok=True)
        for leftover in Path("/dev/shm").glob(f"{tag}-*"):
            leftover.unlink()


# ---- finding 4: memory per run, not per process ------------------------------------------------
_MEMORY_HOG = """import os, time
r, w = os.pipe()
os.set_blocking(r, False)
kids = []
for i in range(10):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        try:
            block = bytearray(40 << 20)
            for j in range(0, len(block), 4096):
                block[j] = 1
            os.write(w, b'%d,' % i)
            time.sleep(2)
        except MemoryError:
            pass
        os._exit(0)
    kids.append((i, pid))
time.sleep(1.0)
try:
    held = {int(x) for x in os.read(r, 1000).decode().split(',') if x}
except BlockingIOError:
    held = set()
alive = {i for i, pid in kids if os.waitpid(pid, os.WNOHANG) == (0, 0)}
print('forked', len(kids), 'holding', len(held & alive))
"""


@pytest.mark.parametrize("memory_mb", [64, 256])
def test_children_cannot_multiply_the_memory_limit(memory_mb):
    r = run_python(_MEMORY_HOG, timeout_s=10.0, memory_mb=memory_mb)
    assert r.ok, r.stderr
    holding = int(r.stdout.split("holding")[1])
    assert holding * 40 <= memory_mb - 16  # the parent interpreter needs some too: at 64 MiB no child holds 40


def test_process_count_cap_keeps_the_sum_under_memory_mb():
    from synth import sandbox_plans
    import resource
    plan = sandbox_plans.Plan("bwrap", fresh_uid=True)
    for memory_mb in (64, 100, 128, 255, 256, 512, 1000, 4096, 100_000):
        limits = {k: soft for k, soft, _ in sandbox_plans.limits(plan, 2.0, memory_mb, cgroup=False)}
        processes, per_process = limits[resource.RLIMIT_NPROC], limits[resource.RLIMIT_AS]
        assert processes * per_process <= memory_mb << 20
        assert per_process >= 64 << 20 and 1 <= processes <= sandbox_plans.NPROC_LIMIT
    with_cgroup = {k: soft for k, soft, _ in sandbox_plans.limits(plan, 2.0, 256, cgroup=True)}
    assert with_cgroup[resource.RLIMIT_AS] == 256 << 20 and with_cgroup[resource.RLIMIT_NPROC] == 64


@pytest.mark.skipif(os.geteuid() != 0, reason="moving a process into a cgroup needs root here")
def test_memory_cgroup_when_the_host_allows_one():
    from synth import sandbox_plans
    if sandbox_plans.memory_cap() != "cgroup":
        pytest.skip("no writable cgroup v2 with the memory controller here: the process-count cap applies")
    r = run_python("hog = bytearray(200 << 20)\nfor j in range(0, len(hog), 4096):\n    hog[j] = 1\n",
                   timeout_s=10.0, memory_mb=128)
    assert r.status == "memory"


# ---- finding 5: a fresh /proc -----------------------------------------------------------------
@pytest.mark.parametrize("mode", _modes())
def test_proc_shows_only_the_sandbox(mode):
    host_init = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0].decode()
    src = f"""import os
pids = [p for p in os.listdir('/proc') if p.isdigit()]
print(len(pids))
print(open('/proc/1/cmdline', 'rb').read().split(b'\\0')[0].decode())
print(os.path.exists('/proc/{os.getpid()}/cmdline') and {os.getpid()} > 20)
"""
    r = _run(mode, src)
    assert r.ok, r.stderr
    count, init, sees_us = r.stdout.splitlines()
    assert int(count) <= 6 and init != host_init and sees_us == "False"
    assert os.path.basename(init) in ("bwrap", "unshare", "sh")


# ---- finding 6: no host unix socket ------------------------------------------------------------
@pytest.mark.parametrize("mode", _modes())
def test_host_unix_sockets_are_unreachable(mode):
    listeners, paths, dirs = [], [], []
    try:
        for parent in ("/tmp", "/var/tmp"):
            d = tempfile.mkdtemp(prefix="sbx-sock-", dir=parent)
            os.chmod(d, 0o755)
            dirs.append(d)
            path = os.path.join(d, "listener.sock")
            server = socket.socket(socket.AF_UNIX)
            server.bind(path)
            os.chmod(path, 0o777)
            listeners.append(server)
            paths.append(path)
        abstract = socket.socket(socket.AF_UNIX)
        abstract.bind("\0sbx-" + secrets.token_hex(6))
        listeners.append(abstract)
        paths.append(abstract.getsockname())
        for server in listeners:
            server.listen()
            server.setblocking(False)
        src = f"""import socket
for path in {paths!r}:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'hello')
        print('CONNECTED', path)
    except OSError as e:
        print('blocked', type(e).__name__)
"""
        r = _run(mode, src)
        assert r.ok and r.stdout.count("blocked") == 3 and "CONNECTED" not in r.stdout, r.stdout + r.stderr
        for server in listeners:
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in listeners:
            server.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def test_bwrap_root_holds_only_what_python_needs():
    if sandbox.isolation_mode() != "bwrap":
        pytest.skip("bwrap is not the mode here")
    src = """import json, os
print(json.dumps([sorted(os.listdir('/')), sorted(os.listdir('/etc')), os.path.exists('/run'),
                  os.path.exists('/home'), os.getuid()]))
"""
    r = run_python(src)
    assert r.ok, r.stderr
    top, etc, has_run, has_home, uid = json.loads(r.stdout)
    assert set(top) <= {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc", "dev", "tmp", "var",
                        *(p.split("/")[1] for p in sandbox.plans.bwrap_plan().binds)}
    assert etc in ([], ["ld.so.cache"]) and not has_run and not has_home and uid != 0


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("bwrap") or not os.path.exists("/usr/bin/python3"),
                    reason="needs root (to become another user), bwrap and a system python3")
def test_bwrap_as_an_ordinary_user():
    """bwrap without root (a user namespace): private /proc, the process-count memory cap per run."""
    fork = ("import os\nn = 0\nfor _ in range(10):\n    try:\n        if os.fork() == 0:\n            os._exit(0)\n"
            "        n += 1\n    except OSError:\n        pass\nprint(n)")
    script = f"""from synth import sandbox
r = sandbox.run_python("import os; print(os.getuid(), len([p for p in os.listdir('/proc') if p.isdigit()]))")
print(sandbox.isolation_mode(), r.stdout.strip(), sandbox.run_python({fork!r}, memory_mb=64).stdout.strip())
"""
    # a copy of the two packages the script imports, readable by uid 65534 (a checkout may sit under a 0700
    # directory, e.g. a clone in a `mktemp -d` folder)
    copy = Path(tempfile.mkdtemp(prefix="afm-sandbox-src-"))
    try:
        for package in ("afm_align", "synth"):
            shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [copy, *copy.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                              "/usr/bin/python3", "-I", "-c", f"import sys; sys.path.insert(0, {str(copy)!r})\n{script}"],
                             capture_output=True, text=True, timeout=60, cwd="/tmp", env={"PATH": "/usr/bin:/bin"})
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["bwrap", "65534", "2", "0"]


# ---- finding 14: odd sources, odd timeouts, start-up time --------------------------------------
def test_lone_surrogates_in_source_are_run_not_raised():
    r = run_python("s = '\ud800'\nprint(len(s), hex(ord(s)))  # and one in a comment: \udcff\n")
    assert (r.status, r.stdout) == ("ok", "1 0xd800\n")
    r = run_python("x = 1 \udcff\n")
    assert r.status == "error" and "SyntaxError" in r.stderr
    assert run_tests("def f():\n    return '\ud800'\n", ["assert f() == '\\ud800'", "assert len(f()) == 1"]) == (2, 2)


@pytest.mark.parametrize("timeout_s", [math.inf, -math.inf, math.nan, 0, -1.0, True, "2", 10 ** 9])
def test_timeout_must_be_finite_and_positive(timeout_s):
    with pytest.raises(UserError, match="timeout_s must be a finite number") as info:
        run_python("print(1)", timeout_s=timeout_s)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError):
        run_tests("x = 1", ["assert x == 1"], timeout_s=timeout_s)


def test_start_up_does_not_count_against_the_timeout(monkeypatch):
    assert run_python("pass").ok  # probe the mode before slowing every start down
    real_popen = subprocess.Popen

    def slow_start(argv, *args, **kwargs):  # a loaded machine: 0.6 s before the sandbox even starts
        return real_popen(["sh", "-c", 'sleep 0.6; exec "$@"', "slow-start", *argv], *args, **kwargs)

    monkeypatch.setattr(sandbox.subprocess, "Popen", slow_start)
    r = run_python("import time\ntime.sleep(0.5)\nprint('done')", timeout_s=1.0)
    assert (r.status, r.stdout) == ("ok", "done\n") and 0.5 <= r.elapsed_s < 1.0
    r = run_python("while True:\n    pass", timeout_s=0.5)
    assert r.status == "timeout" and r.elapsed_s < 1.0
