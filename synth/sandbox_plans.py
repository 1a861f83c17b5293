"""The isolation modes of `synth.sandbox`: probing order, command lines, limits and the per-run memory cap.

Modes, tried in this order (the first whose probe program runs isolated wins; `synth.sandbox` caches it):
1. "bwrap": bubblewrap, when `bwrap` is installed and works. New PID, network, IPC, UTS (and cgroup)
   namespaces, `--die-with-parent`, `--new-session`, a fresh `/proc` and a minimal `/dev`, private tmpfs
   `/tmp`, `/var/tmp` and `/dev/shm` (TMPFS_BYTES each), and a root holding only read-only binds of /usr,
   the /bin, /lib* links, /etc/ld.so.cache and the interpreter's prefix, plus the run's working directory
   (read-write). No /run, /home, /etc (beyond ld.so.cache), no site-packages, so no host unix socket is
   reachable. As root, bwrap keeps only CAP_SETUID/SETGID/SETPCAP and `setpriv` drops to a fresh uid
   (2,000,000..2,999,999, no capabilities, no-new-privs); as another user, bwrap makes a user namespace
   (our uid outside).
2. "namespaces" (root, util-linux `unshare` and `setpriv`, no bwrap): new mount, PID (fresh /proc via
   `--mount-proc`) and network namespaces; an `sh` script covers /tmp, /var/tmp, /dev/shm (TMPFS_BYTES)
   and /run (empty) with tmpfs, re-binds the working directory, and hides directories a fresh uid cannot
   traverse (e.g. /root) except the interpreter prefix; then `setpriv` drops to a fresh uid. The rest of
   the host filesystem stays visible, read-only to that uid where its permissions say so (so a
   world-writable unix socket outside those directories is reachable in this mode, not under bwrap).
3. none: `synth.sandbox` refuses with `SandboxUnavailable`, unless AFM_ALIGN_UNSAFE_SANDBOX=1 selects
   "unsafe-rlimits-only": the program runs as we do, with rlimits and a socket-blocking prelude only.

Limits (`limits()`) are set by `prelude()`, our code that the child runs after the sandbox's set-up and
interpreter start-up and before any of the program's; it also writes the start marker the timeout
counts from.

Memory per run (`memory_cap()`): "cgroup" when a cgroup v2 directory with the memory controller enabled
for its children can be written (AFM_ALIGN_SANDBOX_CGROUP names one, e.g. a systemd scope with
Delegate=yes; else our own cgroup when it is the root of the hierarchy): each run gets a child cgroup with
memory.max = memory_mb, memory.swap.max = 0 and pids.max = NPROC_LIMIT, which an `sh` enters before it
execs the sandbox, killed and removed afterwards; each process keeps RLIMIT_AS = memory_mb. Else
"process-count": a run may have P = clamp(memory_mb // PROCESS_SHARE_MB, 1, NPROC_LIMIT) processes
(threads count too: RLIMIT_NPROC, per run because the uid or, from Linux 5.14, the user namespace is
fresh), each with RLIMIT_AS = memory_mb // P, so their sum stays within memory_mb (plus at most
3 x TMPFS_BYTES of files in the private tmpfs mounts). So at memory_mb < 256 the program cannot fork or
start a thread. Under "unsafe-rlimits-only" RLIMIT_NPROC would count all our own processes, so it is not
set and memory_mb caps each process only.

The dev machine (Debian 12, root, kernel 6.18, bubblewrap 0.8.0): "bwrap"; cgroup v2 has no memory
controller there (v1 owns it), so the memory cap is "process-count".
"""
from __future__ import annotations

import functools
import math
import os
import resource
import secrets
import shutil
import stat
import sys
import time
from dataclasses import dataclass

UNSAFE_ENV = "AFM_ALIGN_UNSAFE_SANDBOX"
CGROUP_ENV = "AFM_ALIGN_SANDBOX_CGROUP"
FILE_SIZE_LIMIT = 16 * 1024 * 1024
TMPFS_BYTES = 8 * 1024 * 1024
NPROC_LIMIT = 64
PROCESS_SHARE_MB = 128
UID_RANGE = (2_000_000, 3_000_000)
PYTHON_FLAGS = ["-I", "-S", "-B", "-X", "utf8"]  # isolated, no site-packages: the stdlib only
_PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
_SETPRIV = ["setpriv", "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]


@dataclass(frozen=True)
class Plan:
    """How a run is isolated (see the module docstring)."""

    mode: str                      # bwrap, namespaces, unsafe-rlimits-only or unavailable
    fresh_uid: bool = False        # the program runs as a fresh unprivileged uid (we are root)
    binds: tuple[str, ...] = ()    # bwrap: read-only binds; namespaces: prefixes re-exposed in hidden dirs
    hide: tuple[str, ...] = ()     # namespaces: directories covered by an empty tmpfs
    reasons: tuple[str, ...] = ()  # unavailable: why each mode was not used

    @property
    def nproc_extra(self) -> int:
        """Tasks of the program's uid that are not the program: bwrap's init in a user namespace."""
        return 1 if self.mode == "bwrap" and not self.fresh_uid else 0


def interpreter() -> str:
    return os.path.realpath(sys.executable)


def _prefixes() -> list[str]:
    """The interpreter's directories, outermost first, without ones nested in others or in /usr."""
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    exe_dir = os.path.dirname(interpreter())
    if not any(exe_dir.startswith(p + os.sep) for p in paths):
        paths |= {exe_dir, os.path.realpath(sys.prefix)}  # a copied venv interpreter needs its pyvenv.cfg
    kept: list[str] = []
    for path in sorted(paths):
        if path != "/usr" and not path.startswith("/usr/") and not any(path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return kept


def _unreachable_ancestor(path: str) -> str | None:
    """Topmost ancestor of path that other users cannot traverse (e.g. /root, mode 0700), or None."""
    parts = os.path.realpath(path).split(os.sep)[1:]
    for i in range(1, len(parts)):
        ancestor = os.sep + os.path.join(*parts[:i])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def bwrap_plan() -> Plan:
    return Plan("bwrap", fresh_uid=os.geteuid() == 0, binds=tuple(_prefixes()))


def namespace_plan() -> Plan:
    hide, expose = set(), []
    for prefix in _prefixes():
        ancestor = _unreachable_ancestor(prefix)
        if ancestor is not None:
            hide.add(ancestor)
            expose.append(prefix)
    if os.path.isdir("/run") and not os.path.islink("/run"):
        hide.add("/run")  # system sockets (dbus, docker, ...) live there
    return Plan("namespaces", fresh_uid=True, binds=tuple(expose), hide=tuple(sorted(hide)))


CANDIDATES = {  # mode -> (applies?, plan builder); probed in this order
    "bwrap": (lambda: bool(shutil.which("bwrap")) and (os.geteuid() != 0 or bool(shutil.which("setpriv"))),
              bwrap_plan),
    "namespaces": (lambda: os.geteuid() == 0 and bool(shutil.which("unshare") and shutil.which("setpriv")),
                   namespace_plan),
}


def unsafe_allowed() -> bool:
    return os.environ.get(UNSAFE_ENV, "").strip() == "1"


def unavailable_message(plan: Plan) -> str:
    why = "; ".join(plan.reasons) or "neither bwrap nor (as root) unshare+setpriv is installed"
    return (f"no sandbox is available for model-written code ({why}): install bubblewrap "
            "(`apt-get install bubblewrap`, `dnf install bubblewrap` or `pacman -S bubblewrap`), or set "
            f"{UNSAFE_ENV}=1 to run it with resource limits only (no isolation: it can read and write your "
            "files and reach the network).")


# ---- command lines ------------------------------------------------------------------------------
_NS_SCRIPT = """\
set -eu
umask 022
IFS='
'
i=0
for e in $SBX_EXPOSE; do mkdir "$SBX_STAGE/$i"; mount --bind "$e" "$SBX_STAGE/$i"; i=$((i+1)); done
for h in $SBX_HIDE; do mount -t tmpfs -o mode=755,size=64k sandbox "$h"; done
i=0
for e in $SBX_EXPOSE; do mkdir -p "$e"; mount --move "$SBX_STAGE/$i" "$e"; i=$((i+1)); done
cd "$SBX_WORK"
for t in $SBX_TMPFS; do mount -t tmpfs -o "mode=1777,size=$SBX_TMPFS_BYTES,nosuid,nodev" sandbox "$t"; done
mkdir -p "$SBX_WORK"
mount --no-canonicalize --bind . "$SBX_WORK"
cd "$SBX_WORK"
unset SBX_EXPOSE SBX_HIDE SBX_STAGE SBX_WORK SBX_TMPFS SBX_TMPFS_BYTES IFS
set +e
"$@"
exit $?
"""


def _real_dirs(paths) -> list[str]:
    return [p for p in paths if os.path.isdir(p) and not os.path.islink(p)]


def _bwrap_argv(plan: Plan, work: str, uid: int) -> list[str]:
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session"]
    if plan.fresh_uid:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        argv += ["--unshare-user"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            argv += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            argv += ["--ro-bind", name, name]
    made = {"/usr"}

    def parents(path: str) -> list[str]:  # bwrap would create missing parents with mode 0700 here
        out, parts = [], path.split(os.sep)[1:-1]
        for i in range(1, len(parts) + 1):
            ancestor = os.sep + os.path.join(*parts[:i])
            if ancestor not in made:
                made.add(ancestor)
                out += ["--perms", "0755", "--dir", ancestor]
        return out

    argv += ["--proc", "/proc", "--dev", "/dev"]
    made |= {"/proc", "/dev"}
    for path in _PRIVATE_TMP:  # before the binds, which may lie below them (the working directory does)
        argv += parents(path) + ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", path]
        made.add(path)
    argv += parents("/etc/ld.so.cache") + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for path in plan.binds:
        argv += parents(path) + ["--ro-bind", path, path]
    argv += parents(work) + ["--bind", work, work, "--chdir", work, "--"]
    if plan.fresh_uid:
        argv += [*_SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--"]
    return argv


def command(plan: Plan, work: str, stage: str, uid: int, python_args: list[str]) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment that run `interpreter() *PYTHON_FLAGS *python_args` under plan, in work."""
    python = [interpreter(), *PYTHON_FLAGS, *python_args]
    if plan.mode == "bwrap":
        return _bwrap_argv(plan, work, uid) + python, {}
    if plan.mode == "namespaces":
        argv = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--",
                "sh", "-c", _NS_SCRIPT, "sandbox", *_SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--", *python]
        env = {"SBX_EXPOSE": "\n".join(plan.binds), "SBX_HIDE": "\n".join(plan.hide), "SBX_STAGE": stage,
               "SBX_WORK": work, "SBX_TMPFS": "\n".join(_real_dirs(_PRIVATE_TMP)),
               "SBX_TMPFS_BYTES": str(TMPFS_BYTES)}
        return argv, env
    if plan.mode == "unsafe-rlimits-only":
        return python, {}
    raise RuntimeError(f"cannot run programs under sandbox mode {plan.mode!r}")


# ---- limits and the per-run memory cap ----------------------------------------------------------
def limits(plan: Plan, timeout_s: float, memory_mb: int, cgroup: bool) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) the program's prelude sets before it runs any of the program's code."""
    cpu = math.ceil(timeout_s) + 2
    out = [(resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT, FILE_SIZE_LIMIT),
           (resource.RLIMIT_CORE, 0, 0)]
    if plan.mode == "unsafe-rlimits-only":
        return out + [(resource.RLIMIT_AS, memory_mb << 20, memory_mb << 20)]
    if cgroup:  # the cgroup caps the sum; each process may use all of it
        processes, per_process = NPROC_LIMIT, memory_mb << 20
    else:
        processes = max(1, min(NPROC_LIMIT, memory_mb // PROCESS_SHARE_MB))
        per_process = (memory_mb // processes) << 20
    nproc = processes + plan.nproc_extra
    return out + [(resource.RLIMIT_AS, per_process, per_process), (resource.RLIMIT_NPROC, nproc, nproc)]


def prelude(limits: list[tuple[int, int, int]], keep_fd: bool, block_net: bool) -> str:
    """Our code that runs first in the child: rlimits, the start marker, then main.py as __main__.

    main.py runs in the real __main__ namespace (only __file__ added), without runpy: it imports ~17 ms
    of modules (pkgutil, typing)."""
    lines = ["def _sandbox_start():",
             "    import os, resource, sys",
             "    globals().pop('_sandbox_start')",
             "    fd = int(sys.argv[1])",
             f"    for k, soft, hard in {limits!r}:",
             "        cur = resource.getrlimit(k)[1]",
             "        hard = hard if cur == resource.RLIM_INFINITY else min(hard, cur)",
             "        resource.setrlimit(k, (min(soft, hard), hard))",
             "    os.write(fd, b'S')"]
    if not keep_fd:
        lines.append("    os.close(fd)")
    if block_net:  # NOT a security boundary (ctypes or _socket internals get around it)
        lines += ["    import socket, _socket",
                  "    def no_net(*args, **kwargs):",
                  "        raise PermissionError('network access is disabled in the sandbox')",
                  "    class NoSocket(socket.socket):",
                  "        def __init__(self, *args, **kwargs):",
                  "            no_net()",
                  "    for m in (socket, _socket):",
                  "        m.socket = NoSocket",
                  "        m.socketpair = m.create_connection = m.create_server = m.getaddrinfo = no_net"]
    lines += ["    sys.argv[:] = ['main.py']",
              "    import builtins",  # -S skips site, which defines exit() and quit()
              "    builtins.exit = builtins.quit = sys.exit",
              "    with open('main.py', 'rb') as f:",
              "        return compile(f.read(), 'main.py', 'exec')",
              "__file__ = 'main.py'",
              "exec(_sandbox_start())"]
    return "\n".join(lines) + "\n"


def _cgroup2_root() -> str | None:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return fields[1]
    return None


def _own_cgroup() -> str | None:
    root = _cgroup2_root()
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            if line.startswith("0::") and root is not None:
                return os.path.join(root, line[3:].strip().lstrip("/"))
    return None


@functools.cache
def cgroup_parent() -> str | None:
    """A cgroup v2 directory whose children get the memory controller and that we may write, or None."""
    try:
        named = os.environ.get(CGROUP_ENV)
        parent = named or (_own_cgroup() if os.geteuid() == 0 else None)
        if not parent:
            return None
        with open(os.path.join(parent, "cgroup.subtree_control"), encoding="utf-8") as f:
            if "memory" not in f.read().split():
                return None
        probe = create_cgroup(parent, 64)
        os.rmdir(probe)
        return parent
    except OSError:
        return None


def memory_cap() -> str:
    """How memory_mb is enforced per run: "cgroup" or "process-count" (see the module docstring)."""
    return "cgroup" if cgroup_parent() else "process-count"


def create_cgroup(parent: str, memory_mb: int) -> str:
    path = os.path.join(parent, f"afm-sandbox-{secrets.token_hex(6)}")
    os.mkdir(path)
    try:
        for name, value in (("memory.max", memory_mb << 20), ("memory.swap.max", 0), ("pids.max", NPROC_LIMIT)):
            if name == "memory.max" or os.path.exists(os.path.join(path, name)):
                with open(os.path.join(path, name), "w", encoding="ascii") as f:
                    f.write(f"{value}\n")
    except OSError:
        os.rmdir(path)
        raise
    return path


def enter_cgroup(path: str, argv: list[str]) -> list[str]:
    """argv preceded by a root `sh` that moves itself (and so everything it starts) into the cgroup."""
    return ["sh", "-c", 'echo 0 > "$1/cgroup.procs" && shift && exec "$@"', "sandbox-cgroup", path, *argv]


def remove_cgroup(path: str) -> bool:
    """Kill what is left in the run's cgroup and remove it; True when the OOM killer fired in it."""
    try:
        with open(os.path.join(path, "cgroup.kill"), "w", encoding="ascii") as f:
            f.write("1\n")
    except OSError:
        pass
    oom = False
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(path, "memory.events"), encoding="ascii") as f:
                oom = any(line.split() and line.split()[0] == "oom_kill" and line.split()[1] != "0" for line in f)
            os.rmdir(path)
            break
        except OSError:
            time.sleep(0.01)
    return oom
