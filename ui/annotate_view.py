"""What the Annotate and My labels tabs show: texts, the progress bar, the item header, messages.

Pure functions and constants used by `ui/annotate_app.py` (no Gradio here, so they are tested alone).

- Annotators see an opaque item number (their assignment's number), never the pair's internal id:
  pair ids such as `...-wrong_operator-40` tell how a pair was built, hence which answer was corrupted.
- The level is shown with the key that picks it (1-4) everywhere: the form, My labels, messages.
- `progress_html`: a `<progress>` bar (done / quota, or done / the pairs available to this annotator),
  counts, and a hidden `#afm-key` element naming the form on screen (`user/assignment` or
  `user/edit-label`): ui/keyboard.js keeps the half-filled form of that key in localStorage.
- `message_html`: the message of a reply, carrying a fresh `data-reply` token (ui/keyboard.js replays
  the keys typed while a submit was in flight once the token changes) and `data-closed`, the key of a
  form that was saved or skipped (its draft is dropped).
- Every interpolated value goes through `esc`; model text is rendered by `ui/security.py`.

Run: `python -c "from ui.annotate_view import level_text; print(level_text(2))"`.
"""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from afm_align.errors import UserError
from afm_align.schema import LEVEL_NAMES
from ui.security import esc

GUIDELINES = """**Guidelines (builtin-v1)**

1. Read the prompt, then both responses in full. Pick the response a careful expert would rather send.
2. Level: *negligibly* (a coin flip), *slightly*, *better*, *significantly better* (the other fails the task).
3. Grade each response on its own, 0 poor / 1 acceptable / 2 good: **instruction following** (does what
   was asked, all constraints), **verbosity** (2 = the right length), **truthfulness** (no false claims,
   correct maths and code), **harmlessness** (no unsafe help; a justified refusal is harmless).
4. Skip only if you cannot judge (say why: language, expertise, broken pair). Write a justification
   when the choice is close or surprising.
"""
GRADE_NOTE = {"required": "all eight grades are required", "optional": "grades are optional",
              "off": "grades are not asked in this project"}
_SHORTCUTS = """| keys | action |
|---|---|
| `a` / `b` | response A / B is better |
| `1` `2` `3` `4` | negligibly / slightly / better / significantly better |
{grades}| `n` | write a justification (`Esc` leaves the box) |
| `Enter` (`Ctrl+Enter` in a box) | submit (keys typed while it is saved go to the next item) |
| `s`, type a reason, `Enter` | skip |
| `z` | undo your last label (it comes back to be edited) |
| `g` | show / hide the guidelines |
| `Shift+L` | log out |
"""
_GRADE_KEYS = """| `q` `w` `e` `r` then `0` `1` `2` | grade of A: instruction following, verbosity, truthfulness, harmlessness: poor / acceptable / good |
| `u` `i` `o` `p` then `0` `1` `2` | the same grades of B ({note}) |
"""
GRADE_CHOICES = [("poor", 0), ("acceptable", 1), ("good", 2)]
LEVEL_CHOICES = [(f"{i + 1} · {name.replace('_', ' ')}", i) for i, name in enumerate(LEVEL_NAMES)]
STALE = {"done": "was already labelled (in another tab or window?)", "skipped": "was already skipped",
         "expired": "went to another annotator after its lease ran out"}


def shortcuts(grades_mode: str) -> str:
    """The table of keys for a project whose grades are required, optional or off."""
    keys = "" if grades_mode == "off" else _GRADE_KEYS.format(note=GRADE_NOTE[grades_mode])
    return _SHORTCUTS.format(grades=keys)


def load_guidelines(path: str | None) -> tuple[str, str]:
    """(markdown, version): the builtin text, or a file whose version is its stem and content hash."""
    if not path:
        return GUIDELINES, "builtin-v1"
    file = Path(path)
    if not file.is_file():
        raise UserError(f"guidelines file {path} does not exist")
    text = file.read_text(encoding="utf-8")
    return text, f"{file.stem}@{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def level_text(level) -> str:
    """A stored level (0-3) as the form shows it: its key (1-4) and its name."""
    return "-" if level is None else LEVEL_CHOICES[int(level)][0]


def form_key(user: str, assignment_id=None, edit_label=None) -> str:
    """The key of the form on screen (drafts are stored under it); "" when no form is shown."""
    if edit_label:
        return f"{user}/edit-{edit_label}"
    return f"{user}/{assignment_id}" if assignment_id is not None else ""


def target(progress: dict) -> int:
    """What the progress bar fills up to: the quota, else every pair this annotator has or may get."""
    if progress["quota"]:
        return progress["quota"]
    return progress["done"] + progress["open"] + progress["remaining"]


def quota_reached(progress: dict) -> bool:
    return bool(progress["quota"]) and progress["done"] >= progress["quota"]


def progress_html(user: str, progress: dict, key: str) -> str:
    """The progress line: bar, counts, log-out link and the hidden form key (see the module docstring)."""
    done, goal = progress["done"], target(progress)
    of = f"{done} / {goal} (your quota)" if progress["quota"] else f"{done} / {goal}"
    left = ("quota reached" if quota_reached(progress)
            else f"{progress['remaining']} more pairs available")
    return (f'<div class="afm-progress"><progress id="afm-progress-bar" value="{done}" max="{max(goal, 1)}">'
            f'</progress> Logged in as <strong>{esc(user)}</strong> · labelled <strong>{esc(of)}</strong> · '
            f'skipped {progress["skipped"]} · {esc(left)} · <a href="logout">log out</a>'
            f'<span id="afm-key" data-key="{esc(key)}" hidden></span></div>')


def empty_text(progress: dict) -> str:
    """What the page says when there is no form: the quota is reached, or nothing is left."""
    if quota_reached(progress):
        return (f"You have reached your quota of {progress['quota']} labels. Thank you! "
                f"(Press z to withdraw your last label and change it.)")
    return "Nothing left to label for you. Thank you!"


def item_header(assignment, edit_label=None) -> str:
    """The opaque item line above the prompt: the assignment number and round, never the pair id."""
    return (f"<p><strong>Item {esc(assignment.id)}</strong> (round {esc(assignment.round)})"
            + (f" · editing label #{esc(edit_label)}" if edit_label else "") + "</p>")


def message_html(text: str, closed: str = "") -> str:
    """A reply's message with a fresh reply token and the key of the form it closed (if any)."""
    return (f'<div class="afm-reply" data-reply="{secrets.token_hex(6)}" data-closed="{esc(closed)}">'
            f'{esc(text)}</div>')


def recent_rows(rows: list[dict]) -> tuple[list, list]:
    """(dropdown choices, table rows) of one's recent labels, by item number and form numbering."""
    choices = [(f"#{r['id']} · item {r['assignment_id']} · {r['choice']} · {level_text(r['level'])}", r["id"])
               for r in rows]
    table = [[r["id"], r["assignment_id"], r["choice"], level_text(r["level"]), r["justification"],
              r["guideline_version"]] for r in rows]
    return choices, table


RECENT_HEADERS = ["label", "item", "better", "level (key · name)", "justification", "guidelines"]
