"""Model-merging math on hand-computed tensors: averaging, EMA, SLERP of task vectors, LITI, and the checks."""
import math

import pytest
import torch

from afm_align.errors import UserError
from alignment.merging import check_same_architecture, ema_update, liti, slerp, slerp_tensor, weighted_average


def _state(*values, steps=7):
    return {"w": torch.tensor(values, dtype=torch.float32), "steps": torch.tensor(steps)}


def test_weighted_average_by_hand():
    a, b = _state(1.0, 2.0), _state(3.0, 6.0)
    assert torch.equal(weighted_average([a, b])["w"], torch.tensor([2.0, 4.0]))
    assert torch.allclose(weighted_average([a, b], [3, 1])["w"], torch.tensor([1.5, 3.0]))  # 0.75 a + 0.25 b
    assert weighted_average([a, b])["steps"].item() == 7  # integer buffers come from the first model
    with pytest.raises(UserError, match="non-negative numbers"):
        weighted_average([a, b], [1, -1])


def test_ema_by_hand():
    anchor, policy = _state(0.0, 10.0), _state(10.0, 0.0)
    assert torch.allclose(ema_update(anchor, policy, 0.9)["w"], torch.tensor([1.0, 9.0]))
    assert torch.equal(ema_update(anchor, policy, 1.0)["w"], anchor["w"])
    assert torch.equal(ema_update(anchor, policy, 0.0)["w"], policy["w"])


def test_slerp_of_two_orthogonal_task_vectors_by_hand():
    # delta_1 = (1, 0), delta_2 = (0, 1): angle pi/2, so at lambda 0.5 both weights are sin(pi/4)/sin(pi/2)
    out = slerp_tensor(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
    assert torch.allclose(out, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]), atol=1e-6)
    assert torch.isclose(out.norm(), torch.tensor(1.0))  # on the sphere, unlike linear interpolation (0.707)
    third = slerp_tensor(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 1 / 3)
    assert torch.allclose(third, torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)]), atol=1e-6)


def test_slerp_of_parallel_vectors_is_linear():
    out = slerp_tensor(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0]), 0.25)
    assert torch.allclose(out, torch.tensor([1.5, 1.5]))


def test_slerp_merges_task_vectors_around_the_initialisation_and_keeps_the_endpoints_exactly():
    init, one, two = _state(1.0, 1.0), _state(1.1, 1.0 + 1e-7), _state(1.0, 2.3)
    merged = slerp(init, one, two, 0.5)["w"]
    expected = init["w"] + slerp_tensor(one["w"] - init["w"], two["w"] - init["w"], 0.5)
    assert torch.allclose(merged, expected)
    assert torch.equal(slerp(init, one, two, 0.0)["w"], one["w"])  # bit for bit
    assert torch.equal(slerp(init, one, two, 1.0)["w"], two["w"])


def test_liti_by_hand():
    init, merged = _state(0.0, 10.0), _state(10.0, 20.0)
    assert torch.allclose(liti(init, merged, 0.3)["w"], torch.tensor([3.0, 13.0]))
    assert torch.equal(liti(init, merged, 0.0)["w"], init["w"])
    with pytest.raises(UserError, match=r"eta must be in \[0, 1\]"):
        liti(init, merged, 1.5)


def test_different_architectures_are_one_line():
    with pytest.raises(UserError, match="different architectures .'w' is \\(2,\\) in one, \\(3,\\)"):
        check_same_architecture([_state(1.0, 2.0), _state(1.0, 2.0, 3.0)])
    with pytest.raises(UserError, match="parameter 'extra' is in only one"):
        weighted_average([_state(1.0), {**_state(1.0), "extra": torch.zeros(1)}])


def test_merged_state_loads_into_the_model(tiny_lm):
    init = {k: v.clone() for k, v in tiny_lm.state_dict().items()}
    torch.manual_seed(0)
    one = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in init.items()}
    two = {k: v - 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in init.items()}
    merged = liti(init, slerp(init, one, two, 0.5), 0.3)
    tiny_lm.load_state_dict(merged)
    changed = [k for k in init if init[k].is_floating_point() and not torch.equal(init[k], merged[k])]
    assert changed and all(merged[k].dtype == init[k].dtype for k in init)
