"""The merge recipe: members of one architecture merged by average, weights, EMA, SLERP, LITI and WARP, written as
a member; the math itself is pinned by hand in test_merging.py, here the recipe around it."""
import json

import pytest
import torch

from afm_align.base_model import ModelShape, build_model, load_base
from afm_align.cli import main as cli_main
from alignment.merge import MergeConfig, main as merge
from alignment.merging import liti, slerp


def member(tiny_lm, tiny_tokenizer, path, shift: float = 0.0, seed: int = 0):
    """A copy of the tiny LM moved by `shift` plus seeded noise (a 'fine-tuned' member of one start)."""
    model = build_model(tiny_tokenizer, ModelShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                                   intermediate_size=64, max_positions=256), seed=0)
    model.load_state_dict(tiny_lm.state_dict())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(shift + 0.01 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def state(path):
    return {k: v for k, v in load_base(path)[0].state_dict().items()}


@pytest.fixture
def three(tiny_lm, tiny_tokenizer, tmp_path):
    init = member(tiny_lm, tiny_tokenizer, tmp_path / "init", 0.0, 0)
    a = member(tiny_lm, tiny_tokenizer, tmp_path / "a", 0.02, 1)
    b = member(tiny_lm, tiny_tokenizer, tmp_path / "b", -0.01, 2)
    return tmp_path, init, a, b


def run(tmp, method, members, **fields):
    cfg = MergeConfig(from_checkpoint=str(tmp / "init"), out=str(tmp / method), members=[str(tmp / m) for m in members],
                      method=method)
    for key, value in fields.items():
        setattr(cfg, key, value)
    meta = merge(cfg)
    return meta, state(tmp / method)


def test_the_average_and_the_weighted_average_are_what_they_say(three):
    tmp, _, a, b = three
    meta, out = run(tmp, "average", ["a", "b"])
    assert meta["recipe"] == "merge" and meta["members"] == [str(tmp / "a"), str(tmp / "b")]
    assert all(torch.allclose(out[k], (a[k] + b[k]) / 2, atol=1e-7) for k in a)
    _, out = run(tmp, "weighted", ["a", "b"], weights=[3.0, 1.0])
    assert all(torch.allclose(out[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-7) for k in a)


def test_ema_over_members_in_order(three):
    tmp, _, a, b = three
    _, out = run(tmp, "ema", ["a", "b", "a"], decay=0.5)
    # anchor a; then 0.5 a + 0.5 b; then 0.5 (0.5 a + 0.5 b) + 0.5 a = 0.75 a + 0.25 b
    assert all(torch.allclose(out[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("lam, endpoint", [(0.0, "a"), (1.0, "b")])
def test_slerp_at_its_ends_is_exactly_the_endpoint(three, lam, endpoint):
    tmp, *_ = three
    _, out = run(tmp, "slerp", ["a", "b"], lam=lam)
    end = state(tmp / endpoint)
    assert all(torch.equal(out[k], end[k]) for k in end)


def test_warp_is_slerp_then_liti_toward_the_initialisation(three):
    tmp, init, a, b = three
    _, out = run(tmp, "warp", ["a", "b"], lam=0.5, eta=0.3)
    expected = liti(init, slerp(init, a, b, 0.5), 0.3)
    assert all(torch.allclose(out[k], expected[k], atol=1e-6) for k in expected)
    meta = json.loads((tmp / "warp" / "meta.json").read_text())
    assert meta["lam"] == 0.5 and meta["eta"] == 0.3 and meta["from_checkpoint"] == str(tmp / "init")


def test_members_of_different_architectures_are_one_line_exit_2(three, tiny_tokenizer, capsys):
    tmp, *_ = three
    other = build_model(tiny_tokenizer, ModelShape(hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=2,
                                                   intermediate_size=64, max_positions=256), seed=0)
    other.save_pretrained(tmp / "other")
    tiny_tokenizer.save_pretrained(tmp / "other")
    code = cli_main(["train", "merge", "--from", str(tmp / "init"), "--out", str(tmp / "m"),
                     f"members=[{tmp / 'a'},{tmp / 'other'}]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "other" in err
    assert not (tmp / "m").exists()


def test_an_unknown_method_is_one_line(three):
    tmp, *_ = three
    from afm_align.errors import UserError

    with pytest.raises(UserError, match="unknown merge method 'ties'; methods are: average, weighted, ema"):
        run(tmp, "ties", ["a", "b"])
