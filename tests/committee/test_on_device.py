"""The on-device track: the whole track on a miniature config (every step, resumable), its bad input as one
line, and AFM's claims computed from hand-made numbers."""
import json
import shutil

import pytest

from afm_align.cli import main as cli_main
from committee.on_device_report import claims, quant_rows, recovered_share

MINI = ["seeds=[0]", "schemes=[4bit,mixed]", "ranks=[16]",
        "teacher=[steps=4,drill_problems=500,family_items=20,family_counts.tool=20,math_items=20,probes=10]",
        "distill=[steps=3,batch_size=4]", "corpus_items=20", "corpus_math_items=20", "prompts_per_family=20",
        "heldout_per_family=10", "summarize_items=40", "eval_per_domain=2", "eval_max_new_tokens=8",
        "sft=[max_steps=2,num_checkpoints=1,select_prompts=2]", "adapter=[corpus_steps=2,sft_steps=2]",
        "task_adapter=[sft_steps=2]", "writer=[steps=3,batch_size=4]", "serve_requests=6"]


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    """A miniature track run once for the module (under its own runs root)."""
    import os

    root = tmp_path_factory.mktemp("track")
    old = os.environ.get("AFM_ALIGN_RUNS")
    os.environ["AFM_ALIGN_RUNS"] = str(root)
    try:
        assert cli_main(["on-device", "--run", "mini", *MINI]) == 0
    finally:
        if old is None:
            os.environ.pop("AFM_ALIGN_RUNS", None)
        else:
            os.environ["AFM_ALIGN_RUNS"] = old
    return root / "mini" / "on_device"


def test_the_track_writes_every_step_with_provenance(track):
    results = json.loads((track / "results.json").read_text())
    for member, recipe in (("student-pruned", "prune"), ("student-distilled-s0", "distill"),
                           ("student-scratch-s0", "distill"), ("post-trained", "sft"), ("q-mixed", "quantize"),
                           ("adapters/ara-mixed-r16-s0", "adapter"), ("tasks/summarize-s0", "adapter")):
        assert json.loads((track / member / "meta.json").read_text())["recipe"] == recipe, member
    assert json.loads((track / "tasks/summarize-s0/meta.json").read_text())["init_adapter"].endswith("ara-mixed-r16-s0")
    assert results["quantised"]["mixed"]["bits"]["bits_per_weight_projections"] < 4.2
    assert results["serving"]["responses"] == results["serving"]["requests"] == 6
    assert results["serving"]["errors"] == 0
    assert "| AFM claim |" in (track / "report.md").read_text()
    gold = json.loads((track / "data/summarize_gold.json").read_text())
    rows = [json.loads(line) for line in (track / "data/summarize_test/rows.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} <= set(gold) and all(r["verifier"] in ("{}", {}) for r in rows)
    assert all("gold" not in r for r in rows)  # the rubric is only in the gold file, which training never reads
    assert results["writer_dev"]["n"] > 0


def test_a_resumed_track_redoes_only_what_is_missing_and_equals_the_first(track, monkeypatch):
    before = json.loads((track / "results.json").read_text())
    shutil.rmtree(track / "adapters" / "ara-4bit-r16-s0")
    (track / "evals" / "ara-4bit-r16-s0.json").unlink()
    teacher_mtime = (track / "teacher/base/meta.json").stat().st_mtime
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(track.parents[1]))
    assert cli_main(["on-device", "--run", "mini", *MINI]) == 0
    after = json.loads((track / "results.json").read_text())
    assert (track / "teacher/base/meta.json").stat().st_mtime == teacher_mtime  # not rebuilt
    assert after["recovery"]["ara-4bit-r16-s0"] == before["recovery"]["ara-4bit-r16-s0"]  # same seed, same adapter


@pytest.mark.parametrize("override, message", [
    ("schemes=[3bit]", "unknown scheme '3bit'"),
    ("ranks=[0]", "ranks"),
    ("ranks=[8]", "ranks must include 16"),
])
def test_bad_track_input_is_one_line_and_writes_nothing(override, message, tmp_path, capsys):
    assert cli_main(["on-device", "--run", "bad", override]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs" / "bad").exists()


def test_a_preset_without_the_track_config_is_one_line(capsys):
    assert cli_main(["on-device", "--run", "x", "--preset", "small"]) == 2
    assert "no on_device config" in capsys.readouterr().err


def _eval(loss):
    return {"heldout_loss": loss, "test": {"per_domain": {}, "mean": 0.0}}


HAND = {  # full precision 2.0; the same rank-16 adapter on it 1.8
    "full_precision": _eval(2.0),
    "quantised": {"4bit": _eval(2.1), "mixed": _eval(2.3), "2bit": _eval(3.0), "4bit-whole": _eval(2.2)},
    "recovery": {"ara-full-r16-s0": _eval(1.8), "ara-4bit-r16-s0": _eval(1.82), "ara-mixed-r16-s0": _eval(1.83),
                 "ara-2bit-r16-s0": _eval(1.9), "ara-4bit-whole-r16-s0": _eval(1.823)},
}


def test_the_recovered_share_is_the_quantisation_cost_that_an_adapter_removes():
    # 4bit: cost 0.1; with adapters 1.82 vs 1.80 -> 0.02 left -> 80% recovered
    assert recovered_share(HAND, "4bit") == pytest.approx(0.8)
    assert recovered_share(HAND, "mixed") == pytest.approx(0.9)
    assert recovered_share(HAND, "2bit") == pytest.approx(0.9)
    result = {c["claim"]: c["reproduced"] for c in claims(HAND)["claims"]}
    assert list(result.values()) == [True, True, True]


def test_a_cost_within_the_seed_spread_is_not_measurable():
    noisy = json.loads(json.dumps(HAND))
    noisy["quantised"]["4bit"] = _eval(2.005)  # costs 0.005 ...
    noisy["recovery"]["ara-4bit-r16-s1"] = _eval(1.85)  # ... while two rank-16 seeds differ by 0.03
    assert recovered_share(noisy, "4bit") is None
    verdicts = [c["reproduced"] for c in claims(noisy)["claims"]]
    assert verdicts[:2] == [True, True]  # decided on mixed and 2bit alone
    only_noise = json.loads(json.dumps(noisy))
    for scheme in ("mixed", "2bit"):
        only_noise["quantised"][scheme] = _eval(2.001)
        first = only_noise["recovery"][f"ara-{scheme}-r16-s0"]["heldout_loss"]
        only_noise["recovery"][f"ara-{scheme}-r16-s1"] = _eval(first + 0.03)
    assert [c["reproduced"] for c in claims(only_noise)["claims"]][:2] == [None, None]


def test_a_claim_that_does_not_hold_is_reported_as_not_reproduced():
    worse = json.loads(json.dumps(HAND))
    worse["recovery"]["ara-2bit-r16-s0"] = _eval(2.5)  # 2bit: 0.7 of its 1.0 cost left -> 30% recovered
    worse["recovery"]["ara-4bit-whole-r16-s0"] = _eval(1.9)  # whole-tensor tables still cost 0.08 of 0.1
    result = [c["reproduced"] for c in claims(worse)["claims"]]
    assert result == [False, False, False]
    rows = quant_rows(worse)
    assert [r["scheme"] for r in rows[:2]] == ["full precision", "full precision"] and rows[1]["adapter"] == "rank 16"
