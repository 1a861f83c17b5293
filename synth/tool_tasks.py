"""Tool-use task family (AFM report §6.2): function calling with similar distractor tools, parallel calls,
multi-step use of a tool result, and tool-intent prompts where the right answer is no call at all.

Prompt rendering (exact): the first message is a system message
    "Tools: " + json.dumps([schema, ...], separators=(",", ":")) + "\n" + CALL_INSTRUCTION
where the schemas are the candidate tools' OpenAI function definitions (synth.tool_registry), in a
shuffled order. The oracle tool always comes with the two other tools of its group (get_weather /
get_forecast / get_air_quality) and, with difficulty, tools from other groups (MAX_TOOLS at most).
Calls are lines ``<tool_call>{"name":"...","arguments":{...}}</tool_call>`` (synth.tool_checker);
a response with no call is plain text. Kinds of item (verifier["kind"] in brackets):
  single    one call                                        [calls]
  parallel  2-3 calls of one group in one reply            [calls]
  chain     a first call and its ``tool`` result are in the prompt; the reply is the next call using
            a value from that result (e.g. find_nearby -> get_directions)   [calls]
  multistep the call and its ``tool`` result are in the prompt; the reply is a plain-text answer that
            must contain the key values of the result      [answer]
  no_call   chit-chat, a question answerable directly, or a request no listed tool can do [no_call]
Verifiers: calls -> {"kind": "calls", "tools": [names], "expected": [BFCL possible answers]};
answer/no_call -> {"kind": ..., "tools": [names], "must_contain": [values]} (numbers match numerically,
strings case-insensitively on word boundaries). verify() is all-or-nothing (no partial credit for a
subset of parallel calls): 1.0 only for exactly the right calls, or no call plus every key value.
Malformed calls in a reply are a plain 0; an exception while verifying (a malformed verifier, an unknown tool,
a bug) is the verifier's fault: 0, and counted as a tool verifier error (`synth.families.record_verifier_error`).
Difficulty 0..3 moves the mix from single calls and tool-intent prompts towards parallel, chain and
multi-step items, adds unrelated tools and mentions optional parameters more often.

Problem identity (what the train/dev/test split hashes, `problem_identity`): the meaning of the reference,
"tool:calls:" + the reference's calls as canonical JSON (names and arguments, sorted keys, calls sorted), or
"tool:text:" + the plain-text reply (a final answer built from the tool result, a chit-chat or fact reply, the
unsupported-request reply of a tool group). The tools offered and the wording of the request are not part of it.
Neither is the item kind nor the earlier tool result: a chain item and a single item can end in the very same
call, and a reference must never be in both training and test data; the result's values used are in the
reference anyway. Within one batch, a call item whose request was already drawn is redrawn (up to FRESH_TRIES
times): repeats add weight, not problems, and the small value pools of some tools would otherwise repeat often.

Run: python -c "from synth.tool_tasks import generate; print(generate(2, seed=0, difficulty=2))"
"""

import json
import random
import re

from afm_align.errors import UserError
from synth.families import record_verifier_error
from synth.tool_checker import check_calls, format_call, parse_calls, standardize_string
from synth.tool_registry import CONDITIONS, GOODS, GROUPS, LANDMARKS, PARAM_POOLS, PLACES, STATUSES, TITLES, TOOLS
from synth.reward_signature import domain_reward

DOMAIN = "tool"
CALL_INSTRUCTION = ('Call tools one per line: <tool_call>{"name":...,"arguments":{...}}</tool_call>. '
                    "If no tool is needed or none fits, answer in plain text.")
MAX_TOOLS = 5  # keeps the longest item (difficulty 3) well inside a 512-token context
DIFFICULTY = {  # kind mix, unrelated tools added, most parallel calls, chance an optional parameter is asked for
    0: {"mix": {"single": 0.7, "no_call": 0.3}, "extra": 0, "max_parallel": 2, "opt_p": 0.0},
    1: {"mix": {"single": 0.4, "parallel": 0.2, "multistep": 0.2, "no_call": 0.2}, "extra": 1, "max_parallel": 2,
        "opt_p": 0.2},
    2: {"mix": {"single": 0.25, "parallel": 0.25, "multistep": 0.2, "chain": 0.1, "no_call": 0.2}, "extra": 2,
        "max_parallel": 3, "opt_p": 0.35},
    3: {"mix": {"single": 0.15, "parallel": 0.3, "multistep": 0.2, "chain": 0.15, "no_call": 0.2}, "extra": 2,
        "max_parallel": 3, "opt_p": 0.5},
}
CHITCHAT = [("Hi there!", "Hello! How can I help you today?"), ("Thanks, that was helpful.", "You're welcome!"),
            ("How are you?", "I'm well, thanks. How can I help?"),
            ("Good morning!", "Good morning! What can I do for you?"),
            ("Who are you?", "I'm an assistant that can use tools to help you."), ("Bye!", "Goodbye! Have a great day.")]
FACTS = [("How many days are in a week?", "A week has 7 days.", 7),
         ("How many minutes are in an hour?", "An hour has 60 minutes.", 60),
         ("How many legs does a spider have?", "A spider has 8 legs.", 8),
         ("How many hours are in a day?", "A day has 24 hours.", 24),
         ("How many sides does a triangle have?", "A triangle has 3 sides.", 3),
         ("How many months are in a year?", "A year has 12 months.", 12)]
UNSUPPORTED = "Sorry, I can't do that with the tools I have: none of them handles {group}."
FRESH_TRIES = 3  # redraws of a call item whose problem identity this batch already holds
PAD_BEFORE = ["Sure! Let me take care of that for you right away.", "Great question, I am happy to help with this."]
PAD_AFTER = ["Let me know if there is anything else at all that I can do for you today!",
             "I hope this helps, and feel free to ask me anything else whenever you like."]
_NUM_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ALT_WORDS = TITLES + CONDITIONS + STATUSES


def render_tools(names: list[str]) -> str:
    """The system message listing the candidate tools (compact JSON of their schemas)."""
    schemas = [TOOLS[n].schema for n in names]
    return "Tools: " + json.dumps(schemas, ensure_ascii=False, separators=(",", ":")) + "\n" + CALL_INSTRUCTION


def _first_args(answers: dict) -> dict:
    """The reference arguments: each parameter's first acceptable value, omitted when that is ""."""
    return {k: v[0] for k, v in answers.items() if v and v[0] != ""}


def _calls_text(expected: list[dict]) -> str:
    return "\n".join(format_call(name, _first_args(ans)) for e in expected for name, ans in e.items())


def _candidates(rng: random.Random, groups: list[str], cfg: dict) -> list[str]:
    """All tools of the oracle groups (the similar distractors) plus unrelated ones, shuffled."""
    names = [n for g in groups for n in GROUPS[g]]
    others = [n for n in TOOLS if TOOLS[n].group not in groups]
    names += rng.sample(others, max(0, min(cfg["extra"], MAX_TOOLS - len(names))))
    rng.shuffle(names)
    return names


def _item(kind: str, names: list[str], turns: list[dict], verifier: dict, reference: str, tag: str) -> dict:
    prompt = [{"role": "system", "content": render_tools(names)}] + turns
    return {"prompt": prompt, "domain": DOMAIN, "verifier": {"kind": verifier.pop("kind"), "tools": names, **verifier},
            "source": f"synth/tool/{kind}/{tag}", "reference": reference}


def _single(rng, cfg):
    name = rng.choice(sorted(TOOLS))
    text, answers = TOOLS[name].ask(rng, cfg["opt_p"])
    expected = [{name: answers}]
    names = _candidates(rng, [TOOLS[name].group], cfg)
    return _item("single", names, [{"role": "user", "content": text}],
                 {"kind": "calls", "expected": expected}, _calls_text(expected), name)


def _parallel(rng, cfg):
    group = rng.choice(sorted(GROUPS))
    k = rng.randint(2, cfg["max_parallel"])
    same = rng.choice(GROUPS[group]) if rng.random() < 0.5 else None
    texts, expected, seen = [], [], []
    for _ in range(10 * k):
        name = same or rng.choice(GROUPS[group])
        text, answers = TOOLS[name].ask(rng, cfg["opt_p"])
        key = (name, json.dumps(_first_args(answers), sort_keys=True))
        if key not in seen:
            seen.append(key)
            texts.append(text)
            expected.append({name: answers})
        if len(expected) == k:
            break
    text = texts[0] + "".join(" Also, " + t[0].lower() + t[1:] for t in texts[1:])
    return _item("parallel", _candidates(rng, [group], cfg), [{"role": "user", "content": text}],
                 {"kind": "calls", "expected": expected}, _calls_text(expected), group)


def _history(call_name: str, args: dict, result: dict) -> list[dict]:
    return [{"role": "assistant", "content": format_call(call_name, args)},
            {"role": "tool", "content": json.dumps(result, ensure_ascii=False, separators=(",", ":"))}]


def _multistep(rng, cfg):
    name = rng.choice(sorted(TOOLS))
    tool = TOOLS[name]
    text, answers = tool.ask(rng, cfg["opt_p"])
    args = _first_args(answers)
    result = tool.run(args)
    reference, must = tool.answer(args, result)
    turns = [{"role": "user", "content": text}] + _history(name, args, result)
    return _item("multistep", _candidates(rng, [tool.group], cfg), turns,
                 {"kind": "answer", "must_contain": must}, reference, name)


def _chain_nearby(rng):
    place, loc = rng.choice(PLACES), rng.choice(LANDMARKS)
    args = {"place_type": place, "location": loc}
    res = TOOLS["find_nearby"].run(args)
    nxt = {"origin": [loc, loc.removeprefix("the ")], "destination": [res["name"]], "mode": ["walking"]}
    return f"Find a {place} near {loc} and tell me how to walk there from {loc}.", "find_nearby", args, res, \
        {"get_directions": nxt}


def _chain_cart(rng):
    query, qty = rng.choice(GOODS), rng.randint(1, 4)
    args = {"query": query}
    res = TOOLS["search_products"].run(args)
    return f"Find {query} in the store and add {qty} of the best match to my cart.", "search_products", args, res, \
        {"add_to_cart": {"product_id": [res["id"]], "quantity": [qty]}}


def _chain_cancel(rng):
    date = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    args = {"date": date}
    res = TOOLS["list_events"].run(args)
    event = rng.choice(res["events"])
    nxt = {"delete_event": {"event_id": [event["id"]]}}
    return f"Cancel my {event['title']} on {date}.", "list_events", args, res, nxt


CHAINS = {"nearby_directions": _chain_nearby, "products_cart": _chain_cart, "events_delete": _chain_cancel}


def _chain(rng, cfg):
    tag = rng.choice(sorted(CHAINS))
    text, first, args, result, expected_call = CHAINS[tag](rng)
    expected = [expected_call]
    turns = [{"role": "user", "content": text}] + _history(first, args, result)
    return _item("chain", _candidates(rng, [TOOLS[first].group], cfg), turns,
                 {"kind": "calls", "expected": expected}, _calls_text(expected), tag)


def _no_call(rng, cfg):
    sub = rng.choice(["chitchat", "direct", "unsupported"])
    names = _candidates(rng, [rng.choice(sorted(GROUPS))], cfg)
    if sub == "chitchat":
        text, reference = rng.choice(CHITCHAT)
        must = []
    elif sub == "direct":
        text, reference, answer = rng.choice(FACTS)
        must = [answer]
    else:
        listed_groups = {TOOLS[n].group for n in names}  # a listed sibling tool could fairly serve the request
        missing = sorted(n for n in TOOLS if TOOLS[n].group not in listed_groups)
        wanted = rng.choice(missing)
        text, _ = TOOLS[wanted].ask(rng, cfg["opt_p"])
        reference, must, sub = UNSUPPORTED.format(group=TOOLS[wanted].group), [], f"unsupported/{wanted}"
    return _item("no_call", names, [{"role": "user", "content": text}],
                 {"kind": "no_call", "must_contain": must}, reference, sub)


KINDS = {"single": _single, "parallel": _parallel, "multistep": _multistep, "chain": _chain, "no_call": _no_call}


def generate(n: int, seed: int, difficulty: int = 1) -> list[dict]:
    """n tool-use items, deterministic for (n, seed, difficulty)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive integer, got {n!r}.")
    if isinstance(difficulty, bool) or difficulty not in DIFFICULTY:
        raise UserError(f"difficulty must be one of {sorted(DIFFICULTY)}, got {difficulty!r}.")
    cfg = DIFFICULTY[difficulty]
    rng = random.Random(seed)
    kinds = rng.choices(list(cfg["mix"]), weights=list(cfg["mix"].values()), k=n)
    items, seen = [], set()
    for kind in kinds:
        item = KINDS[kind](rng, cfg)
        for _ in range(0 if kind == "no_call" else FRESH_TRIES):  # no-call replies are few by design
            if problem_identity(item) not in seen:
                break
            item = KINDS[kind](rng, cfg)
        item["identity"] = problem_identity(item)
        seen.add(item["identity"])
        items.append(item)
    return items


def problem_identity(item: dict) -> str:
    """The meaning of the item's reference (module docstring): its calls as canonical JSON, or its plain text.
    A function of the reference alone, so two items with the same reference always share it."""
    calls = parse_calls(item["reference"])
    if calls:
        canon = sorted(calls, key=lambda c: json.dumps(c, sort_keys=True))
        return "tool:calls:" + json.dumps(canon, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "tool:text:" + item["reference"].strip()


# ---------------------------------------------------------------- verification

def contains_value(text: str, value) -> bool:
    """Numbers match any number in the text numerically; strings match case-insensitively on word edges."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        nums = [float(x.replace(",", "")) for x in _NUM_RE.findall(text)]
        return any(abs(x - value) <= 1e-9 * max(1.0, abs(value)) for x in nums)
    return re.search(r"(?<!\w)" + re.escape(str(value)) + r"(?!\w)", text, re.IGNORECASE) is not None


def _verify_calls(completion: str, verifier: dict) -> float:
    calls = parse_calls(completion)
    if not calls:
        return 0.0
    ok, _ = check_calls(calls, verifier["expected"], [TOOLS[n].schema for n in verifier["tools"]])
    return float(ok)


def _verify_text(completion: str, verifier: dict) -> float:
    if parse_calls(completion) != [] or not completion.strip():
        return 0.0
    return float(all(contains_value(completion, v) for v in verifier.get("must_contain", [])))


VERIFIERS = {"calls": _verify_calls, "answer": _verify_text, "no_call": _verify_text}


def verify(completion: str, verifier: dict) -> float:
    """1.0 for the right calls / the right no-call reply / a final answer with every key value, else 0.0.

    Never raises: a verifier-side exception scores 0 and is recorded as a tool verifier error."""
    if not isinstance(completion, str):
        return 0.0
    try:
        return VERIFIERS[verifier["kind"]](completion, verifier)
    except RecursionError:  # a reply's arguments nested too deeply to compare: the answer's fault, a plain 0
        return 0.0
    except Exception as exc:  # a malformed verifier (kind, tools, expected calls) or a bug: 0, counted
        record_verifier_error(DOMAIN, exc)
        return 0.0


def reward(prompts, completions, **columns) -> list[float | None]:
    """TRL reward function: verify() for rows of this domain, None for rows of other domains."""
    if "verifier" not in columns:
        raise UserError("reward() needs a 'verifier' column.")
    return domain_reward(DOMAIN, verify, completions, columns)


# ---------------------------------------------------------------- preference data

def reference_grades(item: dict) -> dict:
    """The reference is correct and minimal: 2 on every dimension."""
    return {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}


CORRUPTIONS = {  # kind -> (level, grades that drop from 2)
    "wrong_tool": (3, {"instruction_following": 0, "truthfulness": 0}),
    "wrong_arg": (2, {"instruction_following": 1, "truthfulness": 0}),
    "missing_arg": (2, {"instruction_following": 0, "truthfulness": 1}),
    "dropped_call": (2, {"instruction_following": 0, "truthfulness": 1}),
    "malformed_json": (3, {"instruction_following": 0, "truthfulness": 1}),
    "over_trigger": (2, {"instruction_following": 0, "truthfulness": 1}),
    "call_again": (2, {"instruction_following": 0, "truthfulness": 1}),
    "wrong_answer": (3, {"instruction_following": 1, "truthfulness": 0}),
    "padded": (1, {"verbosity": 0}),
}


def _entry(kind: str, completion: str) -> dict:
    level, drops = CORRUPTIONS[kind]
    return {"kind": kind, "completion": completion, "level": level,
            "grades": {**reference_grades({}), **drops}, "verifiable": kind != "padded"}


def _wrong_value(param: str, value, options: list, rng: random.Random):
    """A value of the same type that none of the acceptable options matches."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return next(v for v in (value + rng.randint(1, 5) + i for i in range(50)) if v not in options)
    taken = [standardize_string(o) for o in options if isinstance(o, str)]
    pool = [x for x in PARAM_POOLS.get(param, []) if standardize_string(x) not in taken]
    if pool:
        return rng.choice(pool)
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if digits:
        i = digits[-1]
        return value[:i] + str((int(value[i]) + 1) % 10) + value[i + 1:]
    return value + "s"


def _call_corruptions(item: dict, rng: random.Random) -> list[dict]:
    v = item["verifier"]
    expected = [next(iter(e.items())) for e in v["expected"]]
    calls = [(name, _first_args(ans)) for name, ans in expected]
    i = rng.randrange(len(calls))
    name, args = calls[i]
    out = []

    def render(j, new):
        return "\n".join(format_call(*(new if k == j else c)) for k, c in enumerate(calls))

    distractors = [n for n in v["tools"] if TOOLS[n].group == TOOLS[name].group and n != name]
    if distractors:
        out.append(_entry("wrong_tool", render(i, (rng.choice(distractors), args))))
    required = TOOLS[name].schema["parameters"]["required"]
    param = rng.choice(required)
    wrong = _wrong_value(param, args[param], expected[i][1][param], rng)
    out.append(_entry("wrong_arg", render(i, (name, {**args, param: wrong}))))
    out.append(_entry("missing_arg", render(i, (name, {k: x for k, x in args.items() if k != param}))))
    if len(calls) > 1:
        out.append(_entry("dropped_call", "\n".join(format_call(*c) for k, c in enumerate(calls) if k != i)))
    breakers = [lambda s: s.replace("}</tool_call>", "</tool_call>", 1), lambda s: s.replace('"', "'")]
    out.append(_entry("malformed_json", rng.choice(breakers)(item["reference"])))
    return out


def _wrong_answer(reference: str, must: list, rng: random.Random) -> str:
    nums = [m for m in must if isinstance(m, (int, float)) and not isinstance(m, bool)]
    if nums:
        value = nums[0]
        new = value + rng.choice([1, 2, 3, 5, 10])
        new = round(new, 4) if isinstance(value, float) else new
        pattern = r"(?<![\d.])" + re.escape(str(value)) + r"(?![\d])"
        return re.sub(pattern, str(new), reference)
    value = str(must[0])
    alt = rng.choice([w for w in _ALT_WORDS if value.lower() not in w.lower()])
    return reference.replace(value, alt)


def _text_corruptions(item: dict, rng: random.Random) -> list[dict]:
    v, ref = item["verifier"], item["reference"]
    out = []
    if v["must_contain"]:
        out.append(_entry("wrong_answer", _wrong_answer(ref, v["must_contain"], rng)))
    if v["kind"] == "answer":
        out.append(_entry("call_again", item["prompt"][-2]["content"]))
    else:
        name = rng.choice(v["tools"])
        _, answers = TOOLS[name].ask(rng, 0.0)
        out.append(_entry("over_trigger", format_call(name, _first_args(answers))))
    return out


def corrupt(item: dict, rng: random.Random) -> list[dict]:
    """Rejected responses: wrong tool, wrong/missing argument, dropped or malformed call, over-triggering,
    a wrong final answer, and padding (stylistic: still verifies, so not verifiable)."""
    kind = item["verifier"]["kind"]
    out = _call_corruptions(item, rng) if kind == "calls" else _text_corruptions(item, rng)
    sep = "\n" if kind == "calls" else " "
    out.append(_entry("padded", rng.choice(PAD_BEFORE) + sep + item["reference"] + sep + rng.choice(PAD_AFTER)))
    return out
