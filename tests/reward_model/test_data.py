"""Validation of preference rows, grade targets and the collator."""
import pytest
from datasets import Dataset

from reward_model.data import PreferenceCollator, check_row, grades_to_targets, validate_preferences


def _ds(rows):
    return Dataset.from_list(rows)


def test_valid_rows_pass_untouched(make_rows):
    ds, dropped = validate_preferences(_ds(make_rows(5)))
    assert dropped == 0 and len(ds) == 5


def test_identical_pairs_are_dropped_and_counted(make_rows):
    rows = make_rows(5)
    rows[1]["rejected"] = list(rows[1]["chosen"])
    rows[3]["rejected"] = [{"role": "assistant", "content": rows[3]["chosen"][0]["content"]}]
    ds, dropped = validate_preferences(_ds(rows))
    assert dropped == 2 and len(ds) == 3
    assert [r["chosen"][0]["content"] for r in ds] == [rows[i]["chosen"][0]["content"] for i in (0, 2, 4)]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("level", 7, "Row 2: unknown preference level 7"),
        ("level", None, "Row 2: unknown preference level None"),
        ("chosen", [], "Row 2: `chosen` is missing"),
        ("rejected", [{"role": "assistant", "content": ""}], "Row 2: `rejected` is missing"),
        ("grades_chosen", {"instruction_following": 3}, "Row 2: grade `grades_chosen.instruction_following` is 3"),
        ("grades_rejected", {"truthfulness": -1}, "Row 2: grade `grades_rejected.truthfulness` is -1"),
    ],
)
def test_bad_rows_name_the_row_index(field, value, message, make_rows):
    rows = make_rows(4)
    with pytest.raises(ValueError, match=message.replace("`", ".").replace("(", r"\(")):
        check_row({**rows[2], field: value}, 2)


def test_validate_preferences_reports_dataset_row_index(make_rows):
    rows = make_rows(6)
    rows[4]["level"] = 9
    with pytest.raises(ValueError, match="Row 4"):
        validate_preferences(_ds(rows))


def test_grades_to_targets_order_and_missing():
    assert grades_to_targets({"verbosity": 1, "harmlessness": 0, "truthfulness": None}) == [-100, 1, -100, 0]
    assert grades_to_targets(None) == [-100] * 4


def test_collator_pads_chosen_then_rejected_with_levels_and_grades():
    rows = [
        {"chosen_ids": [1, 2, 3], "rejected_ids": [4], "level": 3,
         "grades_chosen": {"instruction_following": 2}, "grades_rejected": None},
        {"chosen_ids": [5], "rejected_ids": [6, 7], "level": 0, "grades_chosen": None, "grades_rejected": None},
    ]
    batch = PreferenceCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [5, 0, 0], [4, 0, 0], [6, 7, 0]]
    assert batch["attention_mask"].sum(1).tolist() == [3, 1, 1, 2]
    assert batch["level"].tolist() == [3, 0]
    assert batch["grades_chosen"].tolist() == [[2, -100, -100, -100], [-100] * 4]
    assert batch["grades_rejected"].shape == (2, 4)


def test_keep_min_level_keeps_exactly_the_pairs_at_or_above_it(make_rows):
    from reward_model.data import keep_min_level

    rows = make_rows(8)  # levels 0, 1, 2, 3, 0, 1, 2, 3
    answers = [r["chosen"][0]["content"] for r in rows]
    ds, dropped = keep_min_level(_ds(rows), 2)
    assert dropped == 4 and [r["chosen"][0]["content"] for r in ds] == [answers[i] for i in (2, 3, 6, 7)]
    ds, dropped = keep_min_level(_ds(rows), 3)
    assert dropped == 6 and [r["level"] for r in ds] == [3, 3]
    ds, dropped = keep_min_level(_ds(rows), 0)
    assert dropped == 0 and len(ds) == 8
    # a row without a level is kept (the filter has nothing to read); so is a dataset without the column
    ds, dropped = keep_min_level(_ds([{**rows[0], "level": None}, rows[1], rows[3]]), 2)
    assert dropped == 1 and [r["level"] for r in ds] == [None, 3]
    no_level = [{k: v for k, v in r.items() if k != "level"} for r in rows[:3]]
    ds, dropped = keep_min_level(_ds(no_level), 3)
    assert dropped == 0 and len(ds) == 3


def test_keep_min_level_with_nothing_left_is_one_line_error(make_rows):
    from afm_align.errors import UserError
    from reward_model.data import keep_min_level

    rows = [r for r in make_rows(8) if r["level"] < 2]
    with pytest.raises(UserError) as err:
        keep_min_level(_ds(rows), 2)
    assert str(err.value) == "no training pair has level >= 2 (all 4 are below it); lower min_level."
