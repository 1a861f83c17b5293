"""Hand-worked numbers for the AFM reward-model losses (afm-spec §2.3)."""
import math

import pytest
import torch

from reward_model.losses import grading_loss, level_to_prob, ranking_loss, rm_loss


def test_ranking_loss_zero_gap_is_log2_for_any_p():
    for p in (0.95, 0.65, 1.0):
        loss = ranking_loss(torch.tensor([0.0]), torch.tensor([0.0]), p)
        assert loss.item() == pytest.approx(math.log(2), abs=1e-6)


def test_ranking_loss_hard_label_gap_one():
    loss = ranking_loss(torch.tensor([1.5]), torch.tensor([0.5]), 1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_ranking_loss_soft_label_value_and_batch_mean():
    # p = 0.75, gap 2: -0.75 log s(2) - 0.25 log s(-2) = 0.75 log(1+e^-2) + 0.25 log(1+e^2)
    expected = 0.75 * math.log(1 + math.exp(-2)) + 0.25 * math.log(1 + math.exp(2))
    loss = ranking_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([0.75, 0.95]))
    assert loss.item() == pytest.approx((expected + math.log(2)) / 2, abs=1e-6)


def test_ranking_loss_is_stable_for_huge_gaps():
    loss = ranking_loss(torch.tensor([1000.0]), torch.tensor([-1000.0]), 0.95)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.05 * 2000, rel=1e-5)


@pytest.mark.parametrize("p", [0.65, 0.75, 0.85, 0.95])
def test_per_pair_optimum_is_logit_p(p):
    optimum = math.log(p / (1 - p))
    delta = torch.tensor([optimum], requires_grad=True)
    ranking_loss(delta, torch.zeros(1), p).backward()
    assert abs(delta.grad.item()) < 1e-6
    # gradient descent from 0 reaches the same gap
    delta = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([delta], lr=2.0)
    for _ in range(300):
        opt.zero_grad()
        ranking_loss(delta, torch.zeros(1), p).backward()
        opt.step()
    assert delta.item() == pytest.approx(optimum, abs=1e-3)


def test_level_to_prob_mapping_and_custom_table():
    assert level_to_prob([0, 1, 2, 3]).tolist() == pytest.approx([0.65, 0.75, 0.85, 0.95])
    assert level_to_prob(torch.tensor([3, 0]), probs=(0.6, 0.7, 0.8, 0.9)).tolist() == pytest.approx([0.9, 0.6])


@pytest.mark.parametrize("bad", [4, -1])
def test_level_to_prob_unknown_level_names_it(bad):
    with pytest.raises(ValueError, match=f"level {bad}"):
        level_to_prob([0, bad])


def test_grading_loss_uniform_logits_and_masking():
    logits = torch.zeros(2, 4, 3)
    grades = torch.tensor([[0, 1, 2, -100], [2, -100, -100, -100]])
    # uniform logits: CE = log 3 per present grade; 3 dims have grades -> 3 log 3
    assert grading_loss(logits, grades).item() == pytest.approx(3 * math.log(3), abs=1e-6)
    assert grading_loss(logits, torch.full((2, 4), -100)).item() == 0.0


def test_grading_loss_missing_grades_do_not_change_value():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 3)
    grades = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 1, 2]])
    masked = grades.clone()
    masked[2] = -100
    garbage = logits.clone()
    garbage[2] = 50.0 * torch.randn(4, 3)  # the masked row's logits must not matter
    assert grading_loss(garbage, masked).item() == pytest.approx(grading_loss(logits[:2], grades[:2]).item(), abs=1e-5)


def test_grading_loss_hand_worked_dimension():
    logits = torch.zeros(1, 4, 3)
    logits[0, 0] = torch.tensor([0.0, 0.0, math.log(2)])  # softmax (1/4, 1/4, 1/2)
    grades = torch.tensor([[2, -100, -100, -100]])
    assert grading_loss(logits, grades).item() == pytest.approx(math.log(2), abs=1e-6)


def test_rm_loss_combines_terms_and_lambda_zero_skips_grading():
    rc, rr = torch.tensor([1.0]), torch.tensor([0.0])
    logits = torch.zeros(1, 4, 3)
    grades = torch.tensor([[0, 1, 2, 0]])
    out = rm_loss(rc, rr, 1.0, logits, logits, grades, grades, grading_weight=0.5)
    assert out["grading"].item() == pytest.approx(2 * 4 * math.log(3), abs=1e-5)
    assert out["loss"].item() == pytest.approx(math.log(1 + math.exp(-1)) + 0.5 * 8 * math.log(3), abs=1e-5)
    plain = rm_loss(rc, rr, 1.0, logits, logits, grades, grades, grading_weight=0.0)
    assert plain["loss"].item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert plain["grading"].item() == 0.0
