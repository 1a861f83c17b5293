"""The shared reward signature of every family: `f(prompts, completions, **columns) -> list[float | None]`.

TRL calls reward functions with completions as strings or as chat-message lists and passes dataset columns
as keyword lists; our datasets store `verifier` as a JSON string. These helpers turn both into what a
family's `verify(completion, verifier)` takes, and apply it to the rows of one domain (None elsewhere), so
that every family grades a sample the same way in filtering, rejection sampling, RL and evaluation.
"""
from __future__ import annotations

import json
from typing import Callable


def completion_text(completion) -> str:
    """A str completion, or the assistant contents of a chat-message list ("" for anything else)."""
    if isinstance(completion, list):
        return "\n".join(str(m.get("content") or "") for m in completion
                         if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
    return completion if isinstance(completion, str) else ""


def verifier_dict(verifier) -> dict:
    """A verifier given as a dict or a JSON string; anything malformed becomes {} (which verifies as 0.0)."""
    try:
        verifier = json.loads(verifier) if isinstance(verifier, str) else verifier
    except ValueError:
        return {}
    return verifier if isinstance(verifier, dict) else {}


def domain_reward(domain: str, verify: Callable[[str, dict], float], completions, columns: dict) -> list[float | None]:
    """`verify` on each row whose `domain` column is `domain` (all rows when the column is absent), else None."""
    n = len(completions)
    domains = columns.get("domain") or [domain] * n
    verifiers = columns.get("verifier") or [{}] * n
    return [verify(completion_text(c), verifier_dict(v)) if d == domain else None
            for c, d, v in zip(completions, domains, verifiers)]
