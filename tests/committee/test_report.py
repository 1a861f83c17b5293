"""The round report: report.md, its plots and sections from fixture round files; skipped plots are said so."""
import json
from pathlib import Path

import pytest

from committee.report import write_report


def _entry(member, round_n, recipe, promoted, math, code, elo, path=None, **extra):
    mean = round((math + code) / 2, 4)
    return {"member": member, "round": round_n, "recipe": recipe, "promoted": promoted,
            "dev": {"math": math, "code": code, "mean": mean}, "dev_ci95": [mean - 0.05, mean + 0.05],
            "elo": elo, "elo_ci95": [elo - 20, elo + 20], "winrate_vs_prev_best": 0.6 if round_n else None,
            "path": path, **extra}


def make_run(root: Path, with_rl: bool = True) -> Path:
    """round_0 (one SFT member) and round_1 (DPO + MDLOO) with leaderboards, samples, manifests."""
    run = root / "demo"
    members = run / "round_1" / "members" / "r1-mdloo"
    members.mkdir(parents=True)
    (members / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 1, "kl": 0.0, "reward": 0.2}, {"step": 2, "loss": 0.5}, {"step": 3, "kl": 0.05, "reward": 0.5},
        {"step": 5, "kl": 0.12, "reward": 0.8}]))
    r0 = [_entry("r0-sft", 0, "sft", True, 0.3, 0.2, 1000.0)]
    rl = {"kl": 0.12, "reward": 0.8} if with_rl else {}
    r1 = [_entry("r1-mdloo", 1, "mdloo" if with_rl else "sft", True, 0.6, 0.4, 1060.0, str(members), **rl),
          _entry("r1-dpo", 1, "dpo", False, 0.5, 0.3, 1010.0), {**r0[0], "elo": 930.0}]
    for n, entries in ((0, r0), (1, r1)):
        (run / f"round_{n}" / "eval").mkdir(parents=True, exist_ok=True)
        (run / f"round_{n}" / "eval" / "leaderboard.json").write_text(json.dumps(entries))
    order = [e["member"] for e in r1]
    (run / "round_1" / "eval" / "winrates.json").write_text(json.dumps(
        {"members": order, "matrix": [[None, 0.7, 0.8], [0.3, None, 0.6], [0.2, 0.4, None]]}))
    (run / "round_0" / "manifest.json").write_text(json.dumps({"rm_accuracy": 0.71}))
    (run / "round_1" / "manifest.json").write_text(json.dumps({
        "rm_accuracy": {"accuracy": 0.78}, "promotion": {"promoted": ["r1-mdloo"], "committee": ["r1-mdloo", "r0-sft"],
                                                       "reason": "r1-mdloo beat r0-sft by 0.250."},
        "stages": {"sample": {"status": "done", "seconds": 12.5}, "rm": {"status": "done", "seconds": 30.0}}}))
    return run


def test_report_writes_markdown_and_all_plots(tmp_path):
    run = make_run(tmp_path)
    report = write_report(run, 1)
    assert report == run / "round_1" / "report.md"
    text = report.read_text()
    for needle in ("# Round 1 report", "Promoted this round: r1-mdloo", "r1-mdloo beat r0-sft",
                   "| r1-dpo | 1 | dpo |", "round 0: pairwise accuracy 0.710", "round 1: pairwise accuracy 0.780",
                   "| rm | 30.0 |", "Next committee: r1-mdloo, r0-sft"):
        assert needle in text
    for name in ("accuracy_by_domain", "rm_accuracy", "winrate_matrix", "reward_vs_kl"):
        png = run / "round_1" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"(plots/{name}.png)" in text


def test_report_skips_plots_without_data_and_needs_a_leaderboard(tmp_path):
    run = make_run(tmp_path, with_rl=False)
    (run / "round_0" / "manifest.json").unlink()
    (run / "round_1" / "manifest.json").unlink()
    text = write_report(run, 1).read_text()
    assert "reward_vs_kl.png: skipped" in text and "rm_accuracy.png: skipped" in text
    assert not (run / "round_1" / "plots" / "reward_vs_kl.png").exists()
    assert (run / "round_1" / "plots" / "winrate_matrix.png").is_file()
    assert "no RM accuracy recorded" in text
    with pytest.raises(ValueError, match="no leaderboard"):
        write_report(run, 2)


def test_samples_give_win_rates_and_the_paired_delta_against_round_zero(tmp_path):
    run = make_run(tmp_path)
    (run / "round_1" / "eval" / "winrates.json").unlink()
    quality = {"r1-mdloo": (1.0, 1.0), "r1-dpo": (0.0, 0.5), "r0-sft": (-1.0, 0.0)}
    rows = [{"prompt_id": f"p{i}", "member": m, "domain": "math", "rm_score": rm + i, "verifier_score": v,
             "prompt": "q", "completion": "a"} for i in range(3) for m, (rm, v) in quality.items()]
    (run / "round_1" / "eval" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_report(run, 1).read_text()
    assert "(plots/winrate_matrix.png)" in text  # recomputed from the samples
    assert "Against r0-sft" not in text  # nothing was scored on test yet
    test = [{"member": "r1-mdloo", "round": 1, "scored_in": 1, "test": {"math": 1.0, "mean": 1.0},
             "test_ci95": [0.9, 1.0], "vs_baseline": {"baseline": "r0-sft", "delta": 1.0, "ci95": [1.0, 1.0]}}]
    (run / "round_1" / "eval" / "test_leaderboard.json").write_text(json.dumps(test))
    text = write_report(run, 1).read_text()
    assert "## Against r0-sft on the test split" in text and "Promotion used the **dev** split" in text
    assert "- r1-mdloo - r0-sft: +100.0 points [+100.0, +100.0]" in text
    assert "| r1-mdloo | 1 | mdloo | yes |" in text and "1.000 [0.900, 1.000]" in text


def test_report_has_domain_intervals_training_curves_rounds_rm_heads_and_samples(tmp_path):
    run = make_run(tmp_path)
    lb = run / "round_1" / "eval" / "leaderboard.json"
    entries = json.loads(lb.read_text())
    entries[0]["dev_domains"] = {"math": {"accuracy": 0.6, "n": 50, "problems": 50, "ci95": [0.4618, 0.7239]},
                                 "code": {"accuracy": 0.4, "n": 50, "problems": 50, "ci95": [0.2761, 0.5382]}}
    lb.write_text(json.dumps(entries))
    dpo = run / "round_1" / "members" / "r1-dpo"
    dpo.mkdir()
    (dpo / "metrics.jsonl").write_text("".join(json.dumps({"source": "trainer", "step": s, "loss": 0.7 - s / 100,
                                                           "rewards/accuracies": s / 10}) + "\n" for s in range(1, 6)))
    manifest = json.loads((run / "round_1" / "manifest.json").read_text())
    manifest["rm_accuracy"] = {"accuracy": 0.78, "n_pairs": 200, "grading": {"truthfulness": 0.6, "verbosity": 0.9}}
    (run / "round_1" / "manifest.json").write_text(json.dumps(manifest))
    (run / "round_1" / "rm").mkdir()
    (run / "round_1" / "rm" / "rm_metrics.json").write_text(json.dumps({"metrics": {
        "eval_grading_truthfulness_majority_baseline": 0.7, "eval_grading_verbosity_majority_baseline": 0.8}}))
    for n, member, mean in ((0, "r0-sft", 0.30), (1, "r1-mdloo", 0.42)):
        test = [{"member": member, "round": n, "scored_in": n, "test": {"math": mean, "mean": mean},
                 "test_ci95": [mean - 0.04, mean + 0.04],
                 "test_domains": {"math": {"accuracy": mean, "n": 80, "ci95": [mean - 0.1, mean + 0.1]}}}]
        (run / f"round_{n}" / "eval" / "test_leaderboard.json").write_text(json.dumps(test))
    rows = [{"prompt_id": "p1", "member": m, "domain": "math", "rm_score": 0.1, "verifier_score": v,
             "prompt": [{"role": "user", "content": "What is 2 + 2?"}],
             "completion": f"{m} says <b>{4 if v else 5}</b>"}
            for m, v in (("r1-mdloo", 1.0), ("r1-dpo", 0.0), ("r0-sft", 0.0))]
    (run / "round_1" / "eval" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    text = write_report(run, 1).read_text()
    # per-domain cells: stored Wilson intervals, n in the header; computed from samples where not stored
    mdloo_row = next(x for x in text.splitlines() if x.startswith("| r1-mdloo | 1 |"))
    assert "0.600 [0.462, 0.724] n=50" in mdloo_row and "0.400 [0.276, 0.538] n=50" in mdloo_row
    dpo_row = next(x for x in text.splitlines() if x.startswith("| r1-dpo | 1 |"))
    assert "0.000 [0.000, 0.793] n=1" in dpo_row  # from its one graded dev sample: Wilson at 0/1
    assert "### Test accuracy by domain" in text and "test math (n=80)" in text
    # training curves: one figure per member of the round, linked
    for name in ("r1-mdloo", "r1-dpo"):
        assert (run / "round_1" / "plots" / f"training_{name}.png").stat().st_size > 5000
        assert f"(plots/training_{name}.png)" in text
    assert "## Training curves" in text
    # the cross-round summary
    assert "| 0 | r0-sft | 0.250 [0.200, 0.300] | - | 0.300 [0.260, 0.340] | - |" in text
    assert "| 1 | r1-mdloo | 0.500 [0.450, 0.550] | +0.250 | 0.420 [0.380, 0.460] | +0.120 |" in text
    # the RM's grading heads beside their majority baselines
    assert "| 1 | 0.780 (200) | 0.600 / 0.700 * | 0.900 / 0.800 |" in text
    # sample outputs: the top members' answers, literal
    assert "## Sample outputs" in text and "```text\nr1-mdloo says <b>4</b>\n```" in text
    assert "**r0-sft** (verifier 0.00, RM 0.10):" in text


@pytest.mark.parametrize("copy, verdict", [({"first": 16.7, "repeat": 16.8}, "does not copy"),
                                           ({"first": 22.9, "repeat": 0.02}, "copies")])
def test_report_says_what_the_base_model_can_do(tmp_path, copy, verdict):
    run = make_run(tmp_path)
    (run / "base").mkdir()
    (run / "base" / "meta.json").write_text(json.dumps({
        "parameters": 430896, "heldout_lm_loss": 0.341, "probe_exact_match": 0.9633, "probes": 300,
        "copy_score": copy}))
    text = write_report(run, 1).read_text()
    assert "## Base model" in text and "430,896 parameters" in text
    assert "300 held-out arithmetic probes 96.3%" in text
    assert f"the base {verdict} from its context" in text


def test_report_without_a_base_report_has_no_base_section(tmp_path):
    assert "## Base model" not in write_report(make_run(tmp_path), 1).read_text()
