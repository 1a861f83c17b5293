"""Labels out of the label store: preference rows, the annotators' notes, and the export folder.

Pure functions over the store's rows (`LabelStore.labels()`, `.pairs()`, `.assignments()`):

- `preference_rows(labels, pairs, soft)`: rows of the `preference` contract (afm_align.schema), labels
  un-swapped into chosen/rejected. One row per label, or with `soft` one per pair whose `target_prob`
  is the share of its annotators who agree with the majority (ties keep response_a as chosen, at 0.5).
  Besides the contract's fields a row carries `pair_id`, `round`, `member_chosen`/`member_rejected` and
  the annotators' words: `justification` (a per-label row: that annotator's text, "" when none) or
  `justifications` (a soft row: {annotator: text} of those who wrote one). The contract has no such
  fields; `validate_row` lets unknown fields through, and training reads only its own columns.
- `note_rows(labels, assignments, pairs)`: everything the annotators wrote, one JSON object a line:
  every current label with its justification and every skip with its reason (a skipped pair may have
  no label at all, so skips cannot ride on preference rows).
- `write_export(store, out, ...)`: the dataset folder (`write_dataset`: rows.jsonl + its manifest,
  atomic) plus `annotations.jsonl` (the notes) inside it. `afm-align labels export` and the admin
  tab's download both use it.

Run: `afm-align labels export --run demo --round 1 --soft`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.schema import DOMAINS, GRADE_DIMENSIONS

NOTES_FILE = "annotations.jsonl"


def on_screen(label: dict, swapped: bool) -> dict:
    """A stored label (pair orientation) as the annotator saw it: choice A/B, grades of shown A/B."""
    ga = json.loads(label["grades_a"]) if isinstance(label["grades_a"], str) else label["grades_a"]
    gb = json.loads(label["grades_b"]) if isinstance(label["grades_b"], str) else label["grades_b"]
    choice = {("a", False): "A", ("b", False): "B", ("a", True): "B", ("b", True): "A"}[(label["better"], swapped)]
    if swapped:
        ga, gb = gb, ga
    return {"choice": choice, "level": label["level"], "grades_a": ga, "grades_b": gb,
            "justification": label["justification"] or "", "guideline_version": label["guideline_version"]}


def _median_low(values: list):
    values = sorted(v for v in values if v is not None)
    return values[(len(values) - 1) // 2] if values else None


def _grade(label: dict, side: str, dim: str):
    return (label.get(f"grades_{side}") or {}).get(dim)


def preference_rows(labels: list[dict], pairs: dict[str, dict], soft: bool) -> list[dict]:
    """Un-swap labels into preference rows (see the module docstring)."""
    groups: dict[str, list[dict]] = {}
    for label in labels:
        groups.setdefault(label["pair_id"], []).append(label)
    rows = []
    for pair_id, group in groups.items():
        pair = pairs[pair_id]
        units = [group] if soft else [[label] for label in group]
        for unit in units:
            votes_a = sum(label["better"] == "a" for label in unit)
            side = "a" if 2 * votes_a >= len(unit) else "b"
            agree = [label for label in unit if label["better"] == side]
            other = "b" if side == "a" else "a"
            row = {
                "id": f"human-{pair_id}" + ("" if soft else f"-{unit[0]['user']}"),
                "prompt": pair["prompt"], "chosen": pair[f"response_{side}"], "rejected": pair[f"response_{other}"],
                "level": _median_low([label["level"] for label in agree]),
                "grades_chosen": {d: _median_low([_grade(label, side, d) for label in unit]) for d in GRADE_DIMENSIONS},
                "grades_rejected": {d: _median_low([_grade(label, other, d) for label in unit])
                                    for d in GRADE_DIMENSIONS},
                "annotator": ",".join(sorted({label["user"] for label in unit})), "source": "human",
                "guideline_version": ",".join(sorted({label["guideline_version"] for label in unit})),
                "pair_id": pair_id, "round": pair["round"], "member_chosen": pair[f"member_{side}"],
                "member_rejected": pair[f"member_{other}"],
            }
            if soft:
                row["target_prob"] = len(agree) / len(unit)
                row["justifications"] = {label["user"]: label["justification"] for label in unit
                                         if label.get("justification")}
            else:
                row["justification"] = unit[0].get("justification") or ""
            if pair.get("domain") in DOMAINS:
                row["domain"] = pair["domain"]
            rows.append(row)
    return rows


def note_rows(labels: list[dict], assignments: list[dict], pairs: dict[str, dict]) -> list[dict]:
    """Every current label's justification and every skip's reason, in the order they happened."""
    notes = [{"kind": "label", "pair_id": label["pair_id"], "round": label["round"], "annotator": label["user"],
              "assignment": label["assignment_id"], "label_id": label["id"],
              "better": label["better"], "level": label["level"], "text": label.get("justification") or "",
              "guideline_version": label["guideline_version"], "time": label["created"]} for label in labels]
    notes += [{"kind": "skip", "pair_id": a["pair_id"], "round": pairs[a["pair_id"]]["round"], "annotator": a["user"],
               "assignment": a["id"], "text": a["skip_reason"] or "", "time": a["created"]}
              for a in assignments if a["state"] == "skipped" and a["pair_id"] in pairs]
    return sorted(notes, key=lambda n: (n["time"], n["assignment"]))


def write_export(store, out: str | Path, round: int | None = None, soft: bool = False,
                 producer: str = "afm-align labels export", overwrite: bool = True):
    """Write the preference dataset and its annotations.jsonl to `out`; returns (manifest, notes written).

    OSError (a read-only or full disk) propagates: callers name the path. An empty export, or (without
    `overwrite`) another preference dataset at `out`, is refused by `write_dataset` (UserError)."""
    from afm_align.store import write_dataset

    rows = store.export_preferences(round=round, soft=soft)
    pairs = store.pairs(round)
    notes = note_rows(store.labels(round=round), store.assignments(), pairs)
    manifest = write_dataset(rows, "preference", out, producer=producer, overwrite=overwrite,
                             config={"round": round, "soft": soft, "labels": str(store.path), "notes": NOTES_FILE})
    text = "".join(json.dumps(n, ensure_ascii=False, sort_keys=True) + "\n" for n in notes)
    tmp = Path(out) / f".{NOTES_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(Path(out) / NOTES_FILE)
    return manifest, len(notes)
