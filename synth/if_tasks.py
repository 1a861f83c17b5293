"""Instruction-following tasks with IFEval-style verifiable constraints.

What it does: a prompt is a short writing task about a topic plus 1-4 constraints (1 at difficulty 0, 1-2 at 1,
2-3 at 2, 3-4 at 3) drawn from: word-count bounds, exact sentence count, required keywords, forbidden words,
JSON output with given keys, exact number of bullet points, no commas, all lowercase / all uppercase, ends with
a phrase, starts with a word, exact number of paragraphs. Incompatible pairs (JSON with case/commas/start/end,
bullets with start/end) are never drawn together. The verifier field is {"constraints": [dict, ...]} and
`verify` returns the fraction of constraints met (1.0 = all). References are built programmatically from a
small sentence bank to satisfy every constraint; word bounds are set from the reference with slack.

Checks (all case-insensitive for words/phrases): words = whitespace tokens; sentences = runs ending in . ! ?
(or the end) that contain a letter or digit; paragraphs = blocks separated by a blank line; bullets = lines
starting with "-", "*" or "•"; JSON = the whole reply (optionally in a ``` fence) parses to an object holding
every key; starts_with compares the first word. The verifier also keeps "spec", how the reference was built,
so `corrupt` can rebuild it with exactly one constraint broken. A reply that is not JSON simply fails the JSON
constraint; any other exception while checking (a malformed constraint, a missing verifier field, a bug) is the
verifier's fault: it is not met, and counted as an "if" verifier error (`synth.families.record_verifier_error`).

Problem identity (what the train/dev/test split hashes, `problem_identity`): "if:" + a digest of the reference.
The reference is fixed by the constraint set (kinds and parameters) and the topic template (topic and body
sentence offset); the form ("short note", ...) and the wording are not part of it. Several constraint sets give
the very same reference (no commas, forbidden words and word bounds all accept the plain text), and a reference
must never be in both training and test data, so the identity is the reference itself rather than the constraint
set: every pair of items with the same constraints and topic template, or the same reference, shares it.

Simplifies: template English, a fixed constraint menu, no semantic check that the text is about the topic.

Run: python -c "import synth.if_tasks as m; print(m.generate(3, seed=0))"
"""
import hashlib
import json
import random
import re

from afm_align.errors import UserError
from synth.families import record_verifier_error
from synth.reward_signature import domain_reward

DOMAIN = "if"
MAX_DIFFICULTY = 3
TOPICS = ["gardening", "the ocean", "space travel", "healthy sleep", "city parks", "music practice",
          "recycling", "rainy days", "cooking at home", "public libraries", "cycling to work", "board games",
          "bird watching", "learning a language", "home workouts", "baking bread", "camping trips", "photography",
          "volunteering", "knitting", "playing chess", "hiking trails", "growing herbs", "tidying up",
          "street food", "kite flying", "pottery", "train journeys", "writing letters", "swimming lessons"]
FORMS = ["short note", "short text", "brief description", "short message", "brief explanation"]
BANK = ["Learning about {t} is worthwhile.", "Many people enjoy {t} in their free time.",
        "A little practice with {t} goes a long way.", "There is always something new to notice about {t}.",
        "Friends can share ideas about {t} with each other.", "Simple steps make {t} easier to start.",
        "Books and videos can teach you more about {t}.", "Over time {t} can become a happy habit.",
        "Sharing what you learn about {t} helps others too.", "A good plan makes {t} more fun.",
        "Small changes can make {t} feel fresh again.", "Anyone can find their own way into {t}."]
KEYWORDS = ["sunlight", "budget", "history", "energy", "morning", "balance", "curiosity", "teamwork", "weekend",
            "community"]
FORBIDDEN = ["very", "really", "basically", "actually", "literally", "stuff", "amazing", "awesome", "nice",
             "totally"]
START_WORDS = ["Today", "Clearly", "Often", "Indeed", "Naturally", "Certainly"]
END_PHRASES = ["Thank you for reading.", "That is all for now.", "Any other questions?", "Have a great day."]
JSON_KEYS = ["title", "summary", "tip", "reason", "example"]
FILLER = " and it rewards anyone who gives it some time and attention"
KINDS = ["structure", "words", "include", "exclude", "no_commas", "case", "ends_with", "starts_with"]
CONFLICTS = {"json": {"no_commas", "case", "ends_with", "starts_with"}, "bullets": {"ends_with", "starts_with"}}
N_CONSTRAINTS = {0: (1, 1), 1: (1, 2), 2: (2, 3), 3: (3, 4)}


def _words_in(text: str, words) -> list[bool]:
    return [re.search(rf"\b{re.escape(w)}\b", text, re.I) is not None for w in words]


def _count_sentences(text: str) -> int:
    return len(re.findall(r"[^.!?]*[A-Za-z0-9][^.!?]*(?:[.!?]+|$)", text))


def _json_ok(text: str, keys) -> bool:
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # the model's reply is not JSON: the constraint is not met
        return False
    return isinstance(obj, dict) and all(k in obj for k in keys)


def _starts(text: str, word: str) -> bool:
    match = re.match(r"\W*(\w+)", text)
    return match is not None and match.group(1).lower() == word.lower()


CHECKS = {
    "max_words": lambda t, c: len(t.split()) <= c["n"],
    "min_words": lambda t, c: len(t.split()) >= c["n"],
    "sentences": lambda t, c: _count_sentences(t) == c["n"],
    "paragraphs": lambda t, c: len([p for p in re.split(r"\n\s*\n", t.strip()) if p.strip()]) == c["n"],
    "bullets": lambda t, c: len(re.findall(r"^\s*[-*\u2022]\s+\S", t, re.M)) == c["n"],
    "include": lambda t, c: all(_words_in(t, c["words"])),
    "exclude": lambda t, c: not any(_words_in(t, c["words"])),
    "no_commas": lambda t, c: "," not in t,
    "lowercase": lambda t, c: t == t.lower() and re.search(r"[a-z]", t) is not None,
    "uppercase": lambda t, c: t == t.upper() and re.search(r"[A-Z]", t) is not None,
    "ends_with": lambda t, c: t.strip().lower().endswith(c["phrase"].lower()),
    "starts_with": lambda t, c: _starts(t, c["word"]),
    "json": lambda t, c: _json_ok(t, c["keys"]),
}
INSTRUCTIONS = {
    "max_words": lambda c: f"Use at most {c['n']} words.",
    "min_words": lambda c: f"Use at least {c['n']} words.",
    "sentences": lambda c: f"Write exactly {c['n']} sentences.",
    "paragraphs": lambda c: f"Write exactly {c['n']} paragraphs separated by a blank line.",
    "bullets": lambda c: f"Use exactly {c['n']} bullet points that start with '- '.",
    "include": lambda c: f"Include the word{'s' if len(c['words']) > 1 else ''} {' and '.join(c['words'])}.",
    "exclude": lambda c: f"Do not use the word{'s' if len(c['words']) > 1 else ''} {' or '.join(c['words'])}.",
    "no_commas": lambda c: "Do not use any commas.",
    "lowercase": lambda c: "Write everything in lowercase letters.",
    "uppercase": lambda c: "Write everything in capital letters.",
    "ends_with": lambda c: f"End your response with the exact phrase '{c['phrase']}'",
    "starts_with": lambda c: f"Start your response with the word '{c['word']}'.",
    "json": lambda c: f"Reply only with a JSON object with the keys {', '.join(c['keys'][:-1])} and {c['keys'][-1]}.",
}
# structure constraint -> (how it sets the reference spec, how the spec is edited to violate it)
STRUCTURES = {
    "json": lambda rng: {"type": "json", "keys": rng.sample(JSON_KEYS, rng.randint(2, 3))},
    "bullets": lambda rng: {"type": "bullets", "n": rng.randint(2, 5)},
    "paragraphs": lambda rng: {"type": "paragraphs", "n": rng.randint(2, 4)},
    "sentences": lambda rng: {"type": "sentences", "n": rng.randint(2, 5)},
}
MODIFIERS = {
    "words": lambda rng: {"type": rng.choice(["max_words", "min_words"]), "n": 0},  # n set from the reference
    "include": lambda rng: {"type": "include", "words": rng.sample(KEYWORDS, rng.randint(1, 2))},
    "exclude": lambda rng: {"type": "exclude", "words": rng.sample(FORBIDDEN, rng.randint(1, 2))},
    "no_commas": lambda rng: {"type": "no_commas"},
    "case": lambda rng: {"type": rng.choice(["lowercase", "uppercase"])},
    "ends_with": lambda rng: {"type": "ends_with", "phrase": rng.choice(END_PHRASES)},
    "starts_with": lambda rng: {"type": "starts_with", "word": rng.choice(START_WORDS)},
}


def _spec(topic: str, offset: int, constraints: list[dict]) -> dict:
    """What the reference builder needs to satisfy the constraints."""
    spec = {"topic": topic, "offset": offset, "structure": "plain", "n": 2 + offset % 2, "keys": [],
            "keywords": [], "start": None, "end": None, "case": None, "comma": False, "filler": 0}
    for c in constraints:
        kind = c["type"]
        if kind in STRUCTURES:
            spec.update(structure=kind, n=c.get("n", 0), keys=list(c.get("keys", [])))
        spec.update({"include": {"keywords": list(c.get("words", []))}, "ends_with": {"end": c.get("phrase")},
                     "starts_with": {"start": c.get("word")}, "lowercase": {"case": "lower"},
                     "uppercase": {"case": "upper"}}.get(kind, {}))
    return spec


def build(spec: dict) -> str:
    """A short response about spec["topic"] meeting the spec (structure, keywords, start, end, case, ...)."""
    topic = spec["topic"]
    structure, n = spec["structure"], spec["n"]
    count = {"json": len(spec["keys"]), "sentences": n - (1 if spec["end"] else 0)}.get(structure, n)
    sents = [BANK[(spec["offset"] + i) % len(BANK)].format(t=topic) for i in range(max(count, 1))]
    if spec["keywords"]:
        sents[0] = f"A talk about {topic} can mention {' and '.join(spec['keywords'])}."
    if spec["filler"]:
        sents[0] = sents[0][:-1] + FILLER * spec["filler"] + sents[0][-1]
    if spec["start"]:
        sents[0] = f"{spec['start']} {sents[0][0].lower()}{sents[0][1:]}"
    end = [spec["end"]] if spec["end"] else []
    layouts = {
        "plain": lambda: " ".join(sents + end),
        "sentences": lambda: " ".join(sents + end),
        "paragraphs": lambda: "\n\n".join(sents[:-1] + [" ".join(sents[-1:] + end)]),
        "bullets": lambda: "\n".join("- " + s for s in sents),
        "json": lambda: json.dumps(dict(zip(spec["keys"], sents))),
    }
    text = layouts[structure]()
    if spec["comma"]:
        text = re.sub(r"^(\W*\w+)", r"\1,", text, count=1)
    return {"lower": text.lower(), "upper": text.upper()}.get(spec["case"], text)


def _draw_constraints(rng: random.Random, difficulty: int) -> list[dict]:
    k = rng.randint(*N_CONSTRAINTS[difficulty])
    chosen, kinds = [], set()
    for kind in rng.sample(KINDS, len(KINDS)):
        c = STRUCTURES[rng.choice(sorted(STRUCTURES))](rng) if kind == "structure" else MODIFIERS[kind](rng)
        blocked = set().union(*(CONFLICTS.get(x["type"], set()) for x in chosen))
        if kind in blocked or CONFLICTS.get(c["type"], set()) & kinds:
            continue
        chosen.append(c)
        kinds.add(kind)
        if len(chosen) == k:
            break
    return chosen


def _set_word_bounds(constraints: list[dict], reference: str) -> None:
    w = len(reference.split())
    for c in constraints:
        if c["type"] == "max_words":
            c["n"] = (w + 14) // 10 * 10  # at least 5 words of slack, a round number
        elif c["type"] == "min_words":
            c["n"] = max(3, (w - 3) // 5 * 5)


def _check_args(n, difficulty):
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UserError(f"difficulty must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}.")


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n instruction-following items, deterministic for (n, seed, difficulty)."""
    _check_args(n, difficulty)
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        topic, form, offset = rng.choice(TOPICS), rng.choice(FORMS), rng.randrange(len(BANK))
        constraints = _draw_constraints(rng, difficulty)
        spec = _spec(topic, offset, constraints)
        reference = build(spec)
        _set_word_bounds(constraints, reference)
        task = f"Write a {form} about {topic}. " + " ".join(INSTRUCTIONS[c["type"]](c) for c in constraints)
        items.append({"prompt": [{"role": "user", "content": task}], "domain": DOMAIN,
                      "verifier": {"constraints": constraints, "spec": spec},
                      "source": "synth/if/" + "+".join(c["type"] for c in constraints), "reference": reference})
        items[-1]["identity"] = problem_identity(items[-1])
    return items


def problem_identity(item: dict) -> str:
    """'if:' + the first 16 hex digits of the reference's SHA-256 (module docstring): a function of the reference
    alone, which the constraint set and topic template fix, so equal references always share it."""
    return "if:" + hashlib.sha256(item["reference"].encode("utf-8")).hexdigest()[:16]


def verify(completion: str, verifier: dict) -> float:
    """Fraction of the constraints the completion meets (0.0 for malformed input). Never raises; verifier-side
    exceptions (malformed constraints or spec) count as unmet and are recorded as verifier errors."""
    try:
        constraints = verifier["constraints"]
        if not isinstance(completion, str) or not completion.strip() or not constraints:
            return 0.0
        met = 0
        for c in constraints:
            try:
                met += bool(CHECKS[c["type"]](completion, c))
            except Exception as exc:  # a malformed constraint (or a check's bug): not met, and counted
                record_verifier_error(DOMAIN, exc)
        return met / len(constraints)
    except Exception as exc:  # a malformed verifier (no constraint list): 0, counted
        record_verifier_error(DOMAIN, exc)
        return 0.0


def reward(prompts, completions, **columns) -> list[float | None]:
    """TRL reward function: verify() per row of this domain, None for rows of other domains."""
    return domain_reward(DOMAIN, verify, completions, columns)


def _grades(i=2, v=2, t=2, h=2) -> dict:
    return {"instruction_following": i, "verbosity": v, "truthfulness": t, "harmlessness": h}


def reference_grades(item: dict) -> dict:
    """The reference meets every constraint and is short: 2 on every dimension."""
    return _grades()


def _filler_for(spec: dict, bound: int) -> int:
    """How many filler clauses push the reference past `bound` words."""
    words, per = len(build(spec).split()), len(FILLER.split())
    return (bound - words) // per + 1


# constraint type -> spec edit that breaks exactly that constraint (word bounds are handled apart)
VIOLATIONS = {
    "sentences": lambda s, c: {**s, "n": s["n"] + 1},
    "paragraphs": lambda s, c: {**s, "n": s["n"] + 1},
    "bullets": lambda s, c: {**s, "n": s["n"] + 1},
    "json": lambda s, c: {**s, "structure": "plain", "n": 2},
    "include": lambda s, c: {**s, "keywords": s["keywords"][1:]},
    "exclude": lambda s, c: {**s, "keywords": s["keywords"] + c["words"][:1]},
    "no_commas": lambda s, c: {**s, "comma": True},
    "lowercase": lambda s, c: {**s, "case": None},
    "uppercase": lambda s, c: {**s, "case": None},
    "ends_with": lambda s, c: {**s, "end": None},
    "starts_with": lambda s, c: {**s, "start": None},
    "max_words": lambda s, c: {**s, "filler": _filler_for(s, c["n"])},
}


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """One violation per constraint, plus (when no upper word bound) a padded-but-compliant reply."""
    spec, constraints = item["verifier"]["spec"], item["verifier"]["constraints"]
    single = len(constraints) == 1
    out = []
    for c in constraints:
        if c["type"] == "min_words":
            words = item["reference"].split()
            text, grades = " ".join(words[: max(1, c["n"] // 2)]), _grades(i=0 if single else 1, v=0)
        else:
            text = build(VIOLATIONS[c["type"]](spec, c))
            grades = _grades(i=0 if single else 1, v=0 if c["type"] == "max_words" else 2)
        out.append({"kind": f"violate_{c['type']}", "completion": text, "level": 3 if single else 2,
                    "grades": grades, "verifiable": True})
    if not any(c["type"] == "max_words" for c in constraints):
        out.append({"kind": "padded", "completion": build({**spec, "filler": rng.randint(2, 3)}), "level": 1,
                    "grades": _grades(v=0), "verifiable": False})
    return out
