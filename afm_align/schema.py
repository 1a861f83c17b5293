"""Row contracts of DESIGN §2: what each dataset kind holds, and one validator that names the culprit.

Every dataset kind (prompt, sft, response, preference) has a table of required and optional fields
with a check per field. `validate_row(kind, row, where)` raises `RowError` (a `ValueError`) whose
message names the file, the line and the field, e.g.
`data/train.jsonl line 12: field 'level' must be one of 0, 1, 2, 3 (got 7)`.

Chat messages are lists of `{"role", "content"}` dicts with roles system/user/assistant/tool (TRL's
conversational format); `chosen`, `rejected` and `completion` may also be plain strings.
"""
from __future__ import annotations

from typing import Any, Callable

from afm_align.errors import UserError

KINDS = ("prompt", "sft", "response", "preference")
DOMAINS = ("math", "tool", "code", "if", "safety", "general", "summarize")
SPLITS = ("train", "dev", "test")  # by problem identity (synth.splits); test is for reports only
GRADE_DIMENSIONS = ("instruction_following", "verbosity", "truthfulness", "harmlessness")
LEVEL_NAMES = ("negligibly_better", "slightly_better", "better", "significantly_better")
ANNOTATOR_SOURCES = ("human", "oracle", "judge", "synthetic")
CHAT_ROLES = ("system", "user", "assistant", "tool")


class RowError(UserError):
    """A dataset row breaks its contract; the message names file, line and field."""


def _messages(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of chat messages"
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
            return f"message {i} must be a dict with a string 'content'"
        if msg.get("role") not in CHAT_ROLES:
            return f"message {i} has role {msg.get('role')!r}; roles are {', '.join(CHAT_ROLES)}"
    return None


def _text_or_messages(value: Any) -> str | None:
    return None if isinstance(value, str) else _messages(value)


def _one_of(options: tuple) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in options:
            return None
        return f"must be one of {', '.join(map(str, options))} (got {value!r})"
    return check


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string (got {type(value).__name__})"


def _number(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok or value is None else f"must be a number or null (got {value!r})"


def _json_like(value: Any) -> str | None:
    return None if isinstance(value, (dict, str)) else "must be an object or a JSON string"


def _grades(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object with the four grading dimensions"
    for dim in GRADE_DIMENSIONS:
        if dim not in value:
            return f"is missing the dimension '{dim}'"
        grade = value[dim]
        if grade is not None and (isinstance(grade, bool) or grade not in (0, 1, 2)):
            return f"dimension '{dim}' must be 0, 1, 2 or null (got {grade!r})"
    extra = set(value) - set(GRADE_DIMENSIONS)
    return f"has unknown dimensions {sorted(extra)}" if extra else None


# kind -> (required fields, optional fields); each field maps to its check.
CONTRACTS: dict[str, tuple[dict[str, Callable], dict[str, Callable]]] = {
    "prompt": (
        {"id": _string, "prompt": _messages, "domain": _one_of(DOMAINS), "verifier": _json_like,
         "source": _string, "split": _one_of(SPLITS)},
        {"identity": _string},
    ),
    "sft": (
        {"id": _string},
        {"messages": _messages, "prompt": _messages, "completion": _text_or_messages,
         "member": _string, "round": _number, "score": _number, "domain": _one_of(DOMAINS),
         "verifier": _json_like, "source": _string, "split": _one_of(SPLITS), "identity": _string},
    ),
    "response": (
        {"id": _string, "prompt_id": _string, "member": _string, "round": _number,
         "completion": _text_or_messages},
        {"prompt": _messages, "sampling": _json_like, "verifier_score": _number, "rm_score": _number,
         "rm_grades": _json_like, "domain": _one_of(DOMAINS)},
    ),
    "preference": (
        {"id": _string, "prompt": _messages, "chosen": _text_or_messages,
         "rejected": _text_or_messages, "level": _one_of((0, 1, 2, 3)),
         "grades_chosen": _grades, "grades_rejected": _grades, "annotator": _string,
         "source": _one_of(ANNOTATOR_SOURCES), "guideline_version": _string},
        {"domain": _one_of(DOMAINS), "split": _one_of(SPLITS), "target_prob": _number,
         "kind": _string, "identity": _string,
         "justification": _string, "justifications": _json_like},  # the annotators' words (labels export)
    ),
}


def validate_row(kind: str, row: Any, where: str = "<rows>") -> None:
    """Raise RowError naming `where` (e.g. 'file.jsonl line 3') and the field when `row` is malformed."""
    if kind not in CONTRACTS:
        raise UserError(f"unknown dataset kind '{kind}'; kinds are {', '.join(KINDS)}")
    if not isinstance(row, dict):
        raise RowError(f"{where}: a row must be a JSON object (got {type(row).__name__})")
    required, optional = CONTRACTS[kind]
    for field, check in required.items():
        if field not in row:
            raise RowError(f"{where}: missing field '{field}' for a {kind} row")
        problem = check(row[field])
        if problem:
            raise RowError(f"{where}: field '{field}' {problem}")
    for field, check in optional.items():
        if field in row and row[field] is not None:
            problem = check(row[field])
            if problem:
                raise RowError(f"{where}: field '{field}' {problem}")
    if kind == "sft" and "messages" not in row and not ("prompt" in row and "completion" in row):
        raise RowError(f"{where}: an sft row needs 'messages' or both 'prompt' and 'completion'")


def validate_rows(kind: str, rows, source: str = "<rows>") -> None:
    """Validate every row; line numbers count from 1 as in the JSONL file."""
    for line, row in enumerate(rows, start=1):
        validate_row(kind, row, f"{source} line {line}")
