"""The Compare tab's readers of round files: rounds, members, leaderboard table, side-by-side rows."""
import subprocess
import sys
from pathlib import Path

from ui import compare_tab

REPO = Path(__file__).resolve().parents[2]


def test_reads_the_round_files(round_files):
    run = round_files
    assert compare_tab.rounds(run) == [1]
    assert compare_tab.members(run, 1) == ["a", "b", "c"]
    headers, rows = compare_tab.leaderboard_rows(run, 1)
    assert headers == compare_tab.LEADERBOARD_COLUMNS + ["dev code", "dev math"]
    assert "dev mean (promotion)" in headers and "test mean (report only)" in headers
    assert [r[0] for r in rows] == ["b", "a", "c"]                 # by dev mean, as promotion ranks
    assert rows[0][3:9] == [True, 0.525, "[0.600, 0.800]", 0.45, "[0.300, 0.600]", 1040.0]
    assert rows[1][6:8] == [None, ""]                              # a was not scored on test
    assert rows[0][9:] == [0.35, 0.7]
    assert [p.name for p in compare_tab.plots(run, 1)] == ["elo.png"]


def test_side_by_side_pairs_shared_prompts(round_files):
    rows = compare_tab.side_by_side(round_files, 1, "a", "b")
    assert [r["prompt_id"] for r in rows] == ["q0", "q1", "q2"]    # "only-a" has no answer from b
    assert (rows[1]["completion_1"], rows[1]["rm_1"], rows[1]["verifier_1"]) == ("a says 1 <b>bold</b>", 1.5, 0.0)
    assert (rows[1]["completion_2"], rows[1]["verifier_2"]) == ("b says 1 <b>bold</b>", 1.0)


def test_shown_texts_are_inert(round_files, markup_payloads, assert_inert):
    rows = compare_tab.side_by_side(round_files, 1, "a", "b")
    prompt, left, right = compare_tab.shown_html(rows, 1, "a", "b")
    assert "a says 1 &lt;b&gt;bold&lt;/b&gt;" in left and "RM 1.5 · verifier 0.0" in left and "q1" in prompt
    for name, payload in markup_payloads.items():
        row = {"prompt_id": payload, "domain": payload, "prompt": [{"role": payload, "content": payload}],
               "completion_1": payload, "rm_1": payload, "verifier_1": payload, "completion_2": payload,
               "rm_2": None, "verifier_2": None}
        for out in compare_tab.shown_html([row], 0, payload, payload):
            assert_inert(out, name)


def test_missing_files_are_empty_not_errors(tmp_path):
    from afm_align.rundir import RunDir

    run = RunDir(tmp_path / "empty")
    assert compare_tab.rounds(run) == [] and compare_tab.members(run, 3) == []
    assert compare_tab.side_by_side(run, 3, "a", "b") == [] and compare_tab.leaderboard_rows(run, 3)[1] == []


def test_loads_no_model():
    code = ("import sys; from ui import compare_tab; "
            "print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
