"""Run model-written Python in a throw-away, isolated, resource-limited child process; nothing else runs such code.

`run_python(source)` returns a `SandboxResult` (status ok / error / timeout / memory / killed, capped
stdout and stderr, the program's own elapsed seconds, return code) and never raises for anything the
program does. `synth.sandbox_asserts.run_tests(solution, tests)` builds on it: a solution against
assert-statement tests in one sandbox process. `isolation_mode()` names the isolation in use, for run manifests.

Isolation (details in `synth.sandbox_plans`): "bwrap" (bubblewrap) when installed and working, else
"namespaces" (root with util-linux unshare + setpriv), probed once per process. Both give the program a
fresh unprivileged uid (or a user namespace), new PID (with a fresh /proc) and network namespaces, and
private size-capped tmpfs /tmp, /var/tmp and /dev/shm that vanish with the run; bwrap shows it nothing
of the host but read-only /usr and the interpreter. With neither, every run raises `SandboxUnavailable`
(a UserError saying how to get bubblewrap) unless AFM_ALIGN_UNSAFE_SANDBOX=1 opts in to
"unsafe-rlimits-only" (rlimits and a socket-blocking prelude, no isolation).

Every mode: a fresh temporary working directory (also HOME and TMPDIR, deleted afterwards), a stripped
environment, `python -I -S -B -X utf8` (the stdlib only, no site-packages; exit() and quit() are
sys.exit), its own session, and our prelude, which sets the rlimits (CPU = ceil(timeout) + 2 s, FSIZE =
16 MiB, CORE = 0, and the per-run memory cap: `sandbox_plans.memory_cap()`), writes a start marker on a
pipe, then runs main.py as __main__.

Timeout: the wall-clock limit counts the program's own time, from the start marker, so sandbox set-up and
interpreter start-up (~25 ms here, far more on a loaded machine) never count. A sandbox that fails before
the marker, or does not reach it within STARTUP_LIMIT_S, raises SandboxError; one that ends before the marker
with nothing on stderr (and no cgroup OOM) is first tried again, START_RETRIES times. timeout_s must be finite,
in (0, MAX_TIMEOUT_S].

Simplifications and choices:
- Output: each stream keeps its first 60 KiB and last 4 KiB (so a traceback's last line survives) with
  a "[... N bytes truncated ...]" marker; pipes are read incrementally, so the parent never buffers
  more. A program that writes more than 10x the cap (640 KiB) on a stream is killed: status "killed".
- Status: exit 0 -> ok; our wall timeout or SIGXCPU -> timeout; MemoryError as a last stderr line, or
  the run's cgroup OOM-killing it -> memory; other nonzero exit -> error; death by another signal ->
  killed. bwrap and the namespace `sh` report death by signal N as 128+N; that is returned as -N (so a
  program calling sys.exit(137) reads as SIGKILL).
- Source text is written as UTF-8 with lone surrogates backslash-escaped (inside a string literal
  that is the same string; elsewhere a SyntaxError), so any str is accepted.
- Leftovers: the namespace's init is SIGKILLed (taking every process of the run with it), then the
  process group and, with a fresh uid, every process of that uid. Under "unsafe-rlimits-only" a daemon
  that calls setsid() can outlive the run.
Run it: `python -c "from synth.sandbox import run_python; print(run_python('print(1+1)'))"`;
tests: `python -m pytest tests/synth/test_sandbox.py tests/synth/test_sandbox_*.py` (the HumanEval
acceptance test is marked slow); throughput: `python benchmarks/sandbox_throughput.py`.
"""
from __future__ import annotations

import math
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from afm_align.errors import UserError
from synth import sandbox_plans as plans
from synth.sandbox_plans import Plan

OUTPUT_CAP = 64 * 1024
TAIL_BYTES = 4 * 1024
FLOOD_FACTOR = 10
EXIT_GRACE_S = 0.5
STARTUP_LIMIT_S = 15.0
START_RETRIES = 2  # a sandbox that dies silently before the program starts is tried again (execute)
MAX_TIMEOUT_S = 24 * 3600.0
MAX_MEMORY_MB = 1 << 20
_ENV_BASE = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
_SIGNAL_STATUS = {signal.SIGXCPU: "timeout"}
_MEMORY_LINE = re.compile(r"^MemoryError\b", re.MULTILINE)


class SandboxUnavailable(UserError):
    """No isolation is available for model-written code and AFM_ALIGN_UNSAFE_SANDBOX=1 is not set."""


class SandboxError(RuntimeError):
    """The sandbox itself failed (the program never started): not the program's fault."""


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed program did. status is one of ok, error, timeout, memory, killed."""

    ok: bool
    status: str
    stdout: str
    stderr: str
    elapsed_s: float
    returncode: int | None


@dataclass
class Capture:
    """Keeps the head and the tail of a stream, counting what was dropped in between."""

    cap: int
    head: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = max(self.cap - TAIL_BYTES, 0) - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[:-TAIL_BYTES]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        marker = f"\n[... {dropped} bytes truncated ...]\n" if dropped else ""
        return (bytes(self.head).decode("utf-8", "replace") + marker
                + bytes(self.tail).decode("utf-8", "replace"))


# ---- choosing the mode --------------------------------------------------------------------------
_PROBE = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
          "except OSError:\n    print('sandbox-probe-ok')\n")
_NOT_APPLICABLE = {
    "bwrap": lambda: "bwrap as root needs setpriv" if shutil.which("bwrap") else "bwrap is not installed",
    "namespaces": lambda: "namespaces need root, unshare and setpriv",
}
_plan_lock = threading.Lock()
_plan_cache: list[Plan] = []


def _probe() -> Plan:
    """The first mode (sandbox_plans.CANDIDATES order) whose probe runs with no network; else unavailable."""
    reasons = []
    for mode, (applies, build) in plans.CANDIDATES.items():
        if not applies():
            reasons.append(_NOT_APPLICABLE.get(mode, lambda: f"{mode} does not apply")())
            continue
        plan = build()
        try:
            result = execute(plan, _PROBE, 20.0, 256)
        except (OSError, subprocess.SubprocessError, SandboxError) as exc:
            reasons.append(f"{mode} failed: {' '.join(str(exc).split())[:300]}")
            continue
        if result.status == "ok" and "sandbox-probe-ok" in result.stdout:
            return plan
        reasons.append(f"{mode} probe {result.status}: {' '.join(result.stderr.split())[-300:]}")
    return Plan("unavailable", reasons=tuple(reasons))


def _plan() -> Plan:
    """The probed plan, cached for the process (thread-safe: one probe)."""
    with _plan_lock:
        if not _plan_cache:
            _plan_cache.append(_probe())
        return _plan_cache[0]


def active_plan() -> Plan:
    plan = _plan()
    if plan.mode != "unavailable":
        return plan
    if plans.unsafe_allowed():
        return Plan("unsafe-rlimits-only")
    raise SandboxUnavailable(plans.unavailable_message(plan))


def isolation_mode() -> str:
    """The isolation model code gets here: "bwrap", "namespaces", "unsafe-rlimits-only" (opted in with
    AFM_ALIGN_UNSAFE_SANDBOX=1) or "unavailable" (runs will raise SandboxUnavailable). Never raises."""
    plan = _plan()
    if plan.mode == "unavailable" and plans.unsafe_allowed():
        return "unsafe-rlimits-only"
    return plan.mode


# ---- one run ------------------------------------------------------------------------------------
def escape_surrogates(text: str) -> str:
    """Lone surrogates (not encodable as UTF-8) as \\uXXXX escapes: the same string inside a literal."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _prepare(base: str, source: str, uid: int | None) -> tuple[str, str]:
    """base (0711) holds work/ (0711: the child's cwd with main.py, owned by its uid) and stage/ (root only)."""
    work, stage = os.path.join(base, "work"), os.path.join(base, "stage")
    os.chmod(base, 0o711)
    os.mkdir(work, 0o700)
    os.mkdir(stage, 0o700)
    with open(os.path.join(work, "main.py"), "w", encoding="utf-8") as f:
        f.write(escape_surrogates(source))
    os.chmod(work, 0o711)  # bwrap, without DAC override, must be able to chdir into it
    if uid is not None:
        os.chown(work, uid, uid)
        os.chown(os.path.join(work, "main.py"), uid, uid)
    return work, stage


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _uid_pids(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                pids.append(int(name))
        except OSError:
            continue
    return pids


def _kill_leftovers(pid: int, uid: int | None) -> None:
    """SIGKILL the namespace's init (bwrap's pid 1 or unshare's child), the process group and the uid."""
    for child in _children(pid):
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    deadline = time.monotonic() + 5.0
    while uid is not None and time.monotonic() < deadline:
        pids = _uid_pids(uid)
        if not pids:
            return
        for other in pids:
            try:
                os.kill(other, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _pump(proc: subprocess.Popen, streams: dict[int, Capture], marker_fd: int, timeout_s: float,
          spawned: float) -> tuple[str | None, float | None]:
    """Read all pipes until they close; returns (None, "timeout" or "flood", start time or None)."""
    watched = {proc.stdout.fileno(), proc.stderr.fileno()}
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    deadline, exited_at, started = spawned + STARTUP_LIMIT_S, None, None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                return "timeout", started
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE_S:
                return None, started  # a leftover grandchild holds the pipes open; it is killed below
            for key, _ in sel.select(min(deadline - now, 0.05)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                if key.fd == marker_fd and started is None:
                    started, chunk = time.monotonic(), chunk[1:]
                    deadline = started + timeout_s
                streams[key.fd].add(chunk)
                if key.fd in watched and streams[key.fd].total > FLOOD_FACTOR * OUTPUT_CAP:
                    return "flood", started
        return None, started
    finally:
        sel.close()


def _status(reason: str | None, returncode: int, stderr: str, oom: bool) -> str:
    if reason is not None:
        return {"timeout": "timeout", "flood": "killed"}[reason]
    if returncode == 0:
        return "ok"
    if oom:
        return "memory"
    if returncode < 0:
        return _SIGNAL_STATUS.get(-returncode, "killed")
    return "memory" if _MEMORY_LINE.search(stderr[-2048:]) else "error"


def execute(plan: Plan, source: str, timeout_s: float, memory_mb: int,
             stdin: bytes = b"", report: Capture | None = None) -> SandboxResult:
    """Run source under plan; with report, the marker pipe's fd follows stdin's line and feeds report.

    A sandbox that exits before our start marker, with nothing on stderr, failed before the program ran (seen
    once in a round-3 evaluation, after thousands of runs): it is tried again, START_RETRIES times, since the
    program had no effect yet; a failure that says why, or persists, is a SandboxError naming the exit status."""
    tries = 0
    while True:
        tries += 1
        try:
            return _execute_once(plan, source, timeout_s, memory_mb, stdin, report)
        except _SilentStartFailure as failure:
            if tries > START_RETRIES:
                raise SandboxError(f"the {plan.mode} sandbox failed before the program started, {tries} times "
                                   f"(exit status {failure.returncode})") from None


class _SilentStartFailure(Exception):
    """The sandbox process ended before the start marker and wrote nothing to stderr."""

    def __init__(self, returncode: int):
        super().__init__(returncode)
        self.returncode = returncode


def _execute_once(plan: Plan, source: str, timeout_s: float, memory_mb: int, stdin: bytes,
                  report: Capture | None) -> SandboxResult:
    base = tempfile.mkdtemp(prefix="afm-sandbox-")
    marker_r = marker_w = cgroup = None
    try:
        uid = plans.UID_RANGE[0] + secrets.randbelow(plans.UID_RANGE[1] - plans.UID_RANGE[0])
        work, stage = _prepare(base, source, uid if plan.fresh_uid else None)
        marker_r, marker_w = os.pipe()
        parent = plans.cgroup_parent()
        if parent is not None:
            try:
                cgroup = plans.create_cgroup(parent, memory_mb)
            except OSError:
                cgroup = None
        limits = plans.limits(plan, timeout_s, memory_mb, cgroup is not None)
        prelude = plans.prelude(limits, report is not None, plan.mode == "unsafe-rlimits-only")
        argv, extra_env = plans.command(plan, work, stage, uid, ["-c", prelude, str(marker_w)])
        if cgroup is not None:
            argv = plans.enter_cgroup(cgroup, argv)
        env = {**_ENV_BASE, "HOME": work, "TMPDIR": work, **extra_env}
        if report is not None:
            stdin = f"{stdin.decode()} {marker_w}\n".encode()
        spawned = time.monotonic()
        proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, pass_fds=(marker_w,), umask=0o022)
        out, err, marks = Capture(OUTPUT_CAP), Capture(OUTPUT_CAP), report or Capture(0)
        try:
            os.close(marker_w)  # only the child may hold the write end, so EOF means it is gone
            marker_w = None
            _feed(proc, stdin)
            streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err, marker_r: marks}
            reason, started = _pump(proc, streams, marker_r, timeout_s, spawned)
            ended = time.monotonic()
        finally:
            _kill_leftovers(proc.pid, uid if plan.fresh_uid else None)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    finally:
        for fd in (marker_r, marker_w):
            if fd is not None:
                os.close(fd)
        oom = plans.remove_cgroup(cgroup) if cgroup is not None else False
        shutil.rmtree(base, ignore_errors=True)
    if started is None:
        if reason is None and not oom and not err.text().strip():
            raise _SilentStartFailure(proc.returncode)
        why = {"timeout": "did not start within %.0f s" % STARTUP_LIMIT_S, "flood": "flooded its output before "
               "starting"}.get(reason, "ran out of its memory cgroup before starting" if oom else "failed")
        raise SandboxError(f"the {plan.mode} sandbox {why} (exit status {proc.returncode}): "
                           f"{err.text().strip()[-500:]}")
    return _result(plan, reason, proc.returncode, out, err, ended - started, oom)


def _result(plan: Plan, reason: str | None, returncode: int, out: Capture, err: Capture,
            elapsed: float, oom: bool) -> SandboxResult:
    if plan.mode in ("bwrap", "namespaces") and returncode > 128:
        returncode = 128 - returncode  # bwrap and the wrapping sh report death by signal N as 128+N
    stderr = err.text() + ("\n[sandbox: output limit exceeded, program killed]\n" if reason == "flood" else "")
    status = _status(reason, returncode, stderr, oom)
    return SandboxResult(status == "ok", status, out.text(), stderr, round(max(elapsed, 1e-4), 4), returncode)


def _feed(proc: subprocess.Popen, data: bytes) -> None:
    try:
        if data:
            proc.stdin.write(data)  # small (a nonce line): fits in the pipe buffer, cannot block
        proc.stdin.close()
    except OSError:
        pass  # the program exited before reading its stdin


def check_limits(source: str, timeout_s: float, memory_mb: int) -> None:
    if not isinstance(source, str):
        raise UserError(f"source must be a string of Python code, got {type(source).__name__}.")
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s)
            or not 0 < timeout_s <= MAX_TIMEOUT_S):
        raise UserError(f"timeout_s must be a finite number of seconds in (0, {MAX_TIMEOUT_S:.0f}], got {timeout_s!r}.")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not 64 <= memory_mb <= MAX_MEMORY_MB:
        raise UserError(f"memory_mb must be an integer from 64 (the interpreter needs it) to {MAX_MEMORY_MB}, "
                        f"got {memory_mb!r}.")


def run_python(source: str, *, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Run a Python program in the sandbox; never raises for anything the program does.

    Raises UserError for bad arguments, SandboxUnavailable when no isolation is available (see the module
    docstring), SandboxError when the sandbox itself fails."""
    check_limits(source, timeout_s, memory_mb)
    return execute(active_plan(), source, timeout_s, memory_mb)
