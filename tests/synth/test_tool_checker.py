"""Hand-made cases for the BFCL-style call parser and AST checker."""

import pytest

from synth.tool_checker import check_calls, format_call, parse_calls, standardize_string

WEATHER = {"name": "get_weather", "description": "Current weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                          "required": ["city"]}}
AREA = {"name": "area", "description": "Rectangle area",
        "parameters": {"type": "dict", "properties": {"w": {"type": "float"}, "h": {"type": "number"},
                                                      "n": {"type": "integer"}, "flag": {"type": "boolean"},
                                                      "tags": {"type": "array", "items": {"type": "string"}},
                                                      "opts": {"type": "dict"}},
                       "required": ["w", "h"]}}
TOOLS = [WEATHER, AREA]


def call(name, **args):
    return {"name": name, "arguments": args}


def test_parse_plain_text_single_and_parallel():
    assert parse_calls("Hello there, no tools needed.") == []
    text = format_call("get_weather", {"city": "Paris"}) + "\n" + format_call("get_weather", {"city": "Rome"})
    assert parse_calls(text) == [call("get_weather", city="Paris"), call("get_weather", city="Rome")]
    spaced = 'Sure.\n<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>\nDone.'
    assert parse_calls(spaced) == [call("f", x=1)]


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "f", "arguments": {"x": 1}</tool_call>',      # missing brace
    "<tool_call>{'name': 'f', 'arguments': {}}</tool_call>",            # single quotes
    '<tool_call>{"name": "f", "arguments": {}}',                         # unclosed tag
    '<tool_call>{"name": "f"}</tool_call>',                              # no arguments
    '<tool_call>{"name": 3, "arguments": {}}</tool_call>',               # name not a string
    '<tool_call>{"name": "f", "arguments": []}</tool_call>',             # arguments not an object
    '<tool_call>["f", {}]</tool_call>',
    "stray </tool_call> tag",
])
def test_parse_malformed_returns_none(text):
    assert parse_calls(text) is None


def test_parse_non_string_is_none():
    assert parse_calls(None) is None


def test_standardize_string_matches_bfcl():
    assert standardize_string("New York, NY") == "newyorkny"
    assert standardize_string("April 1, 2024") == standardize_string("april 1,2024")
    assert standardize_string("it's") == 'it"s'


def test_exact_call_and_optional_omitted():
    expected = [{"get_weather": {"city": ["Paris"], "unit": ["", "celsius"]}}]
    assert check_calls([call("get_weather", city="Paris")], expected, TOOLS) == (True, "ok")
    assert check_calls([call("get_weather", city="Paris", unit="celsius")], expected, TOOLS)[0]
    ok, why = check_calls([call("get_weather", city="Paris", unit="fahrenheit")], expected, TOOLS)
    assert not ok and "unit" in why


def test_optional_given_in_answer_must_be_present():
    expected = [{"get_weather": {"city": ["Paris"], "unit": ["fahrenheit"]}}]
    ok, why = check_calls([call("get_weather", city="Paris")], expected, TOOLS)
    assert not ok and "unit" in why


def test_int_accepted_for_float_but_not_float_for_int_nor_bool():
    expected = [{"area": {"w": [2.0], "h": [3.0], "n": ["", 4]}}]
    assert check_calls([call("area", w=2, h=3)], expected, TOOLS)[0]
    assert check_calls([call("area", w=2.0, h=3.0, n=4)], expected, TOOLS)[0]
    assert not check_calls([call("area", w=2, h=3, n=4.0)], expected, TOOLS)[0]
    ok, why = check_calls([call("area", w=True, h=3)], [{"area": {"w": [1.0], "h": [3.0]}}], TOOLS)
    assert not ok and "type" in why


def test_string_normalisation_and_multiple_acceptable_values():
    expected = [{"get_weather": {"city": ["New York", "NYC"], "unit": [""]}}]
    for city in ["New York", "new york", "NEW-YORK", "new_york.", "NYC", "nyc"]:
        assert check_calls([call("get_weather", city=city)], expected, TOOLS)[0], city
    assert not check_calls([call("get_weather", city="Newark")], expected, TOOLS)[0]


def test_lists_and_dicts_element_wise():
    expected = [{"area": {"w": [1.0], "h": [1.0], "tags": [["Red", "Blue"]], "opts": [{"mode": ["fast", "quick"]}]}}]
    good = call("area", w=1, h=1, tags=["red", "BLUE"], opts={"mode": "Quick"})
    assert check_calls([good], expected, TOOLS)[0]
    assert not check_calls([call("area", w=1, h=1, tags=["blue", "red"], opts={"mode": "fast"})], expected, TOOLS)[0]
    assert not check_calls([call("area", w=1, h=1, tags=["red", "blue"], opts={"mode": "slow"})], expected, TOOLS)[0]
    assert not check_calls([call("area", w=1, h=1, tags=["red", 2], opts={"mode": "fast"})], expected, TOOLS)[0]


def test_parallel_is_order_free_and_needs_distinct_matches():
    expected = [{"get_weather": {"city": ["Paris"], "unit": [""]}},
                {"get_weather": {"city": ["Rome", "Paris"], "unit": [""]}}]
    a, b = call("get_weather", city="Paris"), call("get_weather", city="Rome")
    assert check_calls([a, b], expected, TOOLS)[0]
    assert check_calls([b, a], expected, TOOLS)[0]
    assert not check_calls([a, a][:1], expected, TOOLS)[0]
    assert not check_calls([b, b], expected, TOOLS)[0]  # Rome cannot serve the Paris-only call
    assert check_calls([a, a], expected, TOOLS)[0]  # Paris serves both (as in BFCL)
    assert not check_calls([a, b, b], expected, TOOLS)[0]
    # BFCL's greedy matcher would give Paris to the first expected call and reject this valid pair.
    flexible_first = [expected[1], expected[0]]
    assert check_calls([a, b], flexible_first, TOOLS)[0]


def test_wrong_function_missing_and_unknown_args_wrong_type():
    expected = [{"get_weather": {"city": ["Paris"], "unit": [""]}}]
    ok, why = check_calls([call("area", city="Paris")], expected, TOOLS)
    assert not ok and "wrong function" in why
    ok, why = check_calls([call("get_weather", unit="celsius")], expected, TOOLS)
    assert not ok and "missing required" in why
    ok, why = check_calls([call("get_weather", city="Paris", country="FR")], expected, TOOLS)
    assert not ok and "unexpected" in why
    ok, why = check_calls([call("get_weather", city=7)], expected, TOOLS)
    assert not ok and "type" in why


def test_no_call_expected_and_bad_expected():
    assert check_calls([], [], TOOLS)[0]
    assert not check_calls([call("get_weather", city="Paris")], [], TOOLS)[0]
    assert not check_calls("garbage", [{"get_weather": {"city": ["Paris"]}}], TOOLS)[0]
    with pytest.raises(ValueError):
        check_calls([], [{"book_flight": {"to": ["Rome"]}}], TOOLS)


def test_openai_wrapped_schema_and_variable_rule():
    wrapped = [{"type": "function", "function": WEATHER}, AREA]
    assert check_calls([call("get_weather", city="Oslo")], [{"get_weather": {"city": ["Oslo"]}}], wrapped)[0]
    # BFCL's variable rule: the answer is a variable name (string) for an integer parameter.
    expected = [{"area": {"w": [1.0], "h": [1.0], "n": ["count"]}}]
    assert check_calls([call("area", w=1, h=1, n="count")], expected, TOOLS)[0]
    assert not check_calls([call("area", w=1, h=1, n="other")], expected, TOOLS)[0]
