"""The round benchmark reads a kept run only when the run was made with the command's settings."""
import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from benchmarks.iterate_round3 import check_reuse  # noqa: E402


def _kept_run(root: Path, overrides: list[str], drop: str | None = None) -> Path:
    from afm_align.config import config_dict
    from committee.round_config import load

    config = config_dict(load("tiny", overrides=["run=seed0", *overrides]))
    if drop:
        del config[drop]
    (root / "round_1").mkdir(parents=True)
    (root / "round_1" / "manifest.json").write_text(json.dumps({"config": config, "stages": {}}))
    return root


def test_a_kept_run_is_read_only_with_the_commands_settings(tmp_path):
    args = Namespace(round=1, members=None, overrides=[])
    plain = _kept_run(tmp_path / "plain", ["seed=0"])
    check_reuse(plain, 0, args)
    with pytest.raises(SystemExit, match="seed"):
        check_reuse(plain, 1, args)
    with pytest.raises(SystemExit, match="recipes"):
        check_reuse(plain, 0, Namespace(round=1, members=None, overrides=["recipes.init=[steps=4500]"]))
    with pytest.raises(SystemExit, match="members"):
        check_reuse(plain, 0, Namespace(round=1, members="dpo", overrides=[]))
    check_reuse(_kept_run(tmp_path / "dpo", ["seed=0", "members=[dpo]"]), 0,
                Namespace(round=1, members="dpo", overrides=[]))
    check_reuse(_kept_run(tmp_path / "old", ["seed=0"], drop="curriculum"), 0, args)  # predates the key
