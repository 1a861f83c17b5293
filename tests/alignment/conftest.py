"""Datasets the `afm-align train` tests share: small math sft and prompt sets, preference pairs."""
import json

import pytest

from afm_align.store import read_rows, write_dataset
from synth.builders import build


@pytest.fixture(scope="session")
def recipe_data(tmp_path_factory):
    """A folder with `sft`, `prompts`, `prefs` and `weak` (pairs all at level 0: nothing survives min_level 2)."""
    root = tmp_path_factory.mktemp("recipe-data")
    build("math", 24, seed=0, out=root / "sft", kind="sft", difficulty=0)
    build("math", 24, seed=1, out=root / "prompts", difficulty=0)
    build("prefs", 40, seed=0, out=root / "prefs")
    weak = [dict(r, level=0) for r in read_rows(root / "prefs", "preference")]
    write_dataset(weak, "preference", root / "weak", producer="test")
    return root


@pytest.fixture
def prompt_dir(tmp_path):
    """Eight `a + b =` math prompts (the MDLOO tests' data)."""
    rows = [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"{i} + {i + 1} ="}], "domain": "math",
             "verifier": json.dumps({"answer": str(2 * i + 1)}), "source": "test", "split": "train"}
            for i in range(8)]
    write_dataset(rows, "prompt", tmp_path / "prompts", producer="test")
    return tmp_path / "prompts"
