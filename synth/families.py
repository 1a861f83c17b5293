"""The synth family registry: the one list of families, their written interface, and verifier-error counts.

A family is a module `synth/<name>_tasks.py`. `FAMILIES` is the one tuple of family names: builders, the
pre-training corpus, the splits, the RL reward terms, evaluation and the round config all read it, so adding a
family is writing its module and adding its name here. `family(name)` imports the module and checks it
against `FamilyModule` (every required name present, callable, and `DOMAIN == name`), so a misnamed or
half-written family fails loudly where it is first used instead of silently dropping out of the data.

Verifier errors. A verifier scores a *model answer*; a malformed answer (unparseable JSON, a program that
crashes in the sandbox, no number) is a legitimate 0. An exception in the *verifier's own code* (a malformed
verifier spec, a bug, math_verify crashing) still scores 0, so training loops never crash, but it is not the
model's fault: the family calls `record_verifier_error(family, exc)`, which counts it per family and logs a
warning once per (family, exception type). `verifier_errors()` reads the counts (every family, zeros
included) and `reset_verifier_errors()` clears them; evaluation resets before grading and writes the counts
into the round's leaderboard, so a verifier bug never passes for a weak model.

Optional interface: `verify_many(completions, verifiers) -> list[float]`, a batched `verify` (the code
family runs its sandbox jobs in few processes); callers fall back to `verify` per row when it is absent.

Run: `python -c "from synth.families import FAMILIES, family; print([family(f).DOMAIN for f in FAMILIES])"`.
"""
from __future__ import annotations

import importlib
import logging
import random
import threading
from types import ModuleType
from typing import Protocol

from afm_align.errors import UserError

FAMILIES = ("math", "tool", "code", "if", "safety")
# open-ended families: no verifier a training path can read (a hidden gold rubric scores them, read only by the
# gold oracle annotator and by evaluation: committee.gold_store); not in FAMILIES, so the pre-training corpus and
# the verifier rewards leave them out, while the rounds may use them (IterateConfig.families)
OPEN_ENDED = ("summarize", "general")
ALL_FAMILIES = FAMILIES + OPEN_ENDED

_log = logging.getLogger(__name__)


class FamilyModule(Protocol):
    """What every `synth/<name>_tasks.py` defines (checked by `family(name)`)."""

    DOMAIN: str  # the family's name; the `domain` column of its rows

    def generate(self, n: int, seed: int, difficulty: int = 1) -> list[dict]:
        """`n` items (prompt, domain, verifier, source, reference, identity); deterministic for its arguments."""

    def verify(self, completion: str, verifier: dict) -> float:
        """Score in [0, 1] of one completion against its ground truth; never raises (verifier errors are recorded)."""

    def reward(self, prompts, completions, **columns) -> list[float | None]:
        """TRL reward: the verifier score for rows whose `domain` column is this family, None for other rows."""

    def reference_grades(self, item: dict) -> dict:
        """The four grades (instruction_following, verbosity, truthfulness, harmlessness; 0-2) of the reference."""

    def corrupt(self, item: dict, rng: random.Random) -> list[dict]:
        """Worse answers to the item ({completion, level, grades}) for synthetic preference pairs."""

    def problem_identity(self, item: dict) -> str:
        """What the item's reference answer depends on and nothing else (the key of the train/dev/test split)."""


REQUIRED = ("generate", "verify", "reward", "reference_grades", "corrupt", "problem_identity")


def check_family(module: ModuleType, name: str) -> FamilyModule:
    """`module` when it implements `FamilyModule` for family `name`; else an ImportError naming what is missing."""
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    not_callable = [attr for attr in REQUIRED if hasattr(module, attr) and not callable(getattr(module, attr))]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if not_callable:
        problems.append(f"not callable: {', '.join(not_callable)}")
    domain = getattr(module, "DOMAIN", None)
    if domain != name:
        problems.append(f"DOMAIN is {domain!r}, not {name!r}")
    if problems:
        raise ImportError(f"{module.__name__} does not implement the synth family interface "
                          f"(synth/families.py): {'; '.join(problems)}")
    return module  # type: ignore[return-value]


def family(name: str) -> FamilyModule:
    """The checked module `synth.<name>_tasks` of a registered family; an unknown name is a UserError."""
    known = FAMILIES + OPEN_ENDED  # read at call time (tests register a family by patching FAMILIES)
    if name not in known:
        raise UserError(f"unknown synth family '{name}'; families are: {', '.join(known)}")
    return check_family(importlib.import_module(f"synth.{name}_tasks"), name)


# ---- verifier errors ----------------------------------------------------------------------------------
_lock = threading.Lock()
_counts: dict[str, int] = {}
_warned: set[tuple[str, str]] = set()


def record_verifier_error(name: str, exc: BaseException) -> None:
    """Count an exception raised by family `name`'s verifier code (not by a malformed answer); warn once per type."""
    kind = type(exc).__name__
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        first = (name, kind) not in _warned
        _warned.add((name, kind))
    if first:
        _log.warning("%s verifier error (%s: %s): scored 0 and counted in verifier_errors(); further %s errors "
                     "of this family are counted silently", name, kind, str(exc)[:200], kind)


def verifier_errors() -> dict[str, int]:
    """{family: verifier errors since the last reset}, every registered family listed (0 when none)."""
    with _lock:
        return {**{name: 0 for name in FAMILIES}, **_counts}


def reset_verifier_errors() -> None:
    """Clear the counts and the once-per-type warning memory (evaluation calls this before grading)."""
    with _lock:
        _counts.clear()
        _warned.clear()
