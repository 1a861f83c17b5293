"""A run records the settings `iterate` was given and later rounds reuse them (issue 20, item 4)."""
import json

import pytest

from afm_align.cli import main as cli_main
from committee import rounds


class _Done:
    data = {"promotion": {"committee": ["r1-dpo"]}}


@pytest.fixture
def seen(monkeypatch, tmp_path):
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path))
    got = []
    monkeypatch.setattr(rounds, "iterate", lambda cfg, target: got.append((cfg, target)) or [_Done()])
    return got


def test_later_rounds_reuse_the_first_commands_settings(seen, tmp_path, capsys):
    assert cli_main(["iterate", "--round", "1", "--run", "r", "--members", "sft,dpo", "eval_prompts=12",
                     "recipes.dpo=[beta=0.2]"]) == 0
    assert cli_main(["iterate", "--round", "2", "--run", "r"]) == 0
    first, second = seen[0][0], seen[1][0]
    assert second.members == first.members == ["sft", "dpo"]
    assert second.eval_prompts == 12 and second.recipes["dpo"] == first.recipes["dpo"]
    assert "beta=0.2" in second.recipes["dpo"]
    assert "reusing its recorded settings" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "r" / "iterate_settings.json").read_text())
    assert recorded["preset"] == "tiny" and recorded["settings"]["eval_prompts"] == 12


def test_a_newly_stated_key_wins_and_is_recorded(seen, tmp_path):
    assert cli_main(["iterate", "--round", "1", "--run", "r", "eval_prompts=12", "temperature=0.5"]) == 0
    assert cli_main(["iterate", "--round", "2", "--run", "r", "temperature=0.7"]) == 0
    assert cli_main(["iterate", "--round", "3", "--run", "r"]) == 0
    assert [c.temperature for c, _ in seen] == [0.5, 0.7, 0.7]
    assert all(c.eval_prompts == 12 for c, _ in seen)


def test_a_refused_command_records_nothing(seen, tmp_path):
    assert cli_main(["iterate", "--round", "1", "--run", "r", "eval_prompts=0"]) == 2
    assert not (tmp_path / "r" / "iterate_settings.json").exists() and seen == []


def test_other_runs_do_not_share_settings(seen):
    assert cli_main(["iterate", "--round", "1", "--run", "a", "eval_prompts=12"]) == 0
    assert cli_main(["iterate", "--round", "1", "--run", "b"]) == 0
    assert seen[1][0].eval_prompts != 12
