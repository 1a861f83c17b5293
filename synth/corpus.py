"""The chat corpus that pre-trains the tiny base model: every family's prompts with their references.

`chat_corpus(n_per_family, seed)` returns conversations (prompt messages + the reference as the
assistant turn) from each family module that exists, at difficulties 0 and 1, so the base model has
seen the formats (answer lines, tool calls, code blocks, refusals) before SFT. Prompts on the held-out
side of the builders' fixed split (`synth.builders.split_of`) are left out, so evaluation prompts never
appear in pre-training.

Run: `python -c "from synth.corpus import chat_corpus; print(len(chat_corpus(10, 0)))"`.
"""
from __future__ import annotations

import importlib

FAMILIES = ("math", "tool", "code", "if", "safety")


def family_module(name: str):
    """The `synth.<name>_tasks` module, or None if that family is not built."""
    try:
        return importlib.import_module(f"synth.{name}_tasks")
    except ModuleNotFoundError as err:
        if err.name == f"synth.{name}_tasks":
            return None
        raise


def chat_corpus(n_per_family: int, seed: int, heldout: float = 0.1,
                counts: dict[str, int] | None = None) -> list[list[dict]]:
    """Train-split conversations from every available family; deterministic for (n_per_family, seed).

    `counts` gives some families their own number of items (e.g. many more math items, so that a tiny
    model sees enough questions to learn to copy their numbers into the answer).
    """
    from synth.builders import near_dup_key, split_of

    conversations = []
    for offset, name in enumerate(FAMILIES):
        module = family_module(name)
        n = (counts or {}).get(name, n_per_family)
        if module is None or n <= 0:
            continue
        for difficulty in (0, 1):
            items = module.generate(max(1, n // 2), seed * 1000 + 17 * offset + difficulty, difficulty)
            conversations += [item["prompt"] + [{"role": "assistant", "content": item["reference"]}]
                              for item in items if split_of(near_dup_key(item["prompt"]), heldout) == "train"]
    return conversations
