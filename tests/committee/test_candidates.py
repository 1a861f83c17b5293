"""Committee distillation: the verifier gates, the RM reranks what passed; earlier rounds' data accumulates."""
from alignment.rejection_sampling import score_samples
from committee.candidates import accumulated_rows


def rs_score(verifier, rm, rm_weight, verifier_min):
    return score_samples([verifier], [rm], rm_weight, verifier_min)[0]


def test_rs_score_drops_answers_the_verifier_failed_whatever_the_rm_says():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=1.0) is None
    assert rs_score(1.0, -0.2, rm_weight=1.0, verifier_min=1.0) == 0.8
    assert rs_score(None, 0.7, rm_weight=0.5, verifier_min=1.0) == 0.35  # no verifier: the RM alone


def test_rs_score_without_the_gate_adds_verifier_and_rm():
    assert rs_score(0.0, 9.0, rm_weight=1.0, verifier_min=0.0) == 9.0


def test_accumulated_rows_keep_every_round_once_in_order():
    r1 = [{"id": "rs-r1-a", "round": 1}, {"id": "rs-r1-b", "round": 1}]
    r2 = [*r1, {"id": "rs-r2-c", "round": 2}]  # round 2 accumulated round 1's rows already
    r3 = [{"id": "rs-r3-a", "round": 3}]
    assert [r["id"] for r in accumulated_rows(r1 + r2, r3)] == ["rs-r1-a", "rs-r1-b", "rs-r2-c", "rs-r3-a"]
    assert accumulated_rows([], r3) == r3


def _sft_rows(ids, round_n):
    return [{"id": i, "prompt": [{"role": "user", "content": f"q {i}"}],
             "completion": [{"role": "assistant", "content": f"a {i}"}], "round": round_n} for i in ids]


def _sft_round(tmp_path, monkeypatch, accumulate: bool, replay: float = 1.0) -> list[str]:
    """The ids of the rows the sft candidate of round 3 trains on (the recipe's main replaced by a recorder)."""
    from afm_align.store import read_rows, write_dataset
    from alignment import recipes
    from committee import candidates
    from committee.round_config import IterateConfig
    from committee.systems import candidate_spec

    paths = {}
    for name, ids, n in (("r0", ["a", "b"], 0), ("r1", ["c"], 1), ("r2", ["d", "a"], 2), ("r3", ["e"], 3)):
        paths[name] = tmp_path / name
        write_dataset(_sft_rows(ids, n), "sft", paths[name], producer="test", config={})
    seen = []
    monkeypatch.setattr(recipes, "main_of", lambda name: lambda rc: seen.append(rc.data))
    cfg = IterateConfig(sft_accumulate=accumulate, sft_replay=replay)
    inputs = candidates.CandidateInputs(
        round_n=3, round_dir=tmp_path / "round_3", start=tmp_path / "start", committee=[], prompts=tmp_path,
        sft_data=paths["r3"], responses=tmp_path, preferences=tmp_path, rm=tmp_path,
        earlier_sft=[paths["r1"], paths["r2"]], sft0_data=paths["r0"])
    assert candidates.train_candidate(cfg, candidate_spec(cfg, "sft"), inputs, "r3-sft", tmp_path / "out", 0) is None
    return [r["id"] for r in read_rows(seen[0], "sft")]


def test_sft_member_trains_on_its_round_only_by_default(tmp_path, monkeypatch):
    assert _sft_round(tmp_path, monkeypatch, accumulate=False) == ["e"]


def test_sft_accumulate_trains_on_every_round_so_far_round_0_included_each_row_once(tmp_path, monkeypatch):
    assert _sft_round(tmp_path, monkeypatch, accumulate=True) == ["a", "b", "c", "d", "e"]


def test_sft_replay_keeps_a_seeded_share_of_the_earlier_rounds_and_all_of_this_one(tmp_path, monkeypatch):
    ids = _sft_round(tmp_path, monkeypatch, accumulate=True, replay=0.5)
    assert len(ids) == 3 and ids[-1] == "e" and set(ids[:-1]) < {"a", "b", "c", "d"}  # 2 of the 4 distinct earlier
    assert ids == _sft_round(tmp_path, monkeypatch, accumulate=True, replay=0.5)  # the same rows again
