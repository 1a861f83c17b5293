"""The gold oracle: labels a pair of answers to an open-ended prompt from its hidden gold rubric, as people do.

Open-ended prompts (synth.families.OPEN_ENDED: `summarize`, `general`) have no verifier; a hidden rubric scores an
answer in [0, 1] with parts (coverage, truthfulness, verbosity, instruction_following, harmlessness). The
oracle stands in for human annotators, the standard way to study RLHF without people (a "gold" reward the policy
and the RM never see):
- **choice**: Bradley-Terry on the gold scores, P(a preferred) = sigmoid((g_a - g_b) / temperature): clear
  differences are almost always called right, close ones near a coin toss (people disagree where it is close);
- **level**: from the gold gap, with the verifier oracle's cut points (`annotators.preference_level`: 0.15, 0.4,
  0.75 for levels 1, 2, 3), moved by one with probability `jitter` (inward at 0 and 3);
- **grades**: single-sided, each answer's own rubric parts mapped to the four grading dimensions (0/1/2,
  `synth.general_gold.grades`: the summarize rubric has the same parts), not a comparison with the other answer.
Every draw is seeded per pair (`annotators.pair_seed(seed, pair_id)`), so a pair gets one label in every run.

Why it may read the rubric: it is an annotator (the human's stand-in), like the verifier oracle reading the
verifiers. No training code path imports this module or the rubrics; the labels it writes are the only way the
gold reaches training, exactly as human labels would.

What it simplifies: one label per pair; the noise model is one temperature for every annotator and prompt.

Run: `python -m pytest tests/committee/test_gold_oracle.py`.
"""
from __future__ import annotations

import importlib
import math
import random
from dataclasses import dataclass

from afm_align.errors import UserError
from committee.annotators import jittered, pair_seed, preference_level, preference_row

# open-ended domain -> the module of its hidden rubric (`gold_score(completion, gold)`)
GOLD_RUBRICS = {"summarize": "synth.summarize_gold", "general": "synth.general_gold"}


@dataclass
class GoldNoise:
    """How people label: Bradley-Terry temperature on the gold gap, level jitter, and the seed of the draws."""

    temperature: float = 0.1  # gap 0.1 -> 73% call it right, 0.3 -> 95%; 0 = always the higher gold score
    jitter: float = 0.2
    seed: int = 0


def rubric(domain: str):
    """The hidden rubric module of an open-ended domain; another domain is a one-line error."""
    if domain not in GOLD_RUBRICS:
        raise UserError(f"no gold rubric for domain '{domain}'; open-ended domains are: {', '.join(GOLD_RUBRICS)}")
    return importlib.import_module(GOLD_RUBRICS[domain])


def prefer_probability(gold_a: float, gold_b: float, temperature: float) -> float:
    """P(a is preferred to b) under Bradley-Terry on the gold scores (0.5 at equal scores)."""
    if temperature <= 0:
        return 1.0 if gold_a > gold_b else 0.0 if gold_a < gold_b else 0.5
    return 1.0 / (1.0 + math.exp(-(gold_a - gold_b) / temperature))


def gold_label(pair: dict, prompt: dict, gold: dict, noise: GoldNoise) -> dict:
    """The preference row of one pair (`pair`: {pair_id, kind, a, b}, each {completion, member}) of an open-ended
    prompt, from its hidden `gold` dict."""
    from synth.general_gold import grades

    score = rubric(prompt["domain"]).gold_score
    parts_a, parts_b = score(pair["a"]["completion"], gold), score(pair["b"]["completion"], gold)
    ga, gb = parts_a["score"], parts_b["score"]
    rng = random.Random(pair_seed(noise.seed, pair["pair_id"]))
    a_wins = rng.random() < prefer_probability(ga, gb, noise.temperature)
    level = jittered(preference_level(abs(ga - gb)), rng, noise.jitter)
    chosen, rejected = (pair["a"], pair["b"]) if a_wins else (pair["b"], pair["a"])
    grades_a, grades_b = grades(parts_a), grades(parts_b)
    row = preference_row(pair, prompt, chosen, rejected, level, grades_a if a_wins else grades_b,
                         grades_b if a_wins else grades_a, "oracle")
    return {**row, "annotator": "gold-oracle", "guideline_version": "gold-oracle-v1"}  # source stays "oracle"
