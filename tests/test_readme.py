"""The README stands alone in a user's clone (issue 20, item 8): it links nothing outside the repository, it
documents the environment variables a user sets, and what it says of `key=value` is true of the CLI."""
import re
from pathlib import Path

import pytest

from afm_align.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_relative_link_resolves_inside_the_repository():
    links = re.findall(r"\]\(([^)#\s]+)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "expected relative links (docs/ARCHITECTURE.md, plots)"
    for link in local:
        if link.startswith("plots/"):
            continue
        target = (ROOT / link).resolve()
        assert ROOT in target.parents and target.exists(), link
    assert "../" not in README and "shared/docs" not in README


def test_the_runs_root_variable_is_documented():
    assert "$AFM_ALIGN_RUNS" in README


@pytest.mark.parametrize("argv", [["synth", "math", "--n", "1", "--out", "x", "seed=1"],
                                  ["leaderboard", "round=1"]])
def test_commands_the_readme_says_take_flags_only_refuse_key_value(argv, capsys):
    assert "take flags only" in README
    with pytest.raises(SystemExit) as stop:
        cli_main(argv)
    assert stop.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
