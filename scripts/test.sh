#!/usr/bin/env bash
# The test command of the README: set up (if needed), then run the whole pytest suite.
# pytest's exit code 5 ("no tests collected") is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${AFM_ALIGN_TEST_WORKERS+set}" ]; then  # checked before set-up: a typo costs nothing
  case "$AFM_ALIGN_TEST_WORKERS" in
    ''|*[!0-9]*|0*) echo "test: AFM_ALIGN_TEST_WORKERS must be a whole number >= 1, got '$AFM_ALIGN_TEST_WORKERS'" >&2
                    exit 2 ;;
  esac
fi
bash scripts/setup.sh || exit 1
# The annotation app's browser test drives Debian's chromium, and the code sandbox isolates model-written
# programs with bubblewrap; install both when we can (root + apt-get).
if { [ ! -x /usr/bin/chromium ] || ! command -v bwrap >/dev/null; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium bubblewrap >/dev/null) \
    || echo "test: could not install chromium and bubblewrap; the browser and sandbox tests will report it"
fi
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False AFM_ALIGN_QUIET=1
# One pytest worker per core this process may use (pytest-xdist), at most 8: every test runs torch on one
# thread (tests/conftest.py), so the workers fill the machine without oversubscribing it (the scale-out tests'
# two-process runs briefly add a process). The count is the cores (affinity, cgroup quota), not a snapshot of
# the free ones: a moment's load at start-up would halve a run that lasts minutes. A file's tests stay on one
# worker (--dist loadfile: a module's fixture, such as the on-device track's miniature run, is built once).
# AFM_ALIGN_TEST_WORKERS=N sets the count (1 on a machine busy with other work runs every test in this process).
workers="${AFM_ALIGN_TEST_WORKERS:-$(.venv/bin/python -c 'from afm_align.member_io import available_cores
print(min(8, available_cores()))' 2>/dev/null || echo 1)}"
parallel=()
if [ "$workers" -gt 1 ]; then
  parallel=(-n "$workers" --dist loadfile)
  echo "test: $workers pytest workers (one per core; AFM_ALIGN_TEST_WORKERS=1 runs in one process)"
fi
.venv/bin/python -m pytest ${parallel[@]+"${parallel[@]}"} "$@"
code=$?
if [ "$code" = 5 ]; then
  echo "test: pytest collected no tests - failing" >&2
  exit 1
fi
exit "$code"
