"""Rejection sampling: best per prompt, min-score and dedup guards, a valid sft dataset, the rs recipe."""
import json
import shutil

import pytest

from afm_align.store import read_manifest, read_rows, write_dataset
from alignment import rejection_sampling as rs
from alignment.members import read_meta
from alignment.rejection_sampling import RSConfig
from alignment.sft import SFTRecipeConfig


def prompt_rows(n=3, domain="math"):
    return [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"{i} + 1 ="}], "domain": domain,
             "verifier": {"answer": str(i + 1)}, "source": "test", "split": "train"} for i in range(n)]


def cand(p, member, text, sample=0):
    return {"prompt_index": p, "member": member, "sample": sample, "completion": text}


def test_pick_best_keeps_the_top_sample_per_prompt():
    prompts = prompt_rows(2)
    cands = [cand(0, "a", "x"), cand(0, "b", "y"), cand(0, "b", "z", 1), cand(1, "a", "u"), cand(1, "b", "v")]
    kept, stats = rs.pick_best(prompts, cands, [0.2, 0.9, 0.5, 0.7, 0.1], min_score=None)
    assert [(k["completion"], k["member"], k["score"]) for k in kept] == [("y", "b", 0.9), ("u", "a", 0.7)]
    assert stats["kept"] == 2 and stats["candidates"] == 5


def test_min_score_empty_and_unscored_guards():
    prompts = prompt_rows(3)
    cands = [cand(0, "a", "low"), cand(1, "a", "   "), cand(1, "b", "ok"), cand(2, "a", "nothing applies")]
    kept, stats = rs.pick_best(prompts, cands, [0.4, 5.0, 0.6, None], min_score=0.5)
    assert [k["row"]["id"] for k in kept] == ["p1"] and kept[0]["completion"] == "ok"
    assert stats["below_min"] == 1 and stats["empty"] == 1 and stats["unscored"] == 1


def test_dedup_of_samples_and_prompts(tmp_path):
    prompts = prompt_rows(1)
    cands = [cand(0, "a", "same"), cand(0, "b", "same "), cand(0, "b", "other", 1)]
    kept, stats = rs.pick_best(prompts, cands, [1.0, 1.0, 0.5], min_score=None, dedup=True)
    assert stats["duplicates"] == 1 and kept[0]["member"] == "a"  # the first member keeps the credit
    _, no_dedup = rs.pick_best(prompts, cands, [1.0, 1.0, 0.5], min_score=None, dedup=False)
    assert no_dedup["duplicates"] == 0

    rows = prompt_rows(2) + [dict(prompt_rows(1)[0], id="p0-again")]
    write_dataset(rows, "prompt", tmp_path / "prompts", producer="test")
    assert [r["id"] for r in rs.load_prompts(tmp_path / "prompts", "train")] == ["p0", "p1"]
    assert len(rs.load_prompts(tmp_path / "prompts", "train", dedup=False)) == 3
    with pytest.raises(ValueError, match="split 'heldout'"):
        rs.load_prompts(tmp_path / "prompts", "heldout")


def test_combined_score_is_verifier_plus_weighted_rm():
    prompts = prompt_rows(1) + [dict(prompt_rows(1)[0], id="g", domain="general", verifier="{}")]
    cands = [cand(0, "a", "Answer: 1"), cand(0, "a", "Answer: 7"), cand(1, "a", "hello")]

    def rm(prompts, completions, **columns):
        return [0.5 * len(c) for c in completions]

    assert rs.candidate_scores(prompts, cands, None) == [1.0, 0.0, None]
    assert rs.candidate_scores(prompts, cands, rm, rm_weight=2.0) == [10.0, 9.0, 5.0]
    # the verifier gate (the recipe's default, verifier_min 1.0): the failed answer is never kept
    assert rs.candidate_scores(prompts, cands, rm, rm_weight=2.0, verifier_min=1.0) == [10.0, None, 5.0]


def test_write_samples_writes_an_sft_dataset_with_provenance(tiny_base_dir, tmp_path):
    other = tmp_path / "members" / "other"
    shutil.copytree(tiny_base_dir, other)
    write_dataset(prompt_rows(3), "prompt", tmp_path / "prompts", producer="test")
    cfg = RSConfig(from_checkpoint=str(tiny_base_dir), data=str(tmp_path / "prompts"),
                   out=str(tmp_path / "members" / "rs"), committee=[str(tiny_base_dir), str(other)], k=3,
                   max_new_tokens=6, gen_batch_size=12, round=2, min_score=None, verifier_min=0.0)

    def length_rm(prompts, completions, **columns):
        return [float(len(c.strip())) for c in completions]

    out, stats = rs.write_samples(cfg, scorer=length_rm)
    assert out == tmp_path / "members" / "rs-rs-data"
    rows = read_rows(out, "sft")
    assert read_manifest(out).parents == [read_manifest(tmp_path / "prompts").content_hash]
    assert stats["committee"] == ["tiny_base", "other"] and stats["candidates"] == 3 * 3 * 2
    candidates = rs.sample_committee(cfg.committee, prompt_rows(3), cfg)  # seeded: the same samples again
    scores = rs.candidate_scores(prompt_rows(3), candidates, length_rm)
    assert len(rows) == 3
    for row in rows:
        assert row["member"] in {"tiny_base", "other"} and row["round"] == 2 and row["source"] == "rejection_sampling"
        index = int(row["id"].split("-p")[-1])
        mine = [(s, c) for s, c in zip(scores, candidates) if c["prompt_index"] == index and c["completion"].strip()]
        best = max(s for s, _ in mine)
        assert row["score"] == pytest.approx(best)
        assert (row["member"], row["completion"][0]["content"]) in {(c["member"], c["completion"]) for s, c in mine
                                                                   if s == best}
        assert row["completion"][0]["role"] == "assistant" and isinstance(json.loads(row["verifier"]), dict)


def test_rs_recipe_trains_a_member(tiny_base_dir, tmp_path, monkeypatch):
    write_dataset(prompt_rows(2), "prompt", tmp_path / "prompts", producer="test")
    sft = SFTRecipeConfig(max_steps=2, batch_size=2, learning_rate=1e-3, max_length=64)
    cfg = RSConfig(from_checkpoint=str(tiny_base_dir), data=str(tmp_path / "prompts"),
                   out=str(tmp_path / "members" / "rs"), k=2, max_new_tokens=4, min_score=None, verifier_min=0.0,
                   sft=sft)
    monkeypatch.setattr(rs, "load_rm", lambda path: pytest.fail("no RM was configured"))
    out = rs.main(cfg)
    meta = read_meta(out)
    assert meta["recipe"] == "rs" and meta["rejection_sampling"]["committee"] == ["tiny_base"]
    assert meta["data"] == str(tmp_path / "members" / "rs-rs-data")
    assert "committee" in (out / "recipe_config.yaml").read_text()  # the rs config is saved, not only sft's


def test_bad_inputs_raise(tiny_base_dir, tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        rs.main(RSConfig(from_checkpoint=str(tmp_path / "missing"), data="d", out=str(tmp_path / "o")))
    write_dataset(prompt_rows(1), "prompt", tmp_path / "prompts", producer="test")
    cfg = RSConfig(from_checkpoint=str(tiny_base_dir), data=str(tmp_path / "prompts"), out=str(tmp_path / "o"),
                   k=1, max_new_tokens=2, min_score=100.0)
    with pytest.raises(ValueError, match="kept no samples"):
        rs.write_samples(cfg)
