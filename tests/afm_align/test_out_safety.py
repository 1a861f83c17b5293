"""`--out` never destroys what a command did not write (issue 20, item 1), and bad paths are one line.

Before: `publish_dir` renamed any existing folder away and deleted it, so `synth math --out mydir` wiped the
user's files in `mydir`. Now only an empty folder or an afm-align artefact of the same kind is replaced, and
that only with `--overwrite`.
"""
from pathlib import Path

import pytest

from afm_align.cli import main as cli_main
from afm_align.errors import UserError
from afm_align.store import publish_dir, read_manifest, write_dataset


def _user_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    (path / "sub" / "keep.py").write_text("print(1)")
    return path


def _intact(path: Path) -> bool:
    return (path / "notes.txt").read_text() == "mine" and (path / "sub" / "keep.py").read_text() == "print(1)"


def test_synth_into_a_users_folder_is_refused_and_the_folder_kept(tmp_path, capsys):
    mydir = _user_folder(tmp_path / "mydir")
    for extra in ([], ["--overwrite"]):  # --overwrite replaces datasets only, never a user's folder
        assert cli_main(["synth", "math", "--n", "5", "--out", str(mydir), *extra]) == 2
        assert _intact(mydir) and sorted(p.name for p in mydir.iterdir()) == ["notes.txt", "sub"]
    assert "not a prompt dataset afm-align wrote" in capsys.readouterr().err


def test_a_parent_folder_typed_by_mistake_is_not_wiped(tmp_path):
    data = tmp_path / "data"
    assert cli_main(["synth", "math", "--n", "5", "--out", str(data / "math")]) == 0
    assert cli_main(["synth", "math", "--n", "5", "--seed", "1", "--out", str(data), "--overwrite"]) == 2
    assert read_manifest(data / "math").rows == 5


def test_a_dataset_of_the_same_kind_needs_overwrite_and_another_kind_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "d"
    assert cli_main(["synth", "math", "--n", "5", "--out", str(out)]) == 0
    first = read_manifest(out).content_hash
    assert cli_main(["synth", "math", "--n", "5", "--seed", "1", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and read_manifest(out).content_hash == first
    assert cli_main(["synth", "math", "--n", "5", "--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert read_manifest(out).content_hash != first
    assert cli_main(["synth", "math", "--n", "5", "--kind", "sft", "--out", str(out), "--overwrite"]) == 2
    assert read_manifest(out).kind == "prompt"


def test_an_empty_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli_main(["synth", "math", "--n", "5", "--out", str(tmp_path / "empty")]) == 0
    assert read_manifest(tmp_path / "empty").rows == 5


def test_publish_dir_never_replaces_a_foreign_folder(tmp_path):
    mydir = _user_folder(tmp_path / "mine")
    staging = tmp_path / ".stage"
    staging.mkdir()
    (staging / "meta.json").write_text("{}")
    with pytest.raises(UserError, match="not something afm-align wrote"):
        publish_dir(staging, mydir, marker="meta.json")
    assert _intact(mydir)
    with pytest.raises(UserError, match="not a sft dataset afm-align wrote"):
        write_dataset(_sft_rows(), "sft", mydir, producer="test")
    assert _intact(mydir)


def _sft_rows():
    return [{"id": "a", "prompt": [{"role": "user", "content": "hi"}],
             "completion": [{"role": "assistant", "content": "yo"}], "source": "t", "member": "reference",
             "round": 0, "domain": "general", "split": "train"}]


def test_train_and_rm_refuse_a_users_folder_before_any_work(tmp_path, tiny_base_dir, capsys):
    mydir = _user_folder(tmp_path / "mine")
    assert cli_main(["synth", "math", "--n", "8", "--kind", "sft", "--out", str(tmp_path / "sft")]) == 0
    assert cli_main(["train", "sft", "--from", str(tiny_base_dir), "--data", str(tmp_path / "sft"),
                     "--out", str(mydir), "--overwrite"]) == 2
    assert cli_main(["rm", "train", "--data", str(tmp_path / "sft"), "--out", str(mydir),
                     "--base", str(tiny_base_dir)]) == 2
    assert _intact(mydir)
    assert "left as it is" in capsys.readouterr().err


def test_unwritable_paths_and_missing_models_are_one_line(tmp_path, capsys):
    assert cli_main(["synth", "math", "--n", "5", "--out", "/proc/nope/o3"]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert cli_main(["rm", "eval", "--model", str(tmp_path / "nonexistent"), "--data", "x"]) == 2
    assert "not a trained reward-model directory" in capsys.readouterr().err
