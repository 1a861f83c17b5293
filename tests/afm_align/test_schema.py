"""Row contracts: good rows pass, each kind of malformed row names file, line and field."""
import pytest

from afm_align.schema import RowError, validate_row, validate_rows

GRADES = {"instruction_following": 2, "verbosity": 1, "truthfulness": 0, "harmlessness": None}


def pref_row(**change):
    row = {"id": "p1", "prompt": [{"role": "user", "content": "2+2?"}],
           "chosen": [{"role": "assistant", "content": "4"}], "rejected": "5", "level": 3,
           "grades_chosen": GRADES, "grades_rejected": GRADES, "annotator": "oracle",
           "source": "oracle", "guideline_version": "v1"}
    row.update(change)
    return row


def test_valid_rows_of_each_kind_pass():
    validate_row("preference", pref_row())
    validate_row("prompt", {"id": "a", "prompt": [{"role": "user", "content": "hi"}], "domain": "math",
                            "verifier": "{}", "source": "synth/math", "split": "train"})
    validate_row("sft", {"id": "a", "prompt": [{"role": "user", "content": "hi"}], "completion": "yo"})
    validate_row("response", {"id": "r", "prompt_id": "a", "member": "sft", "round": 0, "completion": "x"})


@pytest.mark.parametrize("change, field", [
    ({"level": 7}, "level"),
    ({"chosen": 5}, "chosen"),
    ({"grades_chosen": {**GRADES, "verbosity": 3}}, "grades_chosen"),
    ({"prompt": [{"role": "robot", "content": "x"}]}, "prompt"),
    ({"source": "crowd"}, "source"),
])
def test_bad_field_is_named_with_file_and_line(change, field):
    rows = [pref_row(), pref_row(**change)]
    with pytest.raises(RowError) as err:
        validate_rows("preference", rows, source="data/x.jsonl")
    assert "data/x.jsonl line 2" in str(err.value)
    assert f"'{field}'" in str(err.value)


def test_missing_field_is_named():
    row = pref_row()
    del row["rejected"]
    with pytest.raises(RowError, match=r"line 1: missing field 'rejected'"):
        validate_rows("preference", [row], source="f.jsonl")


def test_sft_row_needs_messages_or_prompt_completion():
    with pytest.raises(RowError, match="messages"):
        validate_row("sft", {"id": "a", "prompt": [{"role": "user", "content": "hi"}]})


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown dataset kind 'pairs'"):
        validate_row("pairs", {})
