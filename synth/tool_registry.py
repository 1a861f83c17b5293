"""The tool registry of the tool-use family: 27 tools in 9 groups of 3 similar tools, each with a schema,
a deterministic fake implementation, a request sampler and a final-answer template.

Schemas are OpenAI function definitions (name, description, parameters {type: object, properties,
required}); descriptions are kept short because a tiny model with a 512-token context reads them.
The three tools of a group (e.g. get_weather / get_forecast / get_air_quality) are each other's
distractors. Every tool has:
  ask(rng, opt_p) -> (user request sentence, BFCL possible answers {param: [ok values]}), where an
      optional parameter is mentioned with probability opt_p (else its answers start with "" = omit);
  run(args) -> result dict, a pure function of the arguments (a stable character code, never hash());
  answer(args, result) -> (final-answer sentence, values it must contain).
Simplifications: fake data (weather, prices, files) is made up from the arguments; values in requests are
written as the tool expects them (ISO dates, currency codes), with a few aliases as extra answers.

Run: python -c "from synth.tool_registry import TOOLS; print(len(TOOLS))"
"""

import random
import re
from dataclasses import dataclass
from typing import Callable

CITIES = ["Paris", "Tokyo", "London", "New York", "Cairo", "Sydney", "Lima", "Oslo", "Delhi", "Rome",
          "Berlin", "Madrid", "Toronto", "Seoul", "Nairobi"]
ALIASES = {"New York": ["New York", "New York City", "NYC"], "Delhi": ["Delhi", "New Delhi"]}
LANDMARKS = ["the museum", "the train station", "the airport", "the harbor", "the stadium", "the old bridge"]
PLACES = ["cafe", "pharmacy", "bank", "library", "bakery", "gas station"]
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "foggy"]
TITLES = ["Dentist", "Team meeting", "Gym", "Lunch with Ana", "Book club", "Yoga", "Call with Bo"]
TIMES = ["09:00", "10:30", "12:00", "14:00", "16:15", "18:00"]
UNITS = {("km", "miles"): 0.6214, ("miles", "km"): 1.6093, ("kg", "pounds"): 2.2046,
         ("pounds", "kg"): 0.4536, ("meters", "feet"): 3.2808, ("liters", "gallons"): 0.2642}
RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CAD": 1.36, "INR": 83.0, "CHF": 0.9}
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA"]
TOPICS = ["solar panels", "electric cars", "the Olympics", "coffee prices", "Mars rovers", "jazz", "city parks"]
EMAILS = ["ana@mail.com", "bo@work.org", "kim@mail.com", "li@home.net"]
PHONES = ["555-0101", "555-0147", "555-0190", "555-0123"]
SUBJECTS = ["Lunch", "Report", "Meeting", "Trip"]
NOTES = ["See you at noon", "The report is done", "Running late", "Thanks for today"]
CHANNELS = ["general", "random", "dev", "design"]
FILES = ["notes.txt", "report.pdf", "todo.md", "data.csv", "/home/ana/plan.txt"]
DIRS = ["/home/ana", "/docs", "/photos", "/music"]
FIRST_LINES = ["# Plan", "Dear team,", "id,name,score", "TODO: call Sam"]
GOODS = ["running shoes", "headphones", "desk lamp", "backpack", "coffee mug", "yoga mat"]
BRANDS = ["Acme", "Zenith", "Nova", "Orbit"]
SHOPS = ["Corner", "Blue", "Sunny", "Green"]
STATUSES = ["processing", "shipped", "in transit", "out for delivery"]
TEMP_SCALES = ["celsius", "fahrenheit", "kelvin"]
_EXPR = re.compile(r"^\s*(\d+)\s*([-+*])\s*(\d+)\s*$")
PARAM_POOLS = {  # values a corruption may swap in for a parameter of this name
    "city": CITIES, "origin": LANDMARKS + CITIES, "destination": LANDMARKS + CITIES, "location": LANDMARKS,
    "place_type": PLACES, "title": TITLES, "from_currency": list(RATES), "to_currency": list(RATES),
    "base": list(RATES), "target": list(RATES), "symbol": SYMBOLS, "query": TOPICS + GOODS, "to": EMAILS,
    "phone": PHONES, "channel": CHANNELS, "path": FILES, "directory": DIRS, "subject": SUBJECTS,
    "body": NOTES, "message": NOTES, "text": NOTES, "from_unit": ["km", "miles", "kg", "pounds", "meters"],
    "to_unit": ["miles", "km", "pounds", "kg", "feet", "gallons"], "from_scale": TEMP_SCALES,
    "to_scale": TEMP_SCALES,
}


@dataclass(frozen=True)
class Tool:
    schema: dict
    group: str
    ask: Callable[[random.Random, float], tuple[str, dict]]
    run: Callable[[dict], dict]
    answer: Callable[[dict, dict], tuple[str, list]]


def code(*parts) -> int:
    """A stable integer from the arguments (hash() is salted per process, so it is not used)."""
    text = "|".join(str(p) for p in parts)
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text))


def _schema(name: str, desc: str, required: dict, optional: dict | None = None) -> dict:
    """OpenAI function schema; a property given as a list is a string enum."""
    def prop(t):
        return {"type": "string", "enum": list(t)} if isinstance(t, list) else {"type": t}
    props = {k: prop(t) for k, t in {**required, **(optional or {})}.items()}
    return {"name": name, "description": desc,
            "parameters": {"type": "object", "properties": props, "required": list(required)}}


def _alias(v: str) -> list:
    if v in ALIASES:
        return list(ALIASES[v])
    return [v, v[4:]] if v.startswith("the ") else [v]


def _date(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _time(t: str) -> list:
    return [t, t[1:]] if t.startswith("0") else [t]


def _opt(rng: random.Random, opt_p: float, values: list):
    """A value for an optional parameter the user mentions, or None (then answers are ["", default])."""
    return rng.choice(values) if rng.random() < opt_p else None


def _omit(default=None) -> list:
    return ["", default] if default is not None else [""]


# ---- weather ----
def _ask_weather(rng, opt_p):
    city, unit = rng.choice(CITIES), _opt(rng, opt_p, ["celsius", "fahrenheit"])
    if unit:
        return f"What's the weather in {city} in {unit}?", {"city": _alias(city), "unit": [unit]}
    text = rng.choice(["What's the weather in {c}?", "Is it warm in {c} right now?"]).format(c=city)
    return text, {"city": _alias(city), "unit": _omit("celsius")}


def _run_weather(a):
    c = code(a["city"].lower())
    temp = 5 + c % 26
    temp = round(temp * 9 / 5 + 32) if a.get("unit") == "fahrenheit" else temp
    return {"city": a["city"], "temp": temp, "unit": a.get("unit", "celsius"), "condition": CONDITIONS[c % 5]}


def _ask_forecast(rng, opt_p):
    city, days = rng.choice(CITIES), rng.randint(2, 7)
    text = rng.choice(["Give me the {d}-day forecast for {c}.", "What will the weather be in {c} over the next {d} days?"])
    return text.format(d=days, c=city), {"city": _alias(city), "days": [days]}


def _run_forecast(a):
    high = 8 + code(a["city"].lower(), a["days"]) % 24
    return {"city": a["city"], "days": a["days"], "high": high, "low": high - 4 - a["days"] % 4}


def _ask_air(rng, opt_p):
    city = rng.choice(CITIES)
    text = rng.choice(["How is the air quality in {c}?", "Is the air clean in {c} today?"]).format(c=city)
    return text, {"city": _alias(city)}


def _run_air(a):
    aqi = 10 + code(a["city"].lower(), "aqi") % 180
    return {"city": a["city"], "aqi": aqi, "level": "good" if aqi < 50 else "moderate" if aqi < 100 else "poor"}


# ---- calendar ----
def _ask_create(rng, opt_p):
    title, date, time = rng.choice(TITLES), _date(rng), _opt(rng, opt_p, TIMES)
    if time:
        return f"Add '{title}' to my calendar on {date} at {time}.", {"title": [title], "date": [date], "time": _time(time)}
    return f"Put '{title}' on my calendar for {date}.", {"title": [title], "date": [date], "time": _omit()}


def _ask_list(rng, opt_p):
    d = _date(rng)
    return rng.choice(["What's on my calendar on {d}?", "List my events for {d}."]).format(d=d), {"date": [d]}


def _run_list(a):
    c = code(a["date"])
    i, j = c % len(TITLES), (c % len(TITLES) + 1 + c % (len(TITLES) - 1)) % len(TITLES)
    return {"date": a["date"], "events": [{"id": 100 + c % 450, "title": TITLES[i], "time": TIMES[c % 3]},
                                          {"id": 550 + c % 450, "title": TITLES[j], "time": TIMES[3 + c % 3]}]}


def _answer_list(a, r):
    e1, e2 = r["events"]
    return (f"On {a['date']} you have {e1['title']} at {e1['time']} and {e2['title']} at {e2['time']}.",
            [e1["title"], e1["time"], e2["title"], e2["time"]])


def _ask_delete_event(rng, opt_p):
    eid = rng.randint(100, 999)
    text = rng.choice(["Delete event {i} from my calendar.", "Cancel calendar event number {i}."]).format(i=eid)
    return text, {"event_id": [eid]}


# ---- math and units ----
def _ask_calc(rng, opt_p):
    a, b, op = rng.randint(100, 9999), rng.randint(12, 999), rng.choice(["+", "-", "*"])
    text = rng.choice(["Compute {a} {o} {b}.", "Use the calculator for {a} {o} {b}."]).format(a=a, o=op, b=b)
    return text, {"expression": [f"{a} {op} {b}", f"{a}{op}{b}"]}


def _run_calc(a):
    m = _EXPR.match(a["expression"])
    if not m:
        return {"error": "unsupported expression"}
    x, op, y = int(m.group(1)), m.group(2), int(m.group(3))
    return {"result": {"+": x + y, "-": x - y, "*": x * y}[op]}


def _ask_units(rng, opt_p):
    (f, t), v = rng.choice(sorted(UNITS)), rng.randint(2, 500)
    text = rng.choice(["Convert {v} {f} to {t}.", "How many {t} is {v} {f}?"]).format(v=v, f=f, t=t)
    return text, {"value": [v], "from_unit": [f], "to_unit": [t]}


def _ask_temp(rng, opt_p):
    f, t = rng.sample(TEMP_SCALES, 2)
    v = rng.randint(-20, 120) if f != "kelvin" else rng.randint(250, 400)
    return f"Convert {v} degrees {f} to {t}.", {"value": [v], "from_scale": [f], "to_scale": [t]}


def _run_temp(a):
    to_c = {"celsius": lambda x: x, "fahrenheit": lambda x: (x - 32) * 5 / 9, "kelvin": lambda x: x - 273.15}
    from_c = {"celsius": lambda x: x, "fahrenheit": lambda x: x * 9 / 5 + 32, "kelvin": lambda x: x + 273.15}
    return {"result": round(from_c[a["to_scale"]](to_c[a["from_scale"]](a["value"])), 2)}


# ---- currency and finance ----
def _ask_convert(rng, opt_p):
    (f, t), amt = rng.sample(list(RATES), 2), rng.choice([5, 10, 20, 50, 100, 250, 1000])
    text = rng.choice(["How much is {a} {f} in {t}?", "Convert {a} {f} to {t}."]).format(a=amt, f=f, t=t)
    return text, {"amount": [amt], "from_currency": [f], "to_currency": [t]}


def _ask_rate(rng, opt_p):
    f, t = rng.sample(list(RATES), 2)
    text = rng.choice(["What is the exchange rate from {f} to {t}?", "How many {t} do I get for one {f}?"])
    return text.format(f=f, t=t), {"base": [f], "target": [t]}


def _ask_stock(rng, opt_p):
    s = rng.choice(SYMBOLS)
    return rng.choice(["What is {s} trading at?", "Get the stock price of {s}."]).format(s=s), {"symbol": [s]}


# ---- search ----
def _ask_web(rng, opt_p):
    q, k = rng.choice(TOPICS), _opt(rng, opt_p, [3, 5, 10])
    if k:
        return f"Search the web for {q} and show {k} results.", {"query": [q], "max_results": [k]}
    return f"Search the web for {q}.", {"query": [q], "max_results": _omit(5)}


def _ask_news(rng, opt_p):
    q = rng.choice(TOPICS)
    return rng.choice(["Any news about {q}?", "Find the latest news on {q}."]).format(q=q), {"query": [q]}


def _ask_images(rng, opt_p):
    q = rng.choice(TOPICS + GOODS)
    return rng.choice(["Find pictures of {q}.", "Show me images of {q}."]).format(q=q), {"query": [q]}


# ---- messaging ----
def _ask_email(rng, opt_p):
    to, subj, body = rng.choice(EMAILS), rng.choice(SUBJECTS), rng.choice(NOTES)
    return (f"Email {to} with the subject '{subj}' saying '{body}'.",
            {"to": [to], "subject": [subj], "body": [body, body + "."]})


def _ask_sms(rng, opt_p):
    phone, msg = rng.choice(PHONES), rng.choice(NOTES)
    text = rng.choice(["Text {p}: '{m}'.", "Send an SMS to {p} saying '{m}'."]).format(p=phone, m=msg)
    return text, {"phone": [phone], "message": [msg, msg + "."]}


def _ask_chat(rng, opt_p):
    ch, msg = rng.choice(CHANNELS), rng.choice(NOTES)
    return f"Post '{msg}' in the #{ch} channel.", {"channel": [ch, "#" + ch], "text": [msg, msg + "."]}


# ---- maps ----
def _ask_directions(rng, opt_p):
    a, b = rng.sample(LANDMARKS, 2)
    mode = _opt(rng, opt_p, ["driving", "walking", "transit"])
    ans = {"origin": _alias(a), "destination": _alias(b), "mode": [mode] if mode else _omit("driving")}
    return (f"How do I get from {a} to {b} by {mode}?" if mode else f"Give me directions from {a} to {b}."), ans


def _ask_distance(rng, opt_p):
    a, b = rng.sample(CITIES, 2)
    unit = _opt(rng, opt_p, ["km", "miles"])
    ans = {"origin": _alias(a), "destination": _alias(b), "unit": [unit] if unit else _omit("km")}
    return (f"What's the distance between {a} and {b} in {unit}?" if unit else f"How far is {a} from {b}?"), ans


def _run_distance(a):
    km = 200 + code(*sorted([a["origin"].lower(), a["destination"].lower()])) % 9000
    return {"distance": round(km * 0.6214) if a.get("unit") == "miles" else km, "unit": a.get("unit", "km")}


def _ask_nearby(rng, opt_p):
    p, loc = rng.choice(PLACES), rng.choice(LANDMARKS)
    text = rng.choice(["Find a {p} near {l}.", "Is there a {p} close to {l}?"]).format(p=p, l=loc)
    return text, {"place_type": [p], "location": _alias(loc)}


def _run_nearby(a):
    c = code(a["place_type"], a["location"])
    return {"name": f"{SHOPS[c % 4]} {a['place_type'].title()}", "distance_m": 50 + c % 900}


# ---- files ----
def _ask_read(rng, opt_p):
    p = rng.choice(FILES)
    return rng.choice(["Show me what's in {p}.", "Read the file {p}."]).format(p=p), {"path": [p]}


def _ask_list_files(rng, opt_p):
    d = rng.choice(DIRS)
    return rng.choice(["What files are in {d}?", "List the files in {d}."]).format(d=d), {"directory": [d]}


def _ask_rm(rng, opt_p):
    p = rng.choice(FILES)
    return rng.choice(["Delete the file {p}.", "Remove {p} from my drive."]).format(p=p), {"path": [p]}


# ---- shopping ----
def _ask_products(rng, opt_p):
    q, cap = rng.choice(GOODS), _opt(rng, opt_p, [30, 50, 80, 120])
    if cap:
        return f"Find {q} under ${cap}.", {"query": [q], "max_price": [cap]}
    return f"Search the store for {q}.", {"query": [q], "max_price": _omit()}


def _run_products(a):
    c = code(a["query"].lower())
    cap = a.get("max_price") or 150
    price = round(10 + c % max(1, int(cap) - 10) + 0.99, 2)
    return {"id": f"P{100 + c % 900}", "name": f"{BRANDS[c % 4]} {a['query']}", "price": price}


def _ask_cart(rng, opt_p):
    pid, qty = f"P{rng.randint(100, 999)}", rng.randint(1, 5)
    text = rng.choice(["Add {q} of item {p} to my cart.", "Put {q} of product {p} in my cart."])
    return text.format(q=qty, p=pid), {"product_id": [pid], "quantity": [qty]}


def _ask_order(rng, opt_p):
    oid = f"A{rng.randint(1000, 9999)}"
    return rng.choice(["Where is my order {o}?", "What's the status of order {o}?"]).format(o=oid), {"order_id": [oid]}


def _t(schema, group, ask, run, answer):
    return Tool(schema, group, ask, run, answer)


_S = _schema
TOOLS: dict[str, Tool] = {t.schema["name"]: t for t in [
    _t(_S("get_weather", "Current weather in a city", {"city": "string"}, {"unit": ["celsius", "fahrenheit"]}),
       "weather", _ask_weather, _run_weather,
       lambda a, r: (f"It is {r['temp']} degrees and {r['condition']} in {r['city']}.", [r["temp"], r["condition"]])),
    _t(_S("get_forecast", "Weather forecast for the next days", {"city": "string", "days": "integer"}),
       "weather", _ask_forecast, _run_forecast,
       lambda a, r: (f"Over the next {r['days']} days {r['city']} sees highs of {r['high']} and lows of {r['low']} degrees.",
                     [r["high"], r["low"]])),
    _t(_S("get_air_quality", "Air quality index of a city", {"city": "string"}), "weather", _ask_air, _run_air,
       lambda a, r: (f"The air quality index in {r['city']} is {r['aqi']} ({r['level']}).", [r["aqi"]])),
    _t(_S("create_event", "Add an event to the calendar", {"title": "string", "date": "string"}, {"time": "string"}),
       "calendar", _ask_create, lambda a: {"event_id": 100 + code(a["title"], a["date"]) % 900, "status": "created"},
       lambda a, r: (f"Added '{a['title']}' on {a['date']} as event {r['event_id']}.", [r["event_id"]])),
    _t(_S("list_events", "List calendar events on a date", {"date": "string"}), "calendar", _ask_list,
       _run_list, _answer_list),
    _t(_S("delete_event", "Delete a calendar event by id", {"event_id": "integer"}), "calendar", _ask_delete_event,
       lambda a: {"event_id": a["event_id"], "deleted": True},
       lambda a, r: (f"Event {r['event_id']} has been deleted.", [r["event_id"]])),
    _t(_S("calculate", "Evaluate an arithmetic expression", {"expression": "string"}), "math", _ask_calc, _run_calc,
       lambda a, r: (f"{a['expression']} = {r.get('result')}.", [r.get("result")])),
    _t(_S("convert_units", "Convert a length, weight or volume",
          {"value": "number", "from_unit": "string", "to_unit": "string"}),
       "math", _ask_units, lambda a: {"result": round(a["value"] * UNITS.get((a["from_unit"], a["to_unit"]), 1.0), 2)},
       lambda a, r: (f"{a['value']} {a['from_unit']} is {r['result']} {a['to_unit']}.", [r["result"]])),
    _t(_S("convert_temperature", "Convert a temperature",
          {"value": "number", "from_scale": TEMP_SCALES, "to_scale": TEMP_SCALES}),
       "math", _ask_temp, _run_temp,
       lambda a, r: (f"{a['value']} degrees {a['from_scale']} is {r['result']} degrees {a['to_scale']}.", [r["result"]])),
    _t(_S("convert_currency", "Convert money between currencies",
          {"amount": "number", "from_currency": "string", "to_currency": "string"}),
       "finance", _ask_convert,
       lambda a: {"result": round(a["amount"] / RATES.get(a["from_currency"], 1) * RATES.get(a["to_currency"], 1), 2)},
       lambda a, r: (f"{a['amount']} {a['from_currency']} is {r['result']} {a['to_currency']}.", [r["result"]])),
    _t(_S("get_exchange_rate", "Exchange rate between two currencies", {"base": "string", "target": "string"}),
       "finance", _ask_rate, lambda a: {"rate": round(RATES.get(a["target"], 1) / RATES.get(a["base"], 1), 4)},
       lambda a, r: (f"1 {a['base']} = {r['rate']} {a['target']}.", [r["rate"]])),
    _t(_S("get_stock_price", "Current price of a stock", {"symbol": "string"}), "finance", _ask_stock,
       lambda a: {"symbol": a["symbol"], "price": 50 + code(a["symbol"]) % 400 + 0.25},
       lambda a, r: (f"{r['symbol']} is trading at ${r['price']}.", [r["price"]])),
    _t(_S("web_search", "Search the web", {"query": "string"}, {"max_results": "integer"}), "search", _ask_web,
       lambda a: {"total": 100 + code(a["query"]) % 900, "top": f"{a['query'].title()} - Wiki"},
       lambda a, r: (f"I found {r['total']} results; the top one is '{r['top']}'.", [r["total"]])),
    _t(_S("search_news", "Search recent news articles", {"query": "string"}), "search", _ask_news,
       lambda a: {"count": 3 + code(a["query"], "n") % 12},
       lambda a, r: (f"There are {r['count']} recent stories about {a['query']}.", [r["count"]])),
    _t(_S("search_images", "Search for images", {"query": "string"}), "search", _ask_images,
       lambda a: {"count": 20 + code(a["query"], "i") % 300},
       lambda a, r: (f"I found {r['count']} images of {a['query']}.", [r["count"]])),
    _t(_S("send_email", "Send an email", {"to": "string", "subject": "string", "body": "string"}), "messaging",
       _ask_email, lambda a: {"status": "sent", "message_id": 1000 + code(a["to"], a["subject"]) % 9000},
       lambda a, r: (f"Email sent to {a['to']} (message {r['message_id']}).", [r["message_id"]])),
    _t(_S("send_sms", "Send a text message to a phone", {"phone": "string", "message": "string"}), "messaging",
       _ask_sms, lambda a: {"status": "delivered", "sms_id": 1000 + code(a["phone"], a["message"]) % 9000},
       lambda a, r: (f"Your text to {a['phone']} was delivered (id {r['sms_id']}).", [r["sms_id"]])),
    _t(_S("send_chat_message", "Post a message in a chat channel", {"channel": "string", "text": "string"}),
       "messaging", _ask_chat, lambda a: {"status": "posted", "message_id": 1000 + code(a["channel"], a["text"]) % 9000},
       lambda a, r: (f"Posted in #{a['channel'].lstrip('#')} (message {r['message_id']}).", [r["message_id"]])),
    _t(_S("get_directions", "Route between two places", {"origin": "string", "destination": "string"},
          {"mode": ["driving", "walking", "transit"]}), "maps", _ask_directions,
       lambda a: {"duration_min": 5 + code(a["origin"], a["destination"], a.get("mode", "driving")) % 55,
                  "steps": 3 + code(a["destination"]) % 6},
       lambda a, r: (f"It takes about {r['duration_min']} minutes in {r['steps']} steps.", [r["duration_min"]])),
    _t(_S("get_distance", "Distance between two cities", {"origin": "string", "destination": "string"},
          {"unit": ["km", "miles"]}), "maps", _ask_distance, _run_distance,
       lambda a, r: (f"{a['origin']} is {r['distance']} {r['unit']} from {a['destination']}.", [r["distance"]])),
    _t(_S("find_nearby", "Find a place near a location", {"place_type": "string", "location": "string"}), "maps",
       _ask_nearby, _run_nearby,
       lambda a, r: (f"{r['name']} is {r['distance_m']} meters away.", [r["distance_m"], r["name"]])),
    _t(_S("read_file", "Read a text file", {"path": "string"}), "files", _ask_read,
       lambda a: {"lines": 1 + code(a["path"]) % 80, "first_line": FIRST_LINES[code(a["path"]) % 4]},
       lambda a, r: (f"{a['path']} has {r['lines']} lines and starts with '{r['first_line']}'.", [r["lines"]])),
    _t(_S("list_files", "List the files in a folder", {"directory": "string"}), "files", _ask_list_files,
       lambda a: {"count": 2 + code(a["directory"]) % 30},
       lambda a, r: (f"{a['directory']} contains {r['count']} files.", [r["count"]])),
    _t(_S("delete_file", "Delete a file", {"path": "string"}), "files", _ask_rm,
       lambda a: {"deleted": True, "freed_kb": 1 + code(a["path"], "kb") % 900},
       lambda a, r: (f"Deleted {a['path']}, freeing {r['freed_kb']} KB.", [r["freed_kb"]])),
    _t(_S("search_products", "Search the store for products", {"query": "string"}, {"max_price": "number"}),
       "shopping", _ask_products, _run_products,
       lambda a, r: (f"The best match is {r['name']} for ${r['price']}.", [r["price"]])),
    _t(_S("add_to_cart", "Add a product to the cart", {"product_id": "string", "quantity": "integer"}), "shopping",
       _ask_cart, lambda a: {"status": "added", "cart_items": a["quantity"] + code(a["product_id"]) % 5},
       lambda a, r: (f"Added. Your cart now has {r['cart_items']} items.", [r["cart_items"]])),
    _t(_S("get_order_status", "Status of an order", {"order_id": "string"}), "shopping", _ask_order,
       lambda a: {"status": STATUSES[code(a["order_id"]) % 4], "days_left": 1 + code(a["order_id"]) % 6},
       lambda a, r: (f"Order {a['order_id']} is {r['status']}, arriving in {r['days_left']} days.",
                     [r["days_left"], r["status"]])),
]}

GROUPS: dict[str, list[str]] = {}
for _name, _tool in TOOLS.items():
    GROUPS.setdefault(_tool.group, []).append(_name)
