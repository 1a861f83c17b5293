"""The CLI: help lists the whole product, planned commands say where they come from, our packages are ours."""
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "afm_align.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("init", "synth", "rm", "train", "iterate", "leaderboard", "compare", "annotate", "labels"):
        assert command in out


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from afm_align.cli import build_parser; build_parser(); " \
           "print(sorted(m for m in ('torch', 'transformers', 'trl', 'gradio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_our_packages_are_not_the_pypi_namesakes():
    import alignment
    import synth

    assert Path(alignment.__file__).resolve().is_relative_to(REPO)
    assert Path(synth.__file__).resolve().is_relative_to(REPO)


def test_help_names_the_thread_setting(capsys):
    """Issue 20 item 5: `threads=` was in neither the README nor --help."""
    import pytest

    from afm_align.cli import main as cli_main

    for command in ("init", "iterate"):
        with pytest.raises(SystemExit):
            cli_main([command, "--help"])
        assert "threads=N" in capsys.readouterr().out.replace("\n", " ")
