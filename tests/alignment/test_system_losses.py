"""The other systems' losses and update rules on hand-computed tensors (afm-spec §§10-12)."""
import math

import pytest
import torch

from afm_align.errors import UserError
from alignment.system_losses import (afm_distillation_targets, distillation_kl, online_dpo_pairs,
                                     online_merging_step, soft_target_loss)


def test_afm_target_mix_by_hand():
    teacher = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])  # top-1: token 1, token 0
    labels = torch.tensor([2, 0])
    targets = afm_distillation_targets(teacher, labels)
    assert torch.allclose(targets, torch.tensor([[0.0, 0.9, 0.1], [1.0, 0.0, 0.0]]))  # agree -> all on it
    assert torch.allclose(targets.sum(-1), torch.ones(2))


def test_soft_target_loss_by_hand_and_masking():
    student = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]]))
    targets = torch.tensor([[[0.0, 0.9, 0.1], [1.0, 0.0, 0.0]]])
    first = -(0.9 * math.log(0.25) + 0.1 * math.log(0.25))
    assert soft_target_loss(student, targets, torch.tensor([[1, 0]])).item() == pytest.approx(first, rel=1e-6)
    both = (first - math.log(0.2)) / 2
    assert soft_target_loss(student, targets, torch.tensor([[1, 1]])).item() == pytest.approx(both, rel=1e-6)


def test_distillation_kl_is_zero_on_the_teacher_and_matches_the_formula():
    teacher = torch.tensor([[[1.0, 2.0, 0.5]]])
    mask = torch.ones(1, 1)
    assert distillation_kl(teacher.clone(), teacher, mask).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[[0.0, 0.0, 0.0]]])
    p = teacher.softmax(-1)[0, 0]
    expected = float((p * (p.log() - math.log(1 / 3))).sum())
    assert distillation_kl(student, teacher, mask).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(UserError, match="temperature must be positive"):
        distillation_kl(student, teacher, mask, 0.0)


def test_online_dpo_picks_best_and_worst_and_skips_flat_groups():
    scores = torch.tensor([[0.2, 0.9, -0.1, 0.5], [0.3, 0.3, 0.3, 0.3], [1.0, 1.0, 0.0, 0.0]])
    assert online_dpo_pairs(scores) == [(1, 2), None, (0, 2)]


def test_one_online_merging_step_by_hand():
    theta, delta, tau = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5]), torch.tensor([2.0, 4.0])
    out = online_merging_step(theta, delta, tau, alpha=0.25, drop=0.0)
    assert torch.allclose(out, torch.tensor([1.0 + 0.75 * 0.5 + 0.25 * 2.0, 2.0 - 0.75 * 0.5 + 0.25 * 4.0]))
    gen = torch.Generator().manual_seed(0)
    sparse = online_merging_step(torch.zeros(10_000), torch.ones(10_000), torch.zeros(10_000), 0.0, 0.5, gen)
    assert set(sparse.unique().tolist()) == {0.0, 1.0} and 0.45 < sparse.mean().item() < 0.55  # no rescaling
    with pytest.raises(UserError, match="alpha in"):
        online_merging_step(theta, delta, tau, alpha=2.0, drop=0.0)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distillation_kl_equals_trl_gkd_forward_kl(temperature):
    """Gemma 2's KD loss is TRL's GKD generalized JSD at beta = 0 (forward KL, mean over unmasked tokens), times
    T^2 (Hinton's scale, which TRL leaves out)."""
    from trl.experimental.gkd.gkd_trainer import GKDTrainer

    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 11, generator=g), torch.randn(2, 5, 11, generator=g) * 2
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]])
    labels = torch.where(mask.bool(), torch.zeros_like(mask), torch.full_like(mask, -100))
    ours = distillation_kl(student, teacher, mask, temperature=temperature)
    trl = GKDTrainer.generalized_jsd_loss(student, teacher, labels=labels, beta=0.0, temperature=temperature)
    assert torch.allclose(ours, trl * temperature ** 2, atol=1e-6)
