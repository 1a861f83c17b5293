"""The acceptance test of the splits: every dataset the tiny `iterate --round 3` trains on is built (no training)
and checked, per family, against the run's dev and test sets. It prints the template-overlap figure."""
import pytest

from committee.round_config import load
from committee.split_audit import audit, audit_lines, masked_user_text


def test_masking_hides_digits_and_names_only():
    prompt = [{"role": "system", "content": "Tools: x"}, {"role": "user", "content": "Ana has 12 apples and Ben 3.5."}]
    assert masked_user_text(prompt) == "<N> has # apples and <N> #."


@pytest.mark.slow
def test_no_dev_or_test_problem_reaches_any_training_data_of_the_tiny_run():
    cfg = load("tiny")
    result = audit(cfg, rounds=3)
    print("\n" + "\n".join(audit_lines(result)))  # the template-overlap figure is stated, not hidden
    assert set(result["families"]) == set(cfg.families) and {"general", "summarize"} <= set(cfg.families)
    for family, r in result["families"].items():
        assert r["dev"] == r["test"] == cfg.eval_prompts, (family, r)  # distinct problems per split, all there
        assert r["dev_leaks"] == 0 and r["test_leaks"] == 0, (family, r)
        assert r["reference_copies"] == 0, (family, r)
        assert r["train_rows"] > 1000 and r["train_rows_not_train_split"] == 0, (family, r)
        assert 0.0 <= r["template_overlap"] <= 1.0
    assert result["drill"]["facts"] > 10000 and result["drill"]["leaks"] == 0


def test_the_audit_catches_a_leak(monkeypatch):
    """The check can fail: put test problems into round 1's prompts and it must count them."""
    import committee.round_data as rd

    cfg = load("tiny", None, ["eval_prompts=20", "prompts_per_round=20", "sft_items=20", "rm_bootstrap_pairs=20",
                              "rm_round_pairs=20", "rm_eval_pairs=10", "families=[math,safety]"])
    cfg.recipes["init"] = ["family_items=40", "family_counts.tool=40", "math_items=40", "drill_problems=200"]
    real = rd.round_prompts

    def leaky(cfg_, round_n, seed):
        prompts, sft = real(cfg_, round_n, seed)
        test = [dict(r, split="train") for f in cfg_.families for r in rd.eval_split_rows(cfg_, f, "test")[:3]]
        return prompts + test, sft

    monkeypatch.setattr(rd, "round_prompts", leaky)
    result = audit(cfg, rounds=1)
    for family in ("math", "safety"):
        assert result["families"][family]["test_leaks"] == 3
    assert result["families"]["safety"]["reference_copies"] >= 1  # safety references are long and specific
