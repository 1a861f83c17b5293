"""The README's test command (`scripts/test.sh`): a bad worker count is one line and stops before any set-up."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("workers", ["abc", "0", "-2", "", "2.5"])
def test_a_bad_worker_count_is_one_line_before_set_up(workers):
    env = {**os.environ, "AFM_ALIGN_TEST_WORKERS": workers, "PYTHON": "/nonexistent/python"}  # set-up would fail
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "test.sh"), "-q"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "AFM_ALIGN_TEST_WORKERS must be a whole number >= 1" in proc.stderr
    assert "setup:" not in proc.stdout  # nothing was installed
