"""report.md's sections as pure functions: per-domain cells with n and intervals (stored or from samples),
the cross-round summary, the RM's grading heads beside their baselines, and sample outputs kept literal."""
from markdown_it import MarkdownIt

from committee.report_samples import fenced, md_escape, pick_prompts, sample_section
from committee.report_tables import cross_round_table, domain_stats, leaderboard_table, rm_heads, rm_heads_table


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_domain_cells_carry_the_interval_and_n_in_the_header():
    entries = [{"member": "r1-dpo", "round": 1, "dev": {"math": 0.5, "code": 0.0, "mean": 0.25},
                "dev_domains": {"math": {"accuracy": 0.5, "n": 20, "ci95": [0.2993, 0.7007]},
                                "code": {"accuracy": 0.0, "n": 200, "ci95": [0.0, 0.0188]}}},
               {"member": "r0-sft", "round": 0, "dev": {"math": 0.25, "code": 0.0, "mean": 0.125},
                "dev_domains": {"math": {"accuracy": 0.25, "n": 20, "ci95": [0.1119, 0.4687]},
                                "code": {"accuracy": 0.0, "n": 100, "ci95": [0.0, 0.037]}}}]
    stats = domain_stats(entries, "dev")
    head, _, first, second = leaderboard_table(entries, (), stats)
    assert "dev math (n=20)" in _cells(head) and "dev code" in _cells(head)  # code's n differs between members
    cells = dict(zip(_cells(head), _cells(first)))
    assert cells["dev math (n=20)"] == "0.500 [0.299, 0.701]"
    assert cells["dev code"] == "0.000 [0.000, 0.019] n=200"  # a 0% domain keeps a real upper bound
    assert dict(zip(_cells(head), _cells(second)))["dev code"] == "0.000 [0.000, 0.037] n=100"


def test_domain_stats_are_computed_from_samples_when_not_stored():
    samples = [{"member": "r1-dpo", "domain": "math", "prompt_id": f"m{i}", "verifier_score": 1.0} for i in range(10)]
    samples += [{"member": "r1-dpo", "domain": "code", "prompt_id": f"c{i}", "verifier_score": 0.5} for i in range(10)]
    entries = [{"member": "r1-dpo", "round": 1, "dev": {"math": 1.0, "code": 0.0, "mean": 0.5}},
               {"member": "r9-gone", "round": 1, "dev": {"math": 0.3, "mean": 0.3}}]
    stats = domain_stats(entries, "dev", lambda: samples)
    assert stats["r1-dpo"]["math"] == {"accuracy": 1.0, "n": 10, "problems": 10, "ci95": [0.7225, 1.0]}
    assert stats["r1-dpo"]["code"]["ci95"] == [0.0, 0.2775]  # Wilson at 0/10, not [0, 0]
    assert stats["r9-gone"] == {}
    head, _, *rows = leaderboard_table(entries, (), stats)
    by_member = {_cells(r)[0]: dict(zip(_cells(head), _cells(r))) for r in rows}
    assert by_member["r9-gone"]["dev math"] == "0.300"  # no samples: the accuracy alone, no invented interval
    assert by_member["r1-dpo"]["dev math"] == "1.000 [0.723, 1.000] n=10"  # n in the cell: r9-gone's is unknown


def test_cross_round_summary_rows_and_deltas():
    entries = [{"member": "r0-sft", "round": 0, "promoted": True, "dev": {"mean": 0.30}, "dev_ci95": [0.25, 0.35]},
               {"member": "r1-dpo", "round": 1, "promoted": True, "dev": {"mean": 0.40}, "dev_ci95": [0.35, 0.45]},
               {"member": "r1-rs", "round": 1, "promoted": True, "dev": {"mean": 0.35}},
               {"member": "r2-sft", "round": 2, "promoted": False, "dev": {"mean": 0.20}},
               {"member": "r3-ipo", "round": 3, "promoted": True, "dev": {"mean": 0.45}, "dev_ci95": [0.4, 0.5]}]
    tests = {"r0-sft": {"test": {"mean": 0.31}, "test_ci95": [0.26, 0.36]},
             "r1-dpo": {"test": {"mean": 0.36}, "test_ci95": [0.30, 0.42]}}
    promoted = {0: ["r0-sft"], 1: ["r1-dpo", "r1-rs"], 2: [], 3: ["r3-ipo"]}
    head, _, *rows = cross_round_table(entries, tests, promoted, [0, 1, 2, 3])
    assert _cells(head) == ["round", "promoted (best)", "dev mean [95% CI]", "Δ dev", "test mean [95% CI]", "Δ test"]
    assert _cells(rows[0]) == ["0", "r0-sft", "0.300 [0.250, 0.350]", "-", "0.310 [0.260, 0.360]", "-"]
    assert _cells(rows[1]) == ["1", "r1-dpo (+1 more)", "0.400 [0.350, 0.450]", "+0.100", "0.360 [0.300, 0.420]",
                               "+0.050"]
    assert _cells(rows[2]) == ["2", "none (committee kept)", "-", "-", "-", "-"]
    assert _cells(rows[3]) == ["3", "r3-ipo", "0.450 [0.400, 0.500]", "+0.050", "-", "-"]  # vs round 1


def test_rm_heads_from_the_manifest_with_baselines_from_the_rm_folder():
    grading = {"truthfulness": 0.6175, "verbosity": 0.86}
    manifest = {"rm_accuracy": {"accuracy": 0.82, "n_pairs": 200, "grading": grading}}
    metrics = {"metrics": {"eval_grading_truthfulness_majority_baseline": 0.685,
                           "eval_grading_verbosity_majority_baseline": 0.8325,
                           "eval_grading_harmlessness_accuracy": 0.98}}
    r1 = rm_heads(manifest, metrics)
    heads = {"truthfulness": (0.6175, 0.685), "verbosity": (0.86, 0.8325), "harmlessness": (0.98, None)}
    assert r1 == {"pairwise": 0.82, "n_pairs": 200, "heads": heads}
    assert rm_heads({"rm_accuracy": 0.71}, None) == {"pairwise": 0.71, "n_pairs": None, "heads": {}}
    assert rm_heads(None, None) == {}
    head, _, row = rm_heads_table({1: r1})
    cells = dict(zip(_cells(head), _cells(row)))
    assert cells["pairwise accuracy (n pairs)"] == "0.820 (200)"
    assert cells["truthfulness head / majority"] == "0.618 / 0.685 *"  # below its majority baseline
    assert cells["verbosity head / majority"] == "0.860 / 0.833"
    assert cells["harmlessness head / majority"] == "0.980 / -"
    assert rm_heads_table({0: {"pairwise": 0.7, "heads": {}}}) == []


def _sample(member, pid, domain, verifier, completion, prompt="q"):
    return {"member": member, "prompt_id": pid, "domain": domain, "verifier_score": verifier, "rm_score": 0.5,
            "completion": completion, "prompt": [{"role": "user", "content": prompt}]}


def test_prompts_picked_disagreements_first_one_domain_at_a_time():
    samples = [_sample(m, pid, dom, v, "x") for pid, dom, scores in (
        ("m1", "math", (1.0, 1.0)), ("m2", "math", (1.0, 0.0)), ("m3", "math", (0.0, 1.0)),
        ("c1", "code", (0.5, 0.5)), ("c2", "code", (1.0, 0.5))) for m, v in zip(("a", "b"), scores)]
    samples.append(_sample("a", "only-a", "math", 1.0, "x"))
    assert pick_prompts(samples, ["a", "b"], 3) == ["c2", "m2", "c1"]
    assert pick_prompts(samples, ["a", "b"], 10) == ["c2", "m2", "c1", "m3", "m1"]
    assert pick_prompts(samples, ["a", "zz"], 3) == []


def test_sample_outputs_stay_literal_markdown():
    evil = "```\n## injected heading\n<script>alert(1)</script>\n| a | b |\n````"
    samples = [_sample("r1-dpo", "p*1", "math_[x]", 1.0, evil, prompt="What is <b>2</b>?"),
               _sample("r0-sft", "p*1", "math_[x]", 0.0, "plain answer")]
    lines = sample_section(samples, ["r1-dpo", "r0-sft"], 2)
    text = "\n".join(lines)
    tokens = MarkdownIt("commonmark").parse(text)
    kinds = [t.type for t in tokens]
    assert "html_block" not in kinds and "html_inline" not in kinds
    assert kinds.count("heading_open") == 2  # "Sample outputs" and the prompt's: the answer's did not escape
    html = MarkdownIt("commonmark").render(text)
    assert "<h3>math_[x]: p*1</h3>" in html and "<script>" not in html and "&lt;script&gt;" in html
    fences = [t for t in tokens if t.type == "fence"]
    assert [t.content for t in fences] == ["What is <b>2</b>?\n", evil + "\n", "plain answer\n"]
    assert fences[1].markup == "`" * 5  # longer than the longest backtick run in the answer
    assert "**r1-dpo** (verifier 1.00, RM 0.50):" in lines and "**r0-sft** (verifier 0.00, RM 0.50):" in lines


def test_fence_cuts_long_text_and_escape_keeps_one_line():
    block = fenced("a" * 30, limit=10)
    assert block == ["```text", "a" * 10, "[... 20 more characters cut]", "```"]
    assert md_escape("x_[y]\n*z*") == r"x\_\[y\] \*z\*"


def test_the_gold_table_shows_dev_and_test_gold_of_the_open_ended_domains():
    from committee.report_tables import gold_table

    entries = [{"member": "r1-rs", "round": 1, "dev": {"mean": 0.5}, "promoted": True,
                "dev_gold": {"general": {"mean": 0.61, "ci95": [0.5, 0.7], "n": 10}}},
               {"member": "r0-sft", "round": 0, "dev": {"mean": 0.4}, "promoted": True,
                "dev_gold": {"general": {"mean": 0.42, "ci95": [0.3, 0.5], "n": 10}}},
               {"member": "r1-dpo", "round": 1, "dev": {"mean": 0.3}}]
    test = [{"member": "r1-rs", "test_gold": {"general": {"mean": 0.58, "ci95": [0.48, 0.68], "n": 10}}}]
    lines = gold_table(entries, test)
    assert lines[0] == "| member | general dev | general test |"
    assert lines[2] == "| r1-rs | 0.610 [0.500, 0.700] | 0.580 [0.480, 0.680] |"
    assert lines[3] == "| r0-sft | 0.420 [0.300, 0.500] | - |" and len(lines) == 4  # r1-dpo: no gold, no row
    assert gold_table([{"member": "a", "round": 0, "dev": {"mean": 0.1}}]) == []
