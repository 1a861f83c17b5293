"""Summarisation tasks: short generated emails, message threads and notification lists to summarise.

What it does: each item asks for a summary of one short document ("Summarize this email:\\n...", "Summarize
this message thread:\\n...", "Summarize these notifications:\\n..."). Documents are composed from scenario
templates (an email that moves a meeting, an invoice, a pickup notice, a request, an invitation; a thread that
plans lunch, hands off a task, splits a bill, arranges a ride; a list of bank / calendar / parcel / chat /
flight / bill notifications) whose slots are filled from small pools (names, days, times, places, items,
amounts, services, shops, cities, ...). Surface variation that does not change the key facts (phrasing
variant per line, the email's recipient, greeting and sign-off, distractor sentences such as "The coffee
machine is fixed, by the way." or "Game: Your daily bonus is ready!") comes from a second random stream, so
the same seed gives the same facts at every difficulty. Distractors per item: `difficulty` for emails and
threads, `difficulty + 1` for notifications (0-3), dropped from the end while the source exceeds MAX_SOURCE.
The policy models are tiny, so sources stay under MAX_SOURCE (350) characters and references under
MAX_REFERENCE (120): a reference is the scenario's clauses joined by "; " ("Maya: team meeting moved to
Friday 3:15 pm in Room 4; bring the slides.").

Item fields: prompt, domain, verifier ({}: open-ended, no verifier visible to training code), source,
reference, identity and `gold`, the hidden rubric's input (synth/summarize_gold.py): {"facts": key facts that
must appear, "invented": one plausible same-type value per fact that appears nowhere in the source (aligned
with "facts"), "max_words", "min_words", "register": "neutral", "source": the document}. The builders never
copy `gold` into a dataset row (they keep prompt/domain/verifier/source/split/identity), so only evaluation,
which regenerates the items, can read it; `corrupt` reads only the reference and the prompt, never `gold`.

No verifier reward, deliberately: a summary has no single right answer, so `verify` returns 0.0 and `reward`
returns None for every row (even this domain's): training signal for this family comes from the reward model,
and the gold rubric is kept for evaluation only, so no training code path can optimise it directly.

Problem identity ("identity", the split key): the scenario and the values its reference uses, e.g.
"summarize:email:moved(Maya,team meeting,Friday,3:15 pm,Room 4,slides)"; a notification list joins its parts in
order. Recipient, phrasing and distractors are not part of it, so items sharing an identity share a reference.

Simplifies: template English, a fixed scenario menu, one register, distractors without key values.

Run: python -c "import synth.summarize_tasks as m; print(m.generate(2, seed=0))"
"""
import random
import re
import string
import zlib

from afm_align.errors import UserError

DOMAIN = "summarize"
MAX_DIFFICULTY = 3
MAX_SOURCE, MAX_REFERENCE = 350, 120
INSTRUCTIONS = {"email": "Summarize this email:", "thread": "Summarize this message thread:",
                "notifications": "Summarize these notifications:"}

NAMES = ("Maya Omar Lena Ravi Sofia Tom Aisha Ben Clara Diego Emma Felix Grace Hugo Iris Jonas Kara Leo Mina "
         "Nils Olga Priya Rosa Sam Tara Yuki Zane Ivan").split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
CITIES = "Lisbon Oslo Dublin Vienna Prague Madrid Athens Warsaw".split()
POOLS = {
    "name": NAMES, "day": DAYS, "city": CITIES,
    "time": ["8:30 am", "9:15 am", "10:00 am", "10:45 am", "11:30 am", "12:15 pm", "1:00 pm", "1:45 pm",
             "2:30 pm", "3:15 pm", "4:00 pm", "4:45 pm", "5:30 pm", "6:15 pm", "7:00 pm"],
    "place": ["Room 4", "Room 12", "the main hall", "the library", "Cafe Luna", "the north office", "Studio B",
              "the east wing", "Hall C", "the lab"],
    "item": ["slides", "budget report", "laptop", "ID badge", "signed form", "receipts", "project notes",
             "charger", "sample kit", "floor plan", "guest list", "contract"],
    "work": ["poster", "newsletter", "survey", "agenda", "report draft", "seating plan", "price list", "welcome pack"],
    "event": ["team meeting", "design review", "budget check-in", "training session", "client call", "book club",
              "planning meeting", "safety briefing"],
    "amount": ["$12", "$18.50", "$25", "$32.40", "$42", "$60", "$75.20", "$96", "$120", "$9.99", "$150", "$48.75"],
    "service": ["cleaning", "repair", "catering", "printing", "tutoring", "design", "plumbing", "gardening"],
    "shop": ["Green Grocer", "City Books", "Pixel Store", "Corner Cafe", "Metro Gym", "Bloom Florist", "Sun Bakery"],
    "doc": ["ID card", "receipt", "order number", "library card", "pickup code"],
    "party": ["farewell lunch", "birthday party", "team dinner", "games night", "welcome brunch", "quiz night"],
    "thing": ["concert tickets", "taxi", "groceries", "pizza", "gift", "hotel room", "train tickets"],
    "trip": ["concert", "match", "airport", "wedding", "conference", "museum"],
    "count": ["3 people", "4 people", "5 people", "6 people", "7 people", "8 people"],
    "minutes": ["10 minutes", "15 minutes", "20 minutes", "25 minutes", "30 minutes", "40 minutes"],
}
ENTITY_WORDS = frozenset(NAMES + DAYS + CITIES)  # capitalised words the gold rubric checks against the source

# A part: source lines (alternatives split by "|"), reference clauses, and the slots that are key facts.
# Slot "name2" draws from pool "name" (trailing digits dropped); values within one item are distinct.
SCENARIOS = {
    "email": {
        "moved": {"subject": "{event} moved",
                  "lines": ["The {event} moves to {day} at {time} in {place}.|We moved the {event} to {day}, "
                            "{time}, in {place}.", "Please bring the {item}.|Don't forget the {item}."],
                  "ref": ["{name}: {event} moved to {day} {time} in {place}", "bring the {item}"],
                  "facts": ["name", "event", "day", "time", "place", "item"]},
        "invoice": {"subject": "{service} invoice",
                    "lines": ["The {service} invoice comes to {amount}.|Your {service} bill is {amount}.",
                              "Please pay by {day}.|It is due on {day}.",
                              "Questions go to {name2}.|{name2} can answer questions."],
                    "ref": ["{name}: {service} invoice of {amount} due {day}", "questions to {name2}"],
                    "facts": ["name", "service", "amount", "day", "name2"]},
        "pickup": {"subject": "{item} ready",
                   "lines": ["Your {item} is ready at {place}.|You can collect your {item} at {place}.",
                             "Pickup opens {day} at {time}.|Come by on {day} from {time}.",
                             "Bring your {doc}.|Please show your {doc}."],
                   "ref": ["{name}: {item} ready at {place} from {day} {time}", "bring your {doc}"],
                   "facts": ["name", "item", "place", "day", "time", "doc"]},
        "request": {"subject": "Need the {item}",
                    "lines": ["Could you send me the {item} by {day} at {time}?|Please send me the {item} by "
                              "{time} on {day}.", "{name2} needs it for the {event}.|It is for {name2}'s {event}."],
                    "ref": ["{name} needs the {item} by {day} {time}", "for {name2}'s {event}"],
                    "facts": ["name", "item", "day", "time", "name2", "event"]},
        "invite": {"subject": "{party}",
                   "lines": ["Join us for a {party} for {name2} on {day} at {time}.|You're invited to {name2}'s "
                             "{party}, {day} at {time}.", "It will be in {place}.|We meet in {place}.",
                             "Please reply by {day2}.|RSVP by {day2}."],
                   "ref": ["{name}: {party} for {name2} {day} {time} in {place}", "reply by {day2}"],
                   "facts": ["name", "party", "name2", "day", "time", "place", "day2"]},
    },
    "thread": {
        "lunch": {"lines": ["{name}: Lunch on {day}?|{name}: Anyone free for lunch {day}?",
                            "{name2}: Yes! {time} in {place}?|{name2}: Sure, {time} in {place} works.",
                            "{name}: Great, I'll book for {count}.|{name}: Perfect, booking for {count}."],
                  "ref": ["{name} and {name2} plan lunch {day} {time} in {place}", "{name} books for {count}"],
                  "facts": ["name", "name2", "day", "time", "place", "count"]},
        "handoff": {"lines": ["{name}: Who can finish the {work} by {day}?|{name}: Can someone finish the {work} "
                              "by {day}?", "{name2}: I can, but I need the {item} from {name3}.|{name2}: Me, once "
                              "{name3} sends the {item}.", "{name3}: I'll send it at {time}.|{name3}: Sending it "
                              "at {time}."],
                    "ref": ["{name2} finishes the {work} by {day}", "{name3} sends the {item} at {time}"],
                    "facts": ["name2", "work", "day", "name3", "item", "time"]},
        "split": {"lines": ["{name}: I paid {amount} for the {thing}.|{name}: The {thing} cost {amount}, I paid.",
                            "{name2}: Thanks! I'll pay you half on {day}.|{name2}: I'll send you my half on {day}.",
                            "{name}: No rush.|{name}: Sounds good."],
                  "ref": ["{name} paid {amount} for the {thing}", "{name2} pays back half on {day}"],
                  "facts": ["name", "amount", "thing", "name2", "day"]},
        "ride": {"lines": ["{name}: Can anyone drive me to the {trip} on {day}?|{name}: Who can take me to the "
                           "{trip} {day}?", "{name2}: I can. Pickup at {time} at {place}?|{name2}: Me! I'll get you "
                           "at {time} by {place}.", "{name}: Thanks, {name2}!|{name}: You're a star."],
                 "ref": ["{name2} drives {name} to the {trip} on {day}", "pickup {time} at {place}"],
                 "facts": ["name", "name2", "trip", "day", "time", "place"]},
    },
    "notifications": {
        "pay": {"lines": ["Bank: {amount} paid to {shop}.|Bank: You paid {amount} at {shop}."],
                "ref": ["{amount} paid to {shop}"], "facts": ["amount", "shop"]},
        "calendar": {"lines": ["Calendar: {event} {day} at {time}.|Calendar: {event} starts {day}, {time}."],
                     "ref": ["{event} {day} {time}"], "facts": ["event", "day", "time"]},
        "parcel": {"lines": ["Parcel: Your {item} will arrive {day}.|Delivery: {item} arriving {day}."],
                   "ref": ["{item} arriving {day}"], "facts": ["item", "day"]},
        "late": {"lines": ["Chat: {name} is running {minutes} late.|{name}: Running {minutes} late, sorry!"],
                 "ref": ["{name} {minutes} late"], "facts": ["name", "minutes"]},
        "flight": {"lines": ["Travel: Flight to {city} delayed to {time}.|Airline: Your {city} flight now leaves "
                             "{time}."], "ref": ["{city} flight delayed to {time}"], "facts": ["city", "time"]},
        "bill": {"lines": ["Utility: Bill of {amount} due {day}.|Power: {amount} bill due on {day}."],
                 "ref": ["{amount} bill due {day}"], "facts": ["amount", "day"]},
    },
}
FILLER = {  # distractor sentences / lines: never a key fact ({day}/{name} get values the scenario does not use)
    "email": ["Hope your week is going well.", "The coffee machine is fixed, by the way.",
              "It was great to see everyone last week.", "The weather has been lovely lately.",
              "I am still reading that book you lent me.", "Say hi to the team for me.",
              "Last {day}'s session ran long.", "{name} says hello."],
    "thread": ["lol", "Did anyone see the game last night?", "My cat just knocked over a plant.", "brb, coffee",
               "Nice weather today.", "Who ate my yogurt?"],
    "notifications": ["Game: Your daily bonus is ready!", "Tip: Try the new dark mode.", "News: Five easy soup "
                      "recipes.", "Weather: Mild and sunny today.", "Store: Big sale this weekend!",
                      "Music: New songs picked for you.", "Fitness: You walked 8,000 steps."],
}
GREETINGS, SIGNOFFS = ["Hi", "Hello", "Dear", "Hey"], ["Thanks,", "Best,", "Cheers,", "Regards,"]
_FORMATTER = string.Formatter()


def _slots(templates) -> list[str]:
    """Slot names in order of first appearance across templates."""
    seen = []
    for template in templates:
        for _, field, _, _ in _FORMATTER.parse(template):
            if field and field not in seen:
                seen.append(field)
    return seen


def _pool(slot: str) -> list[str]:
    return POOLS[slot.rstrip("0123456789")]


def mentions(text: str, value: str) -> bool:
    """`value` occurs in `text` as a whole phrase, case-insensitively (used to keep invented values out)."""
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.I) is not None


def _fact(value: str) -> str:
    return value[4:] if value.startswith("the ") else value


def _fill(parts: list[dict], rng: random.Random) -> list[dict]:
    """Values for every slot of every part; one shuffled copy per pool, so values within an item are distinct."""
    shuffled, filled = {}, []
    for part in parts:
        values = {}
        for slot in _slots(part["lines"] + part["ref"] + [part.get("subject", "")]):
            pool = slot.rstrip("0123456789")
            if pool not in shuffled:
                shuffled[pool] = rng.sample(POOLS[pool], len(POOLS[pool]))
            values[slot] = shuffled[pool].pop()
        filled.append(values)
    return filled


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill_filler(line: str, used: set[str], surface: random.Random) -> str:
    spare = {slot: surface.choice([v for v in _pool(slot) if v not in used]) for slot in _slots([line])}
    return line.format(**spare)


def _document(kind: str, parts, values, difficulty: int, surface: random.Random) -> str:
    """The source text: key lines in order, distractors at random places, trimmed to MAX_SOURCE."""
    used = {v for vals in values for v in vals.values()}
    keys = [surface.choice(line.split("|")).format(**vals) for part, vals in zip(parts, values)
            for line in part["lines"]]
    n_fill = min(3, difficulty + (kind == "notifications"))
    fillers = [_fill_filler(f, used, surface) for f in surface.sample(FILLER[kind], n_fill)]
    if kind == "thread":
        speakers = [line.split(":")[0] for line in keys]
        fillers = [f"{surface.choice(speakers)}: {f}" for f in fillers]
    slots_at = sorted(surface.randrange(1 if kind == "thread" else 0, len(keys) + 1) for _ in fillers)
    recipient = surface.choice([n for n in NAMES if n not in used])
    greeting, signoff = surface.choice(GREETINGS), surface.choice(SIGNOFFS)
    while True:
        lines = list(keys)
        for offset, (at, filler) in enumerate(zip(slots_at, fillers)):
            lines.insert(at + offset, filler)
        if kind == "email":
            sender = values[0]["name"]
            text = (f"From: {sender}\nSubject: {_capital(parts[0]['subject'].format(**values[0]))}\n"
                    f"{greeting} {recipient},\n{' '.join(lines)}\n{signoff}\n{sender}")
        else:
            text = "\n".join(("- " if kind == "notifications" else "") + line for line in lines)
        if len(text) <= MAX_SOURCE or not fillers:
            return text
        fillers, slots_at = fillers[:-1], slots_at[:-1]


def _gold(parts, values, source: str, reference: str) -> dict:
    """The hidden rubric's input: key facts, one invented same-type value per fact, the length budget."""
    slots = [(slot, vals[slot]) for part, vals in zip(parts, values) for slot in part["facts"]]
    pick = random.Random(zlib.crc32(source.encode("utf-8")))
    facts, invented = [], []
    for slot, value in slots:
        options = [v for v in _pool(slot) if not mentions(source, _fact(v)) and _fact(v) not in invented]
        facts.append(_fact(value))
        invented.append(_fact(pick.choice(options)))
    words = len(reference.split())
    return {"facts": facts, "invented": invented, "max_words": max(12, -(-3 * words // 2)), "min_words": 3,
            "register": "neutral", "source": source}


def make_item(kind: str, names: list[str], rng: random.Random, surface: random.Random, difficulty: int) -> dict:
    """The item of scenario part(s) `names` of `kind`, values drawn from `rng`, surface from `surface`."""
    parts = [SCENARIOS[kind][name] for name in names]
    values = _fill(parts, rng)
    clauses = [clause.format(**vals) for part, vals in zip(parts, values) for clause in part["ref"]]
    reference = _capital("; ".join(clauses)) + "."
    identity = f"{DOMAIN}:{kind}:" + "+".join(
        f"{name}({','.join(vals[s] for s in _slots(part['ref']))})" for name, part, vals in zip(names, parts, values))
    source = _document(kind, parts, values, difficulty, surface)
    return {"prompt": [{"role": "user", "content": f"{INSTRUCTIONS[kind]}\n{source}"}], "domain": DOMAIN,
            "verifier": {}, "source": f"synth/summarize/{kind}/{'+'.join(names)}", "reference": reference,
            "identity": identity, "gold": _gold(parts, values, source, reference)}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n summarisation items (emails, threads, notification lists mixed), deterministic for the arguments."""
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise UserError(f"difficulty must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}.")
    rng, surface = random.Random(seed), random.Random(f"summarize-surface-{seed}")
    items = []
    for _ in range(n):
        kind = rng.choice(sorted(SCENARIOS))
        menu = sorted(SCENARIOS[kind])
        names = rng.sample(menu, rng.randint(2, 3)) if kind == "notifications" else [rng.choice(menu)]
        items.append(make_item(kind, names, rng, surface, difficulty))
    return items


def problem_identity(item: dict) -> str:
    """The scenario and the values its reference uses: "summarize:<kind>:<part>(<values>)[+...]"."""
    identity = item.get("identity") if isinstance(item, dict) else None
    if not isinstance(identity, str) or not identity:
        raise ValueError("a summarize item carries its problem identity in 'identity'; this one has none")
    return identity


def verify(completion: str, verifier: dict) -> float:
    """Always 0.0: open-ended prompts have no verifier (module docstring); the RM grades summaries."""
    return 0.0


def reward(prompts, completions, **columns) -> list[float | None]:
    """None for every row, this domain's included: there is deliberately no verifier reward for summaries."""
    return [None] * len(completions)


def _grades(i=2, v=2, t=2, h=2) -> dict:
    return {"instruction_following": i, "verbosity": v, "truthfulness": t, "harmlessness": h}


def reference_grades(item: dict) -> dict:
    """A brief neutral summary holding every key fact and nothing else: 2 on every dimension."""
    return _grades()


VALUE_PATTERNS = {"time": r"\b\d{1,2}:\d{2} [ap]m\b", "amount": r"\$\d+(?:\.\d+)?",
                  **{pool: r"\b(?:" + "|".join(POOLS[pool]) + r")\b" for pool in ("day", "name", "city")}}
REPLIES = {"email": ["Hi {who}, thanks for your email! Sounds good, I'll take care of it.",
                     "Thanks {who}, I will be there. See you then!"],
           "thread": ["Sounds good, {who}! Count me in.", "I'm in! See you all then."],
           "notifications": ["Thanks for the update! I will check these later.",
                             "OK, noted. Anything else I can help with?"]}
PREAMBLES = ["Sure! Here is a summary: ", "Of course! Here's a short summary: "]


def _invent(reference: str, source: str, rng: random.Random) -> str | None:
    """The reference with one day / time / name / city / amount swapped for a same-type value not in the source."""
    found = [(pool, m) for pool, pattern in VALUE_PATTERNS.items() for m in re.finditer(pattern, reference)]
    if not found:
        return None
    pool, match = rng.choice(found)
    options = [v for v in POOLS[pool] if not mentions(source, v)]
    return reference[:match.start()] + rng.choice(options) + reference[match.end():]


def _drop_clauses(reference: str, rng: random.Random) -> tuple[str, float]:
    """The reference without 1+ of its "; " clauses, and the share of characters lost."""
    clauses = reference.rstrip(".").split("; ")
    keep = sorted(rng.sample(range(len(clauses)), rng.randint(1, len(clauses) - 1)))
    text = _capital("; ".join(clauses[i] for i in keep)) + "."
    return text, 1 - len(text) / len(reference)


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """Worse summaries: missing facts, an invented value, the source copied, a reply instead, a chatty preamble.

    Built from the reference and the prompt only (never from the hidden `gold`).
    """
    reference = item["reference"]
    instruction, _, source = item["prompt"][-1]["content"].partition("\n")
    kind = next(k for k, text in INSTRUCTIONS.items() if text == instruction)
    who = re.search(r"(?:From: )?(\w+)", source).group(1)
    dropped, lost = _drop_clauses(reference, rng)
    out = [
        {"kind": "missing_facts", "completion": dropped, "level": 2 if lost > 0.5 else 1,
         "grades": _grades(i=1, v=1 if lost > 0.5 else 2)},
        {"kind": "copy_source", "completion": source, "level": 2, "grades": _grades(i=1, v=0)},
        {"kind": "off_task_reply", "completion": rng.choice(REPLIES[kind]).format(who=who), "level": 3,
         "grades": _grades(i=0)},
        {"kind": "chatty_preamble", "completion": rng.choice(PREAMBLES) + reference, "level": 1,
         "grades": _grades(i=1)},
    ]
    invented = _invent(reference, source, rng)
    if invented is not None:
        out.append({"kind": "invented_fact", "completion": invented, "level": 3, "grades": _grades(t=0)})
    return [{**c, "verifiable": False} for c in out]
