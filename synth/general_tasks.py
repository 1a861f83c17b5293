"""General writing tasks: short messages that must say given facts, in a register, in a length, avoiding given words.

What it does: each item asks for one short message, e.g. "Write a short message to Maya saying: the team meeting
moved to Friday at 3:15 pm; it will be in Room 4. Be formal: open with 'Dear' or 'Hello', and use no
contractions and no exclamation marks. Use at most 30 words. Do not use the word 'urgent'." Scenarios
(reschedule, reminder, thanks, request, announcement, directions) are lists of points, each a clause the prompt
asks for and the sentence the reference says it with; slots are filled from the summarize family's pools
(synth/summarize_tasks.POOLS: names, days, times, places, items, events, parties, shops). Values come from one
random stream (the same seed gives the same facts at every difficulty); the register, the opener, the
forbidden words and the prompt's phrasing come from a second, surface stream.

Registers and their checkable markers (REGISTERS; the prompt states them, synth/general_gold.py checks them):
- formal: opens with "Dear" or "Hello"; no contractions ("can't", "I'll", "it's", ...); no "!";
- friendly: opens with "Hi" or "Hey".

Difficulty (0-3) adds constraints to the same facts: 0 says the scenario's first two points and avoids one
word within a length of the reference's words + 10 (rounded up to a multiple of 5); 1 adds the third point;
2 a second forbidden word; 3 tightens the length to the reference's words + 5. The policy models are tiny, so
references stay under MAX_REFERENCE (150) characters: "<opener> <name>, " and the points' sentences.

Item fields: prompt, domain, verifier ({}: open-ended, no verifier visible to training code), source,
reference, identity and `gold`, the hidden rubric's input (synth/general_gold.py): {"facts": the recipient and
every slot value the prompt asks to say, "max_words", "register", "forbidden": the words to avoid, "prompt":
the request's text (what truthfulness checks values against)}. The builders never copy `gold` into a dataset
row, so only evaluation, which regenerates the items, can read it; `corrupt` reads only the reference and the
prompt.

No verifier reward, deliberately (as for summaries): `verify` returns 0.0 and `reward` None for every row; the
reward model grades this family and the gold rubric is for evaluation only.

Problem identity ("identity", the split key): the scenario, the recipient and every drawn slot value, the
third point's included at every difficulty, e.g. "general:reschedule(Maya,team meeting,Friday,3:15 pm,Room 4,
slides)". Register, opener, forbidden words, length and phrasing are not part of it, so the variants of one
request (and all its difficulties) land on the same side of the train/dev/test split.

Simplifies: template English, a fixed scenario menu, two registers marked by their opener (and, formally, by
no contractions and no "!"), forbidden words matched as whole words.

Run: python -c "import synth.general_tasks as m; print(m.generate(2, seed=0))"
"""
import math
import random
import re

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS
from synth.summarize_tasks import NAMES, POOLS, mentions
# the open-ended interface is the summarize family's: verify is always 0.0 and reward None (no verifier reward)
from synth.summarize_tasks import reward, verify  # noqa: F401

DOMAIN = "general"
MAX_DIFFICULTY = 3
MAX_REFERENCE = 150
REGISTERS = {"formal": ("Dear", "Hello"), "friendly": ("Hi", "Hey")}  # the openers that mark each register
HINTS = {"formal": "Be formal: open with 'Dear' or 'Hello', and use no contractions and no exclamation marks.",
         "friendly": "Be friendly: open with 'Hi' or 'Hey'."}

# A point: (what the prompt asks to say, the reference's sentence). The third point is added from difficulty 1.
# Points after the first carry at most two slots, so dropping one keeps at least half the facts (see corrupt).
# Slot "name2" draws from pool "name" (trailing digits dropped); values within one item are distinct.
SCENARIOS = {
    "reschedule": [("the {event} moved to {day} at {time}", "The {event} has moved to {day} at {time}."),
                   ("it will be in {place}", "It will be in {place}."),
                   ("bring the {item}", "Please bring the {item}.")],
    "reminder": [("the {event} is on {day} at {time}", "A reminder: the {event} is on {day} at {time}."),
                 ("bring the {item}", "Please bring the {item}."),
                 ("we meet in {place}", "We meet in {place}.")],
    "thanks": [("thank them for the {item}", "Thank you for the {item}."),
               ("it helped with the {event} on {day}", "It helped a lot with the {event} on {day}."),
               ("{name2} says thanks too", "{name2} says thank you too.")],
    "request": [("ask them to send the {item} by {day}", "Could you send the {item} by {day}?"),
                ("it is for the {event} at {time}", "It is for the {event} at {time}."),
                ("{name2} will collect it", "{name2} will collect it.")],
    "announcement": [("the {party} for {name2} is on {day} at {time}",
                      "The {party} for {name2} is on {day} at {time}."),
                     ("it will be in {place}", "It will be in {place}."),
                     ("reply by {day2}", "Please reply by {day2}.")],
    "directions": [("meet at {place} at {time}", "Please meet at {place} at {time}."),
                   ("the entrance is next to {shop}", "The entrance is next to {shop}."),
                   ("ask for {name2} at the desk", "Ask for {name2} at the desk.")],
}
# Words a prompt may forbid, each with a tempting sentence that uses it (the forbidden_word corruption).
FORBIDDEN = {"urgent": "This is urgent.", "sorry": "Sorry for the short notice.", "important": "This is important.",
             "asap": "Please reply asap.", "really": "It really matters.", "quickly": "Please act quickly.",
             "kindly": "Kindly confirm.", "soon": "Talk soon.", "definitely": "It will definitely help.",
             "problem": "Tell me of any problem."}
INTROS = ["Write a short message to {name} saying: {points}.", "Send {name} a short note saying: {points}.",
          "Write {name} a brief message that says: {points}."]
LENGTHS = ["Use at most {n} words.", "Keep it to {n} words or fewer."]
AVOIDS = ["Do not use the {word} {words}.", "Never use the {word} {words}."]
SLACK = {0: 10, 1: 10, 2: 10, 3: 5}  # words allowed beyond the reference's, by difficulty


def _slots(templates) -> list[str]:
    """Slot names ("{day}" -> "day") in order of first appearance across templates."""
    return list(dict.fromkeys(re.findall(r"\{(\w+)\}", " ".join(templates))))


def _fill(points: list[tuple[str, str]], rng: random.Random) -> dict:
    """A value for every slot of every point (all three, whatever the difficulty); distinct within a pool."""
    values, shuffled = {}, {}
    for slot in _slots(ask for ask, _ in points):
        pool = slot.rstrip("0123456789")
        if pool not in shuffled:
            shuffled[pool] = rng.sample(POOLS[pool], len(POOLS[pool]))
        values[slot] = shuffled[pool].pop()
    return values


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _reference(opener: str, recipient: str, sentences: list[str]) -> str:
    return f"{opener} {recipient}, {_lower_first(sentences[0])}" + "".join(" " + s for s in sentences[1:])


def _prompt(recipient: str, asks: list[str], register: str, limit: int, forbidden: list[str],
            surface: random.Random) -> str:
    words = " or ".join(f"'{w}'" for w in forbidden)
    return " ".join([surface.choice(INTROS).format(name=recipient, points="; ".join(asks)), HINTS[register],
                     surface.choice(LENGTHS).format(n=limit),
                     surface.choice(AVOIDS).format(word="words" if len(forbidden) > 1 else "word", words=words)])


def make_item(scenario: str, rng: random.Random, surface: random.Random, difficulty: int) -> dict:
    """The item of `scenario`: recipient and values from `rng`; register, opener, words to avoid from `surface`."""
    points = SCENARIOS[scenario]
    recipient = rng.choice(NAMES)
    values = _fill(points, rng)
    while recipient in values.values():  # the recipient is never also a name in the message
        recipient = rng.choice(NAMES)
    used = points if difficulty >= 1 else points[:2]
    register = surface.choice(sorted(REGISTERS))
    reference = _reference(surface.choice(REGISTERS[register]), recipient, [s.format(**values) for _, s in used])
    limit = 5 * math.ceil((len(reference.split()) + SLACK[difficulty]) / 5)
    allowed = [w for w in sorted(FORBIDDEN) if not mentions(reference, w)]
    forbidden = surface.sample(allowed, 1 if difficulty < 2 else 2)
    prompt = _prompt(recipient, [ask.format(**values) for ask, _ in used], register, limit, forbidden, surface)
    facts = [recipient] + [values[slot] for slot in _slots(ask for ask, _ in used)]
    identity = f"{DOMAIN}:{scenario}({','.join([recipient, *values.values()])})"
    return {"prompt": [{"role": "user", "content": prompt}], "domain": DOMAIN, "verifier": {},
            "source": f"synth/general/{scenario}", "reference": reference, "identity": identity,
            "gold": {"facts": facts, "max_words": limit, "register": register, "forbidden": forbidden,
                     "prompt": prompt}}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n short-message items (scenarios mixed), deterministic for the arguments."""
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UserError(f"difficulty must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}.")
    rng, surface = random.Random(seed), random.Random(f"general-surface-{seed}")
    return [make_item(rng.choice(sorted(SCENARIOS)), rng, surface, difficulty) for _ in range(n)]


def problem_identity(item: dict) -> str:
    """The scenario, recipient and drawn values: "general:<scenario>(<recipient>,<values>)"."""
    identity = item.get("identity") if isinstance(item, dict) else None
    if not isinstance(identity, str) or not identity:
        raise ValueError("a general item carries its problem identity in 'identity'; this one has none")
    return identity


def _grades(**low) -> dict:
    """2 on every grading dimension but the ones given (e.g. `_grades(truthfulness=0)`)."""
    return {**dict.fromkeys(GRADE_DIMENSIONS, 2), **low}


def reference_grades(item: dict) -> dict:
    """A message with every fact, in register, within the length, no forbidden word: 2 on every dimension."""
    return _grades()


PADDING = ["I hope this message finds you well.", "Thank you for your time and help.",
           "Let me know if anything is unclear.", "I look forward to hearing from you."]
INSULT = "Do not forget, idiot."


def _swap_register(reference: str) -> str:
    opener, _, rest = reference.partition(" ")
    other = "friendly" if opener in REGISTERS["formal"] else "formal"
    return f"{REGISTERS[other][0]} {rest}"


def _drop_sentence(reference: str, rng: random.Random) -> str:
    """The reference without one of its sentences after the first (which holds the greeting)."""
    sentences = re.split(r"(?<=[.?])\s+", reference)
    del sentences[rng.randrange(1, len(sentences))]
    return " ".join(sentences)


def _too_long(reference: str, limit: int) -> str:
    """The reference padded with polite filler to at least twice the word limit (verbosity 0)."""
    text, i = reference, 0
    while len(text.split()) < 2 * limit:
        text, i = f"{text} {PADDING[i % len(PADDING)]}", i + 1
    return text


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """Worse messages: a point left out, an invented name, the other register, a forbidden word, padding, an insult.

    Built from the reference and the prompt only (never from the hidden `gold`); each flaw hits one dimension,
    graded as synth/general_gold.grades grades its rubric score.
    """
    reference, prompt = item["reference"], item["prompt"][-1]["content"]
    limit = int(re.search(r"(\d+) words", prompt).group(1))
    forbidden = [w for w in re.findall(r"'([a-z]+)'", prompt) if w in FORBIDDEN]
    stranger = rng.choice([n for n in NAMES if not mentions(prompt, n)])
    flaws = [  # kind, completion, preference level, the grades it lowers
        ("missing_fact", _drop_sentence(reference, rng), 2, {"instruction_following": 1}),
        ("invented_fact", f"{reference} {stranger} will be there too.", 3, {"truthfulness": 0}),
        ("wrong_register", _swap_register(reference), 1, {"instruction_following": 1}),
        ("forbidden_word", f"{reference} {FORBIDDEN[rng.choice(forbidden)]}", 1, {"instruction_following": 1}),
        ("too_long", _too_long(reference, limit), 2, {"verbosity": 0}),
        ("insult", f"{reference} {INSULT}", 3, {"harmlessness": 0}),
    ]
    return [{"kind": kind, "completion": text, "level": level, "grades": _grades(**low), "verifiable": False}
            for kind, text, level, low in flaws]
