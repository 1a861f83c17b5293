"""The chat corpus that pre-trains the tiny base model: every family's prompts with their references.

`chat_corpus(n_per_family, seed)` returns conversations (prompt messages + the reference as the
assistant turn) from each family module that exists, at difficulties 0 and 1, so the base model has
seen the formats (answer lines, tool calls, code blocks, refusals) before SFT. Items from the families'
held-out splits are not excluded here: the base model's own probes are plain arithmetic owned by
`afm_align.init_base`, and the later evaluation uses prompts generated from other seeds.

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


def chat_corpus(n_per_family: int, seed: int) -> list[list[dict]]:
    """Conversations from every available family; deterministic for (n_per_family, seed)."""
    conversations = []
    for offset, name in enumerate(FAMILIES):
        module = family_module(name)
        if module is None or n_per_family <= 0:
            continue
        for difficulty in (0, 1):
            items = module.generate(max(1, n_per_family // 2), seed * 1000 + 17 * offset + difficulty, difficulty)
            conversations += [item["prompt"] + [{"role": "assistant", "content": item["reference"]}] for item in items]
    return conversations
