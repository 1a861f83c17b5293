"""`afm-align synth`: deterministic datasets through the store, dedup, problem-disjoint splits, clear errors."""
import json

import pytest

from afm_align.cli import main as cli_main
from afm_align.store import read_manifest, read_rows
from synth.builders import near_dup_key, prompt_rows


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


def test_no_exact_or_near_duplicates_and_splits_follow_problem_identity():
    rows = prompt_rows("math", 800, seed=1, difficulty=0)
    keys = [near_dup_key(r["prompt"]) for r in rows]
    assert len(keys) == len(set(keys))
    sides = {}
    for r in rows + prompt_rows("math", 800, seed=2, difficulty=0):
        assert r["split"] in ("train", "dev", "test") and r["identity"].startswith("math:")
        assert sides.setdefault(r["identity"], r["split"]) == r["split"]  # one problem, one side, any dataset
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")}
    assert counts["dev"] > 60 and counts["test"] > 60 and counts["train"] > counts["dev"] + counts["test"]


def test_one_problem_in_other_words_is_on_one_side():
    # the same request template, plain (difficulty 0) and framed (difficulty 3), is one safety problem
    rows = prompt_rows("safety", 300, seed=0, difficulty=0) + prompt_rows("safety", 300, seed=0, difficulty=3)
    sides = {}
    for r in rows:
        sides.setdefault(r["identity"], set()).add(r["split"])
    assert len(sides) > 100 and all(len(s) == 1 for s in sides.values())
    framed = {r["identity"] for r in rows[300:]}
    assert len(framed & {r["identity"] for r in rows[:300]}) > 100  # many templates really appear in both


@pytest.mark.parametrize("family", ["math", "tool", "code", "if", "safety"])
def test_every_family_yields_200_distinct_test_and_dev_problems_from_3000_items(family):
    rows = prompt_rows(family, 3000, seed=0, difficulty=0, with_reference=True)
    test = {r["identity"] for r in rows if r["split"] == "test"}
    dev = {r["identity"] for r in rows if r["split"] == "dev"}
    assert len({near_dup_key(r["prompt"]) for r in rows if r["split"] == "test"}) >= 200
    assert len(test) >= 200 and len(dev) >= 200, (family, len(test), len(dev))
    assert all(r["completion"][0]["content"] for r in rows)


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
