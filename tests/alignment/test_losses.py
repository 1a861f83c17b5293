"""Pure RL losses: hand-worked leave-one-out advantages, MDLOO's first-step gradient equals RLOO's, the
mirror-descent penalty is zero at the old policy and positive elsewhere, PPO clipping, t_k schedules."""
import pytest
import torch

from alignment.losses import kl_to_old, loo_advantages, mdloo_loss, ppo_clip_loss, t_schedule


def test_loo_advantages_k2_by_hand():
    # K=2: each reward minus the other one
    adv = loo_advantages(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    torch.testing.assert_close(adv, torch.tensor([[-2.0, 2.0], [0.0, 0.0]]))


def test_loo_advantages_k4_by_hand():
    # rewards 1, 2, 3, 6: baselines (2+3+6)/3=11/3, (1+3+6)/3=10/3, (1+2+6)/3=3, (1+2+3)/3=2
    adv = loo_advantages(torch.tensor([[1.0, 2.0, 3.0, 6.0]]))
    torch.testing.assert_close(adv, torch.tensor([[1 - 11 / 3, 2 - 10 / 3, 0.0, 4.0]]))
    # the closed form K/(K-1) * (R - mean)
    r = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    torch.testing.assert_close(adv, 4 / 3 * (r - r.mean(dim=1, keepdim=True)))


def test_loo_advantages_rejects_one_sample():
    with pytest.raises(ValueError, match="K >= 2"):
        loo_advantages(torch.tensor([[1.0], [2.0]]))


def _batch(seed=0, b=6, t=5):
    g = torch.Generator().manual_seed(seed)
    logp_old = -torch.rand(b, t, generator=g) * 3
    mask = torch.ones(b, t)
    mask[0, 3:] = 0
    mask[2, 1:] = 0
    adv = torch.randn(b, generator=g)
    return logp_old, mask, adv


@pytest.mark.parametrize("estimator", ["token", "sequence"])
def test_first_step_gradient_equals_rloo(estimator):
    logp_old, mask, adv = _batch()
    new = logp_old.clone().requires_grad_(True)
    mdloo_loss(new, logp_old, adv, mask, t_k=0.5, kl_estimator=estimator).loss.backward()
    ours = new.grad.clone()
    new.grad = None
    rloo = -(adv * (new * mask).sum(-1)).mean()  # REINFORCE with LOO advantages (afm-spec §4.4)
    rloo.backward()
    torch.testing.assert_close(ours, new.grad)
    new.grad = None
    ppo_clip_loss(new, logp_old, adv, mask).loss.backward()  # PPO-clip at ratio 1: same gradient
    torch.testing.assert_close(ours, new.grad)


@pytest.mark.parametrize("estimator", ["token", "sequence"])
def test_penalty_zero_at_old_policy_positive_elsewhere(estimator):
    logp_old, mask, adv = _batch(1)
    at_old = kl_to_old(logp_old, logp_old, mask, estimator)
    torch.testing.assert_close(at_old, torch.zeros_like(at_old))
    moved = logp_old + 0.3 * torch.randn(logp_old.shape, generator=torch.Generator().manual_seed(2))
    kl = kl_to_old(moved, logp_old, mask, estimator)
    assert (kl >= 0).all() and kl.sum() > 0
    # the penalty enters with weight 1/t_k: halving t_k adds exactly one more mean KL
    loss_1 = mdloo_loss(moved, logp_old, adv, mask, t_k=1.0, kl_estimator=estimator).loss
    loss_half = mdloo_loss(moved, logp_old, adv, mask, t_k=0.5, kl_estimator=estimator).loss
    torch.testing.assert_close(loss_half - loss_1, kl.mean())


def test_token_kl_by_hand():
    # one token with log-ratio log 2: rho log rho - rho + 1 = 2 log 2 - 1
    kl = kl_to_old(torch.tensor([[0.0, 5.0]]), torch.tensor([[-0.6931471805599453, 1.0]]), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(kl, torch.tensor([2 * 0.6931471805599453 - 1]))


def test_mdloo_loss_at_old_policy_is_minus_mean_advantage():
    logp_old, mask, adv = _batch(3)
    out = mdloo_loss(logp_old, logp_old, adv, mask, t_k=1.0)
    torch.testing.assert_close(out.loss, -adv.mean())
    assert float(out.ratio) == pytest.approx(1.0)


def test_ppo_clip_by_hand():
    # one response, log-ratio 0.5 (ratio 1.65) with advantage +1: clipped at 1.2; with -1: unclipped 1.65
    new, old, mask = torch.tensor([[0.5]]), torch.tensor([[0.0]]), torch.ones(1, 1)
    pos = ppo_clip_loss(new, old, torch.tensor([1.0]), mask, epsilon=0.2)
    neg = ppo_clip_loss(new, old, torch.tensor([-1.0]), mask, epsilon=0.2)
    assert float(pos.loss) == pytest.approx(-1.2) and float(pos.clipped) == 1.0
    assert float(neg.loss) == pytest.approx(torch.e ** 0.5) and float(neg.clipped) == 0.0


def test_t_schedules():
    assert [t_schedule("constant", 0.5, k, 4) for k in range(4)] == [0.5] * 4
    assert [t_schedule("linear", 1.0, k, 4) for k in range(4)] == [1.0, 0.75, 0.5, 0.25]
    with pytest.raises(ValueError, match="unknown t_schedule"):
        t_schedule("cosine", 1.0, 0, 4)
    with pytest.raises(ValueError, match="must be positive"):
        mdloo_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1), torch.ones(1, 1), t_k=0.0)
