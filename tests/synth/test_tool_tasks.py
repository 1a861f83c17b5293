"""The tool-use family: generation, verification, reward function, corruptions and the tool registry."""

import json
import random

import pytest

import synth
from synth import tool_tasks as tt
from synth.tool_checker import format_call, parse_calls
from synth.tool_registry import GROUPS, TOOLS

ITEMS = {d: tt.generate(200, seed=100 + d, difficulty=d) for d in tt.DIFFICULTY}
ALL = [it for items in ITEMS.values() for it in items]


def test_synth_is_this_repo():
    assert "site-packages" not in synth.__file__


def test_registry_has_twenty_tools_with_valid_schemas_and_similar_groups():
    assert len(TOOLS) >= 20 and len(GROUPS) >= 6
    for name, tool in TOOLS.items():
        s = tool.schema
        assert s["name"] == name and s["description"]
        assert s["parameters"]["type"] == "object"
        assert set(s["parameters"]["required"]) <= set(s["parameters"]["properties"])
    assert all(len(names) >= 3 for names in GROUPS.values())


def test_fake_tools_are_deterministic_and_answer_from_their_result():
    rng = random.Random(0)
    for tool in TOOLS.values():
        _, answers = tool.ask(rng, 1.0)
        args = tt._first_args(answers)
        result = tool.run(args)
        assert result == tool.run(dict(args))
        text, must = tool.answer(args, result)
        assert must and all(tt.contains_value(text, m) for m in must)


def test_every_reference_verifies():
    for it in ALL:
        assert tt.verify(it["reference"], it["verifier"]) == 1.0, it


def test_item_shape_and_prompt_rendering():
    for it in ALL:
        assert set(it) == {"prompt", "domain", "verifier", "source", "reference", "identity"}
        assert it["domain"] == "tool" and it["source"].startswith("synth/tool/")
        json.dumps(it)  # JSON-serialisable
        system = it["prompt"][0]
        assert system["role"] == "system" and system["content"] == tt.render_tools(it["verifier"]["tools"])
        listed = json.loads(system["content"].split("\n")[0][len("Tools: "):])
        assert [t["name"] for t in listed] == it["verifier"]["tools"]
        assert it["prompt"][-1]["role"] in ("user", "tool")
        assert len(it["reference"].split()) < 80


def test_oracle_comes_with_at_least_two_similar_distractors():
    for it in ALL:
        v = it["verifier"]
        for e in v.get("expected", []):
            name = next(iter(e))
            similar = [n for n in v["tools"] if TOOLS[n].group == TOOLS[name].group and n != name]
            assert name in v["tools"] and len(similar) >= 2


def test_difficulty_scales_the_mix():
    def kinds(d):
        return {it["source"].split("/")[2] for it in ITEMS[d]}
    assert kinds(0) == {"single", "no_call"}
    assert {"parallel", "multistep", "chain", "no_call", "single"} <= kinds(3)
    mean_tools = {d: sum(len(it["verifier"]["tools"]) for it in ITEMS[d]) / len(ITEMS[d]) for d in tt.DIFFICULTY}
    assert mean_tools[0] < mean_tools[3]
    parallel3 = [it for it in ITEMS[3] if "/parallel/" in it["source"]]
    assert any(len(parse_calls(it["reference"])) == 3 for it in parallel3)


def test_multistep_and_chain_feed_a_tool_result_back():
    for it in ALL:
        if "/multistep/" in it["source"] or "/chain/" in it["source"]:
            assert [m["role"] for m in it["prompt"][-3:]] == ["user", "assistant", "tool"]
            assert len(parse_calls(it["prompt"][-2]["content"])) == 1
            json.loads(it["prompt"][-1]["content"])
        if "/multistep/" in it["source"]:
            assert parse_calls(it["reference"]) == [] and it["verifier"]["must_contain"]


def test_no_call_items_have_plain_references():
    no_call = [it for it in ALL if it["verifier"]["kind"] == "no_call"]
    assert len(no_call) > 50
    assert {it["source"].split("/")[3] for it in no_call} == {"chitchat", "direct", "unsupported"}
    for it in no_call:
        assert parse_calls(it["reference"]) == []
        if "/unsupported/" in it["source"]:  # no listed tool of the wanted tool's group
            wanted = TOOLS[it["source"].rsplit("/", 1)[1]]
            assert all(TOOLS[n].group != wanted.group for n in it["verifier"]["tools"])


def test_corruptions_are_graded_and_verifiable_ones_score_lower():
    seen = set()
    for i, it in enumerate(ALL):
        ref_score = tt.verify(it["reference"], it["verifier"])
        for c in tt.corrupt(it, random.Random(i)):
            seen.add(c["kind"])
            assert c["level"] in (0, 1, 2, 3)
            assert set(c["grades"]) == {"instruction_following", "verbosity", "truthfulness", "harmlessness"}
            score = tt.verify(c["completion"], it["verifier"])
            if c["verifiable"]:
                assert score < ref_score, (c, it)
            else:
                assert c["kind"] == "padded" and score == ref_score and c["grades"]["verbosity"] < 2
    assert seen == set(tt.CORRUPTIONS)


def test_corruption_levels_follow_the_spec():
    table = {k: lvl for k, (lvl, _) in tt.CORRUPTIONS.items()}
    assert table["wrong_tool"] == 3 and table["malformed_json"] == 3
    assert table["wrong_arg"] == table["missing_arg"] == table["over_trigger"] == 2
    assert table["padded"] == 1
    it = next(x for x in ITEMS[1] if x["verifier"]["kind"] == "calls")
    wrong = next(c for c in tt.corrupt(it, random.Random(0)) if c["kind"] == "wrong_tool")
    assert wrong["grades"]["truthfulness"] == 0 and wrong["grades"]["instruction_following"] == 0
    assert tt.reference_grades(it) == {k: 2 for k in wrong["grades"]}


def test_verify_specific_failures():
    it = next(x for x in ITEMS[0] if "/single/get_weather" in x["source"])
    v = it["verifier"]
    city = v["expected"][0]["get_weather"]["city"][0]
    assert tt.verify(f'<tool_call>{{"name":"get_weather","arguments":{{"city":"{city.upper()}"}}}}</tool_call>', v) == 1.0
    assert tt.verify(f'<tool_call>{{"name":"get_forecast","arguments":{{"city":"{city}"}}}}</tool_call>', v) == 0.0
    assert tt.verify(f"The weather in {city} is nice.", v) == 0.0
    for garbage in ["", "<tool_call>", "}}}{{", "\x00" * 10, "<tool_call>null</tool_call>", None, 42]:
        assert tt.verify(garbage, v) == 0.0
    nc = next(x for x in ALL if x["verifier"]["kind"] == "no_call")
    assert tt.verify("", nc["verifier"]) == 0.0
    assert tt.verify('<tool_call>{"name":"x","arguments":{}}</tool_call>', nc["verifier"]) == 0.0


def test_contains_value_is_numeric_and_bounded():
    assert tt.contains_value("It costs $1,250.50 today.", 1250.5)
    assert tt.contains_value("It is 18 degrees.", 18) and not tt.contains_value("It is 118 degrees.", 18)
    assert not tt.contains_value("It is 18.5 degrees.", 18)
    assert not tt.contains_value("7967042", 7967040)
    assert tt.contains_value("It is Cloudy.", "cloudy") and not tt.contains_value("partlycloudy", "cloudy")


def test_determinism_and_seeds_differ():
    assert tt.generate(30, seed=7, difficulty=2) == tt.generate(30, seed=7, difficulty=2)
    assert tt.generate(30, seed=7, difficulty=2) != tt.generate(30, seed=8, difficulty=2)


def test_reward_handles_domains_message_lists_and_json_verifiers():
    items = ITEMS[1][:6]
    completions = [it["reference"] for it in items]
    completions[1] = [{"role": "assistant", "content": items[1]["reference"]}]
    completions[2] = "definitely wrong " if items[2]["verifier"]["kind"] == "calls" else "<tool_call>"
    verifiers = [json.dumps(it["verifier"]) if i % 2 else it["verifier"] for i, it in enumerate(items)]
    domains = ["tool"] * 6
    domains[3] = "math"
    out = tt.reward([it["prompt"] for it in items], completions, verifier=verifiers, domain=domains)
    assert out[0] == 1.0 and out[1] == 1.0 and out[2] == 0.0 and out[3] is None and out[4] == out[5] == 1.0
    with pytest.raises(ValueError):
        tt.reward([], [], domain=[])


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": -3}, {"n": 2.5}, {"n": 3, "difficulty": -1},
                                    {"n": 3, "difficulty": 4}, {"n": 3, "difficulty": "hard"}])
def test_bad_args_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        tt.generate(seed=0, **kwargs)


def test_references_and_corruptions_over_many_seeds():
    for seed in range(300):
        for it in tt.generate(2, seed=seed, difficulty=seed % 4):
            assert tt.verify(it["reference"], it["verifier"]) == 1.0
            for c in tt.corrupt(it, random.Random(seed)):
                assert (tt.verify(c["completion"], it["verifier"]) < 1.0) == c["verifiable"]


# ---------------------------------------------------------------- problem identity (what the split hashes)

def test_identity_is_on_every_item_and_stable_for_a_seed():
    for it in ALL:
        assert it["identity"] == tt.problem_identity(it)
        prefix = "tool:calls:" if it["verifier"]["kind"] == "calls" else "tool:text:"
        assert it["identity"].startswith(prefix)
    first = [it["identity"] for it in tt.generate(300, seed=3, difficulty=1)]
    assert first == [it["identity"] for it in tt.generate(300, seed=3, difficulty=1)]
    assert first != [it["identity"] for it in tt.generate(300, seed=4, difficulty=1)]


def test_identity_is_the_calls_not_their_order_wording_or_kind():
    weather = format_call("get_weather", {"city": "Paris", "unit": "celsius"})
    reordered = '<tool_call>{"arguments":{"unit":"celsius","city":"Paris"},"name":"get_weather"}</tool_call>'
    air = format_call("get_air_quality", {"city": "Oslo"})
    ident = tt.problem_identity({"reference": weather})
    assert ident == 'tool:calls:[{"arguments":{"city":"Paris","unit":"celsius"},"name":"get_weather"}]'
    assert tt.problem_identity({"reference": reordered}) == ident
    assert tt.problem_identity({"reference": weather + "\n" + air}) == \
        tt.problem_identity({"reference": air + "\n" + weather}) != ident
    assert tt.problem_identity({"reference": format_call("get_weather", {"city": "Lima"})}) != ident
    assert tt.problem_identity({"reference": "A week has 7 days. "}) == "tool:text:A week has 7 days."
    # the same request offered with other tools is the same problem
    by_identity = {}
    for it in ITEMS[1]:
        by_identity.setdefault(it["identity"], set()).add(tuple(it["verifier"]["tools"]))
    assert any(len(tools) > 1 for tools in by_identity.values())


def test_unsupported_replies_name_the_missing_group():
    unsupported = [it for it in ALL if "/unsupported/" in it["source"]]
    for it in unsupported:
        group = TOOLS[it["source"].rsplit("/", 1)[1]].group
        assert it["reference"] == tt.UNSUPPORTED.format(group=group)
    assert len({it["identity"] for it in unsupported}) >= 5  # not one identity that one split side takes whole


@pytest.mark.parametrize("difficulty", [0, 1])
def test_identical_references_share_the_identity(difficulty):
    items = tt.generate(3000, seed=21, difficulty=difficulty)
    by_reference = {}
    for it in items:
        by_reference.setdefault(it["reference"], set()).add(it["identity"])
    assert all(len(ids) == 1 for ids in by_reference.values())
    distinct = len({it["identity"] for it in items})
    print(f"tool difficulty {difficulty}: {distinct} distinct identities among 3000 items")
    assert distinct >= 1500
    singles = {it["source"].split("/")[3] for it in items if "/single/" in it["source"]}
    assert singles == set(TOOLS)  # redrawing repeats still leaves every tool in the mix
