"""Real-data check of our tool-call format and AST checker against BFCL's own questions and ground truths.

What it does: reads the `simple_python` (or `simple`), `multiple` and `parallel` categories straight out of
the `bfcl-eval` wheel (zipfile; the package is never installed), turns every ground truth into a produced
call in our format (each parameter's first acceptable value, "" = omitted optional skipped), renders it as
`<tool_call>...</tool_call>` lines, parses it back with `synth.tool_checker.parse_calls` and checks it with
`check_calls`. Also checks a "minimal" variant (every optional parameter omitted) and four mutants per
question (wrong function name, wrong value of a required argument, missing required argument, wrong type)
that must be rejected. Prints figures per category, writes `--json FILE`, and lists what our format
cannot express (counted from the data: tuple and "any" parameters, dotted names, BFCL "variable" answers).

What it simplifies: mutants change the first call only; a question where a mutant kind does not apply
(e.g. no required parameter) is skipped for that kind and counted as such.

Run: `python benchmarks/bfcl_check.py --json benchmarks/results/bfcl_check.json`
(`--wheel PATH` to use a wheel fetched with `pip download --no-deps bfcl-eval`; otherwise it is
downloaded once into ~/.cache/afm-align/bfcl).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.tool_checker import TYPE_MAP, check_calls, format_call, parse_calls, standardize_string  # noqa: E402

CATEGORIES = [("simple_python", "simple"), ("multiple",), ("parallel",)]  # first name found in the wheel wins
CACHE = Path.home() / ".cache" / "afm-align" / "bfcl"
MUTANTS = ["wrong_name", "wrong_value", "missing_required", "wrong_type"]


def find_wheel(path: Path | None, cache: Path) -> Path:
    """The wheel given, one cached, or one downloaded with `pip download --no-deps` (ValueError if none)."""
    if path is not None:
        if not path.is_file():
            raise ValueError(f"No wheel at {path}.")
        return path
    found = sorted(cache.glob("bfcl_eval-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), "bfcl-eval"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob("bfcl_eval-*.whl"))
    if proc.returncode != 0 or not found:
        raise ValueError(f"Could not download bfcl-eval with pip (pass --wheel PATH): {proc.stderr.strip()[-200:]}")
    return found[-1]


def load_category(zf: zipfile.ZipFile, names: tuple[str, ...]) -> tuple[str, list[dict], dict] | None:
    """(category, questions, {id: ground truth}) of the first category name present in the wheel."""
    files = zf.namelist()
    for cat in names:
        pat = re.compile(rf"bfcl_eval/data/BFCL_v(\d+)_{cat}\.json$")
        qs = sorted((int(m.group(1)), f) for f in files if (m := pat.match(f)))
        if not qs:
            continue
        qfile = qs[-1][1]
        afile = qfile.replace("bfcl_eval/data/", "bfcl_eval/data/possible_answer/")
        read = lambda f: [json.loads(line) for line in zf.read(f).decode().splitlines() if line.strip()]  # noqa: E731
        answers = {a["id"]: a["ground_truth"] for a in read(afile)}
        return cat, read(qfile), answers
    return None


def first_values(answer: dict, minimal: bool) -> dict:
    """A produced call from a possible answer: first non-"" value; optional ("") ones dropped if minimal.
    BFCL writes a dict value as a dict of possible-value lists, so dicts (and lists of them) recurse."""
    args = {}
    for p, values in answer.items():
        given = [v for v in values if v != ""]
        if given and not (minimal and "" in values):
            args[p] = _concrete(given[0], minimal)
    return args


def _concrete(value, minimal: bool):
    if isinstance(value, dict):
        return first_values(value, minimal)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [first_values(v, minimal) for v in value]
    return value


def _props(tools: list[dict], name: str) -> tuple[dict, list]:
    schema = next(t for t in tools if t["name"] == name)
    params = schema.get("parameters", {})
    return params.get("properties", {}), params.get("required", [])


def _differs(value, options: list) -> bool:
    def norm(v):
        return standardize_string(v) if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return all(norm(value) != norm(o) and not (type(value) in (int, float) and type(o) in (int, float) and value == o)
               for o in options if o != "")


def _bad_value(value, rng: random.Random):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + rng.randint(1, 9)
    if isinstance(value, str):
        return "zq" + value
    if isinstance(value, list):
        return value + (value[:1] or ["zq"])
    return {**value, "zq_extra": 1}


def mutate(kind: str, calls: list, answers: list, tools: list, rng: random.Random) -> list | None:
    """A copy of `calls` with the first call broken in one way, or None if that kind does not apply."""
    name, args = calls[0]
    props, required = _props(tools, next(iter(answers[0])))
    options = next(iter(answers[0].values()))
    present_req = [p for p in required if p in args]
    if kind == "wrong_name":
        others = [t["name"] for t in tools if t["name"] != name]
        new = (rng.choice(others) if others else name + "_v2", args)
    elif kind == "missing_required":
        if not present_req:
            return None
        drop = rng.choice(present_req)
        new = (name, {k: v for k, v in args.items() if k != drop})
    elif kind == "wrong_value":
        candidates = present_req or list(args)
        if not candidates:
            return None
        p = rng.choice(candidates)
        bad = _bad_value(args[p], rng)
        if not _differs(bad, options[p]):
            return None
        new = (name, {**args, p: bad})
    else:  # wrong_type: a JSON string for a typed value, a number for a string
        candidates = [p for p in (present_req or list(args)) if p in props]
        if not candidates:
            return None
        p = rng.choice(candidates)
        v = args[p]
        bad = 12345 if isinstance(v, str) else json.dumps(v)
        new = (name, {**args, p: bad})
    return [new] + calls[1:]


def roundtrip(calls: list) -> list | None:
    """Render calls in our format and parse them back (what a model would emit)."""
    return parse_calls("\n".join(format_call(n, a) for n, a in calls))


def inexpressible(questions: list[dict], answers: dict) -> dict:
    """Counts of BFCL features our JSON call format or JSON-schema rendering cannot carry faithfully."""
    out = {"tuple_params": 0, "any_params": 0, "dotted_names": 0, "variable_answers": 0, "unknown_types": 0}
    for q in questions:
        for t in q["function"]:
            out["dotted_names"] += "." in t["name"]
            for spec in t.get("parameters", {}).get("properties", {}).values():
                out["tuple_params"] += spec.get("type") == "tuple"
                out["any_params"] += spec.get("type") == "any"
                out["unknown_types"] += spec.get("type") not in TYPE_MAP
        for call in answers[q["id"]]:
            name, ans = next(iter(call.items()))
            props, _ = _props(q["function"], name)
            for p, values in ans.items():
                given = [v for v in values if v != ""]
                want = TYPE_MAP.get(props.get(p, {}).get("type"))
                if given and want and not isinstance(given[0], want) and not (want is float and type(given[0]) is int):
                    out["variable_answers"] += 1
    return out


def run_category(cat: str, questions: list[dict], answers: dict, rng: random.Random) -> dict:
    res = {"questions": len(questions), "accepted": 0, "accepted_minimal": 0, "roundtrip_changed": 0,
           "mutants": {k: {"n": 0, "rejected": 0, "skipped": 0} for k in MUTANTS}, "failures": []}
    for q in questions:
        tools, gt = q["function"], answers[q["id"]]
        calls = [(next(iter(c)), first_values(next(iter(c.values())), False)) for c in gt]
        parsed = roundtrip(calls)
        res["roundtrip_changed"] += parsed != [{"name": n, "arguments": a} for n, a in calls]
        ok, why = check_calls(parsed or [], gt, tools)
        res["accepted"] += ok
        if not ok and len(res["failures"]) < 10:
            res["failures"].append({"id": q["id"], "reason": why})
        minimal = [(next(iter(c)), first_values(next(iter(c.values())), True)) for c in gt]
        res["accepted_minimal"] += check_calls(roundtrip(minimal) or [], gt, tools)[0]
        for kind in MUTANTS:
            m = res["mutants"][kind]
            mutant = mutate(kind, calls, gt, tools, rng)
            if mutant is None:
                m["skipped"] += 1
                continue
            m["n"] += 1
            m["rejected"] += not check_calls(roundtrip(mutant) or [], gt, tools)[0]
    n_mut = sum(m["n"] for m in res["mutants"].values())
    res["accept_rate"] = res["accepted"] / len(questions)
    res["accept_rate_minimal"] = res["accepted_minimal"] / len(questions)
    res["reject_rate"] = sum(m["rejected"] for m in res["mutants"].values()) / max(1, n_mut)
    res["inexpressible"] = inexpressible(questions, answers)
    return res


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=None, help="bfcl_eval wheel (default: download to cache)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutant choices")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    try:
        wheel = find_wheel(args.wheel, args.cache_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    rng = random.Random(args.seed)
    report = {"benchmark": "bfcl_check", "wheel": wheel.name, "categories": {}}
    with zipfile.ZipFile(wheel) as zf:
        for names in CATEGORIES:
            loaded = load_category(zf, names)
            if loaded is None:
                print(f"{'/'.join(names)}: not in {wheel.name}")
                continue
            cat, questions, answers = loaded
            r = run_category(cat, questions, answers, rng)
            report["categories"][cat] = r
            kinds = ", ".join(f"{k} {m['rejected']}/{m['n']}" for k, m in r["mutants"].items())
            print(f"{cat:14s} n={r['questions']:4d}  ground truth accepted {r['accept_rate']:.2%} "
                  f"(optional omitted {r['accept_rate_minimal']:.2%})  mutants rejected {r['reject_rate']:.2%} "
                  f"[{kinds}]  changed by JSON round trip {r['roundtrip_changed']}  inexpressible {r['inexpressible']}")
            for f in r["failures"]:
                print(f"    rejected ground truth {f['id']}: {f['reason']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
