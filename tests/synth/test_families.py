"""The family registry (every family passes the interface check; a broken one fails loudly) and verifier errors
(an exception in a verifier's own code is counted for its family and scores 0; a malformed answer is neither)."""
import logging
import sys
import types

import pytest

from afm_align.errors import UserError
from synth import families
from synth.families import FAMILIES, REQUIRED, check_family, family, reset_verifier_errors, verifier_errors


@pytest.fixture(autouse=True)
def _fresh_counts():
    reset_verifier_errors()
    yield
    reset_verifier_errors()


def _fake_module(name="synth.fake_tasks", drop=(), **overrides):
    module = types.ModuleType(name)
    module.DOMAIN = "fake"
    for attr in REQUIRED:
        if attr not in drop:
            setattr(module, attr, lambda *a, **k: None)
    for attr, value in overrides.items():
        setattr(module, attr, value)
    return module


@pytest.mark.parametrize("name", FAMILIES)
def test_every_registered_family_implements_the_interface(name):
    module = family(name)
    assert module.DOMAIN == name and module.__name__ == f"synth.{name}_tasks"
    assert all(callable(getattr(module, attr)) for attr in REQUIRED)


def test_a_module_missing_names_fails_with_a_message_naming_them(monkeypatch):
    with pytest.raises(ImportError, match=r"synth\.fake_tasks .*missing corrupt, problem_identity"):
        check_family(_fake_module(drop=("corrupt", "problem_identity")), "fake")
    with pytest.raises(ImportError, match="not callable: reward"):
        check_family(_fake_module(reward=3), "fake")
    with pytest.raises(ImportError, match="DOMAIN is 'other', not 'fake'"):
        check_family(_fake_module(DOMAIN="other"), "fake")
    # through the registry: a registered family whose module lacks a name fails where it is first used
    monkeypatch.setattr(families, "FAMILIES", (*FAMILIES, "fake"))
    monkeypatch.setitem(sys.modules, "synth.fake_tasks", _fake_module(drop=("verify",)))
    with pytest.raises(ImportError, match=r"synth\.fake_tasks does not implement .*missing verify"):
        family("fake")
    monkeypatch.setitem(sys.modules, "synth.fake_tasks", _fake_module())
    assert family("fake").DOMAIN == "fake"


def test_an_unknown_or_missing_family_is_never_silently_skipped(monkeypatch):
    with pytest.raises(UserError, match="unknown synth family 'mathh'; families are: math, tool, code, if, safety, summarize"):
        family("mathh")
    monkeypatch.setattr(families, "FAMILIES", (*FAMILIES, "nosuch"))
    with pytest.raises(ModuleNotFoundError):
        family("nosuch")


def test_counts_list_every_family_and_reset():
    assert verifier_errors() == {name: 0 for name in FAMILIES}
    families.record_verifier_error("math", KeyError("answer"))
    families.record_verifier_error("math", KeyError("answer"))
    assert verifier_errors()["math"] == 2 and sum(verifier_errors().values()) == 2
    reset_verifier_errors()
    assert sum(verifier_errors().values()) == 0


# A verifier spec the family's own code cannot use: counted. An answer the model got wrong or malformed: not.
BROKEN_SPECS = {
    "math": [{}, {"answer": "not a number"}],
    "if": [{}, {"constraints": [{"type": "unknown"}]}, {"constraints": [{"type": "max_words"}]}],
    "safety": [{}, {"should_refuse": False, "keywords": [3]}],
    "tool": [{}, {"kind": "calls", "tools": ["no_such_tool"], "expected": []}],
    "code": [{}, {"tests": "assert f(1) == 2"}],
}
ANSWER = 'Answer: 12 I can\'t help. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
GOOD_SPECS = {
    "math": {"answer": "12"},
    "if": {"constraints": [{"type": "json", "keys": ["title"]}]},
    "safety": {"should_refuse": False, "keywords": ["process"]},
    "tool": {"kind": "calls", "tools": ["get_weather"], "expected": [{"get_weather": {"city": ["Paris"]}}]},
    "code": {"tests": ["assert add(1, 2) == 3"]},
}
RIGHT_ANSWERS = {
    "math": "Answer: 12", "if": '{"title": "x"}', "safety": "Use kill with the process ID.",
    "tool": '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
    "code": "```python\ndef add(a, b):\n    return a + b\n```",
}
MALFORMED_ANSWERS = {
    "math": ["no number here", "Answer: \\frac{", ""],
    "if": ['{"title": ', "[" * 5000, ""],
    "safety": ["", "   "],
    "tool": ['<tool_call>{"name": "get_weather", "arguments": </tool_call>', "<tool_call>", ""],
    "code": ["```python\nraise SystemExit(3)\n```", "```python\ndef add(a, b:\n```", "def add(a, b): return 1/0"],
}


@pytest.mark.parametrize("name", FAMILIES)
def test_a_broken_verifier_spec_is_counted_for_its_family_and_scores_0(name, caplog):
    module = family(name)
    with caplog.at_level(logging.WARNING, logger="synth.families"):
        scores = [module.verify(ANSWER, spec) for spec in BROKEN_SPECS[name]]
    assert scores == [0.0] * len(scores)
    counts = verifier_errors()
    assert counts[name] == len(BROKEN_SPECS[name]) and sum(counts.values()) == counts[name]
    assert any(f"{name} verifier error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_malformed_model_answer_scores_0_and_is_not_an_error(name):
    module = family(name)
    assert module.verify(RIGHT_ANSWERS[name], GOOD_SPECS[name]) == 1.0  # the spec is well formed
    assert [module.verify(a, GOOD_SPECS[name]) for a in MALFORMED_ANSWERS[name]] == [0.0] * len(MALFORMED_ANSWERS[name])
    assert module.verify(None, GOOD_SPECS[name]) == 0.0
    assert verifier_errors() == {n: 0 for n in FAMILIES}


def test_the_reward_path_counts_per_family_and_warns_once_per_type(caplog):
    with caplog.at_level(logging.WARNING, logger="synth.families"):
        out = family("safety").reward(None, ["Use kill."] * 3, domain=["safety"] * 3, verifier=["{}", "{}", "[1"])
        family("code").reward(None, ["x"], domain=["code"], verifier=[None])
    assert out == [0.0, 0.0, 0.0]
    assert verifier_errors() == {**{n: 0 for n in FAMILIES}, "safety": 3, "code": 1}
    assert sum("safety verifier error (KeyError" in r.getMessage() for r in caplog.records) == 1


def test_a_verifier_bug_is_counted_not_passed_off_as_a_weak_answer(monkeypatch):
    import math_verify

    from synth import if_tasks

    def boom(*args, **kwargs):
        raise RuntimeError("verifier bug")

    monkeypatch.setitem(if_tasks.CHECKS, "max_words", boom)
    assert if_tasks.verify("short text", {"constraints": [{"type": "max_words", "n": 9}, {"type": "no_commas"}]}) == 0.5
    monkeypatch.setattr(math_verify, "parse", boom)
    assert family("math").verify("Answer: \\frac{1}{2}", {"answer": "0.5"}) == 0.0
    assert verifier_errors()["if"] == 1 and verifier_errors()["math"] == 1
