#!/usr/bin/env bash
# The test command of the README: set up (if needed), then run the whole pytest suite.
# pytest's exit code 5 ("no tests collected") is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# The annotation app's browser test drives Debian's chromium, and the code sandbox isolates model-written
# programs with bubblewrap; install both when we can (root + apt-get).
if { [ ! -x /usr/bin/chromium ] || ! command -v bwrap >/dev/null; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium bubblewrap >/dev/null) \
    || echo "test: could not install chromium and bubblewrap; the browser and sandbox tests will report it"
fi
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False AFM_ALIGN_QUIET=1
.venv/bin/python -m pytest "$@"
code=$?
if [ "$code" = 5 ]; then
  echo "test: pytest collected no tests - failing" >&2
  exit 1
fi
exit "$code"
