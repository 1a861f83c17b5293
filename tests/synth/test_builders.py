"""`afm-align synth`: deterministic datasets through the store, dedup, a leak-free held-out split, clear errors."""
import json

import pytest

from afm_align.cli import main as cli_main
from afm_align.store import read_manifest, read_rows
from synth.builders import near_dup_key, prompt_rows, split_of


@pytest.mark.parametrize("family", ["math", "tool", "if", "safety"])
def test_same_seed_same_hash_other_seed_other_hash(family, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert cli_main(["synth", family, "--n", "60", "--seed", str(seed), "--out", str(tmp_path / name)]) == 0
    a, b, c = (read_manifest(tmp_path / n).content_hash for n in "abc")
    assert a == b != c
    rows = read_rows(tmp_path / "a", "prompt")
    assert len(rows) == 60 and all(r["domain"] == family for r in rows)
    assert all(isinstance(json.loads(r["verifier"]), dict) for r in rows)


def test_sft_kind_carries_the_reference(tmp_path):
    assert cli_main(["synth", "math", "--n", "20", "--out", str(tmp_path / "s"), "--kind", "sft"]) == 0
    rows = read_rows(tmp_path / "s", "sft")
    from synth import math_tasks
    assert all(math_tasks.verify(r["completion"][0]["content"], json.loads(r["verifier"])) == 1.0 for r in rows)
    assert {r["member"] for r in rows} == {"reference"}


def test_no_exact_or_near_duplicates_and_no_leak():
    rows = prompt_rows("math", 800, seed=1, difficulty=0)
    keys = [near_dup_key(r["prompt"]) for r in rows]
    assert len(keys) == len(set(keys))
    train = {near_dup_key(r["prompt"]) for r in rows if r["split"] == "train"}
    held = {near_dup_key(r["prompt"]) for r in rows if r["split"] == "heldout"}
    assert held and not train & held
    # the split is a property of the text, so another dataset puts the same prompt on the same side
    other = prompt_rows("math", 800, seed=2, difficulty=0)
    for r in other:
        key = near_dup_key(r["prompt"])
        assert r["split"] == ("heldout" if key in held else r["split"])
        assert not (key in held and r["split"] == "train")


def test_near_duplicates_share_key_and_split():
    a = [{"role": "user", "content": "What is 3 + 4?"}]
    b = [{"role": "user", "content": "what is  3+4 ?"}]
    assert near_dup_key(a) != near_dup_key([{"role": "user", "content": "What is 3 + 5?"}])
    assert split_of(near_dup_key(a), 0.5) == split_of(near_dup_key(b), 0.5)


def test_prefs_are_valid_preference_rows(tmp_path):
    assert cli_main(["synth", "prefs", "--n", "120", "--out", str(tmp_path / "p")]) == 0
    rows = read_rows(tmp_path / "p", "preference")
    assert len(rows) == 120
    assert {r["level"] for r in rows} >= {1, 3}
    assert all(r["chosen"] != r["rejected"] for r in rows)
    assert len({r["domain"] for r in rows}) >= 4


@pytest.mark.parametrize("args, message", [
    (["nonsense", "--n", "5"], "unknown family 'nonsense'"),
    (["math", "--n", "0"], "--n must be at least 1"),
])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["synth", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unwritable_out_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "file").write_text("x")
    assert cli_main(["synth", "math", "--n", "5", "--out", str(locked / "file" / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not writable" in err and len(err.splitlines()) == 1
    assert (locked / "file").read_text() == "x"
