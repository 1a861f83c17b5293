"""Preference rows as the reward model sees them: validation, grade targets and batch collation.

What it does:
- `validate_preferences(ds)` checks every preference row (DESIGN.md §2, TRL conversational format) before
  training: an unknown `level`, a missing/empty `chosen` or `rejected`, or a grade outside 0..2 raises a
  one-sentence `UserError` naming the row index. Pairs whose two responses are identical carry no
  preference signal and are dropped; the count is returned.
- `keep_min_level(ds, min_level)` is Llama 3.1's margin filter for the RM: only pairs labelled at least
  `min_level` (0 negligibly .. 3 significantly better) are trained on, and rows without a level; nothing left
  is a one-line `UserError`. Applied to the train pairs only (`reward_model.trainer.train_reward_model`).
- `grades_to_targets(grades)` turns a grade dict into the four integer targets the grading heads train on,
  with `IGNORE_INDEX` (-100) where a grade is missing.
- `PreferenceCollator` pads chosen+rejected into one batch (TRL's `DataCollatorForPreference`, reused by
  composition) and adds `level`, `grades_chosen`, `grades_rejected` tensors.

What it simplifies: rows are expected in the conversational format only (prompt/chosen/rejected as message
lists); plain-text rows are accepted by TRL but not validated beyond being non-empty.

Run: imported by `reward_model.trainer`; tests in tests/reward_model/test_data.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS  # the four grading dimensions, in head order
from reward_model.losses import IGNORE_INDEX  # cross-entropy target for a missing grade

NUM_GRADE_LEVELS = 3  # 0 = poor, 1 = acceptable, 2 = good
# Preference level -> metric key name (0 negligibly ... 3 significantly better).
LEVEL_NAMES = {0: "negligibly_better", 1: "slightly_better", 2: "better", 3: "significantly_better"}


def _content(turns: Any) -> Any:
    """The comparable content of a response: the message contents, or the string itself."""
    if isinstance(turns, list):
        return tuple(m.get("content") if isinstance(m, dict) else m for m in turns)
    return turns


def _is_missing(turns: Any) -> bool:
    if turns is None or (isinstance(turns, (str, list)) and len(turns) == 0):
        return True
    if isinstance(turns, list):
        return all(not isinstance(m, dict) or not m.get("content") for m in turns)
    return False


def _check_grades(grades: Any, column: str, index: int) -> None:
    if grades is None:
        return
    if not isinstance(grades, dict):
        raise UserError(f"Row {index}: `{column}` must be a dict of the four grading dimensions, got {grades!r}.")
    for dim, value in grades.items():
        if value is not None and (isinstance(value, bool) or value not in (0, 1, 2)):
            raise UserError(f"Row {index}: grade `{column}.{dim}` is {value!r}, expected 0, 1, 2 or null.")


def check_row(row: dict, index: int) -> bool:
    """Raise `UserError` naming `index` if `row` is malformed; return False if its two responses are identical."""
    for column in ("chosen", "rejected"):
        if _is_missing(row.get(column)):
            raise UserError(f"Row {index}: `{column}` is missing or empty.")
    level = row.get("level")
    if "level" in row and (isinstance(level, bool) or level not in LEVEL_NAMES):
        raise UserError(f"Row {index}: unknown preference level {level!r}, expected one of 0, 1, 2, 3.")
    _check_grades(row.get("grades_chosen"), "grades_chosen", index)
    _check_grades(row.get("grades_rejected"), "grades_rejected", index)
    return _content(row["chosen"]) != _content(row["rejected"])


def validate_preferences(ds):
    """Validate a preference `datasets.Dataset`; return `(dataset without identical pairs, number dropped)`."""
    keep = [i for i, row in enumerate(ds) if check_row(row, i)]
    n_dropped = len(ds) - len(keep)
    return (ds.select(keep) if n_dropped else ds), n_dropped


def keep_min_level(ds, min_level: int):
    """`(dataset of the pairs labelled at least min_level plus those without a level, number dropped)`.

    Llama 3.1 trains its RM on its preference data "after filtering out samples with similar responses" (Dubey
    et al. 2024, §4.2.1); here the level says how different: `min_level` 0 keeps every pair. A dataset without a
    `level` column is kept whole.
    Only the train pairs are filtered: held-out accuracy stays comparable across `min_level` values.
    """
    if not min_level or "level" not in ds.column_names:
        return ds, 0
    keep = [i for i, level in enumerate(ds["level"]) if level is None or level >= min_level]
    if not keep:
        raise UserError(f"no training pair has level >= {min_level} (all {len(ds)} are below it); lower min_level.")
    n_dropped = len(ds) - len(keep)
    return (ds.select(keep) if n_dropped else ds), n_dropped


def grades_to_targets(grades: dict | None) -> list[int]:
    """Grade dict -> `[4]` integer targets in `GRADE_DIMENSIONS` order, `IGNORE_INDEX` where missing."""
    grades = grades or {}
    return [IGNORE_INDEX if grades.get(dim) is None else int(grades[dim]) for dim in GRADE_DIMENSIONS]


@dataclass
class PreferenceCollator:
    """Collate tokenized preference rows into one chosen-then-rejected batch plus level and grade tensors.

    Input rows carry `chosen_ids`, `rejected_ids` (from TRL's `_prepare_dataset`) and optionally `level`,
    `grades_chosen`, `grades_rejected`. Output: `input_ids`/`attention_mask` of shape `[2B, T]` (first half
    chosen), `level` `[B]` (absent levels -> -1), `grades_chosen`/`grades_rejected` `[B, 4]` (-100 missing).
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        from trl.trainer.reward_trainer import DataCollatorForPreference

        base = DataCollatorForPreference(pad_token_id=self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)
        batch = base([{"chosen_ids": ex["chosen_ids"], "rejected_ids": ex["rejected_ids"]} for ex in examples])
        batch["level"] = torch.tensor([ex.get("level", -1) for ex in examples], dtype=torch.long)
        for side in ("grades_chosen", "grades_rejected"):
            batch[side] = torch.tensor([grades_to_targets(ex.get(side)) for ex in examples], dtype=torch.long)
        return batch
