#!/usr/bin/env bash
# Set up afm-align in ./.venv: a fresh virtual environment with the project and its dev extras.
# torch is pinned to 2.13.0 (a CPU wheel that pip finds locally on the project machines).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,math]"
echo "setup: afm-align installed in $(pwd)/.venv"
