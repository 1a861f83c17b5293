"""The claim-3 benchmark's comparison: a single recipe's gains and the committee's per-seed advantage over it, with
a verdict read only from the t-interval over seeds; and the round-0 copy that both arms share."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.committee_vs_single import ROUND0, compare, markdown_table, seed_from  # noqa: E402


def _outcome(gain, member="r3-x"):
    return {"test_gain": gain, "member": member, "test_per_domain": {"math": 0.5 + gain, "tool": 0.0}}


def test_committee_advantage_and_verdicts():
    committee = [_outcome(0.05), _outcome(0.06), _outcome(0.04)]
    worse = compare(committee, [_outcome(0.01), _outcome(0.02), _outcome(0.00)])
    assert worse["committee_advantage"]["per_seed"] == [4.0, 4.0, 4.0]
    assert worse["committee_advantage"]["verdict"] == "committee better"
    assert worse["gain"]["mean"] == pytest.approx(1.0) and worse["per_domain_test"]["math"] == pytest.approx(0.51)
    better = compare(committee, [_outcome(0.10), _outcome(0.12), _outcome(0.09)])
    assert better["committee_advantage"]["verdict"] == "single recipe better"
    mixed = compare(committee, [_outcome(0.08), _outcome(0.01), _outcome(0.05)])
    assert mixed["committee_advantage"]["verdict"] == "no difference resolved"
    low, high = mixed["committee_advantage"]["ci95"]
    assert low < mixed["committee_advantage"]["mean"] < high
    assert compare(committee[:1], [_outcome(0.0)])["committee_advantage"]["verdict"] == "not resolved (one seed)"


def test_seed_from_copies_round_0_and_refuses_an_existing_folder(tmp_path):
    committee = tmp_path / "committee" / "seed0"
    for part in ROUND0:
        target = committee / part
        if "." in part:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}")
        else:
            (target / "x").mkdir(parents=True)
    (committee / "round_1").mkdir()
    run = tmp_path / "single" / "seed0"
    seed_from(committee, run)
    assert sorted(p.name for p in run.iterdir()) == sorted(ROUND0)  # round 1 onwards is the single recipe's own
    with pytest.raises(FileExistsError):
        seed_from(committee, run)
    with pytest.raises(SystemExit, match="missing base"):
        seed_from(tmp_path / "nothing", tmp_path / "other")


def test_markdown_table_prints_the_saved_figures():
    committee = [_outcome(0.05, "r3-sft"), _outcome(0.06, "r3-rs"), _outcome(0.04, "r2-sft")]
    result = {"committee": {"gain": {"mean": 5.0, "per_seed": [5.0, 6.0, 4.0]},
                            "top_members": ["r3-sft", "r3-rs", "r2-sft"]},
              "recipes": {"dpo": compare(committee, [_outcome(0.01, "r1-dpo"), _outcome(0.02), _outcome(0.00)])}}
    lines = markdown_table(result).splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert "| r3-sft, r3-rs, r2-sft | +5.0, +6.0, +4.0 | +5.0 [+2.5, +7.5] |" in lines[2]  # t(2) = 4.30, se 0.577
    assert lines[3].startswith("| dpo alone | r1-dpo, r3-x, r3-x | +1.0, +2.0, +0.0 | +1.0 [")
    assert "| +4.0 [+4.0, +4.0] | committee better |" in lines[3]
