"""Pure losses and update rules of the other post-training systems (afm-spec §§10-12), tensor in, tensor out.

- `afm_distillation_targets`: AFM's distillation target per token, `0.9 x teacher top-1 + 0.1 x true label`
  (a distribution over the vocabulary: 1.0 on the token where both agree);
- `soft_target_loss`: cross-entropy of the student against any per-token target distribution (the AFM mix
  above, or the teacher's full softmax for Gemma 2's KD `sum_x -P_T(x) log P_S(x)`), mean over unmasked tokens;
- `distillation_kl`: KL(P_T || P_S) at a temperature, the KD loss minus the teacher's entropy (same gradient);
- `online_dpo_pairs`: Qwen2's online DPO pair per prompt, the RM's best and worst of the policy's samples
  (no pair when every sample scores the same);
- `online_merging_step`: one Online Merging Optimizer update (OnDARE, Lu et al.):
  `theta_t = theta_{t-1} + (1 - alpha) F_R(delta_adam) + alpha F_R(tau)`, `tau` = SFT model minus base and
  `F_R` random sparsification at drop rate `drop` without DARE's rescaling.
The trainers and presets that call them are issue 19's; each formula is checked by hand in
`tests/alignment/test_system_losses.py`.

Run: `python -m pytest tests/alignment/test_system_losses.py`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from afm_align.errors import UserError

AFM_TEACHER_WEIGHT = 0.9  # afm-spec: distillation targets are 0.9 x teacher top-1 + 0.1 x the true label


def afm_distillation_targets(teacher_logits: torch.Tensor, labels: torch.Tensor,
                             teacher_weight: float = AFM_TEACHER_WEIGHT) -> torch.Tensor:
    """[..., V] target distribution: teacher_weight on the teacher's top-1 token, the rest on the label."""
    if not 0.0 <= teacher_weight <= 1.0:
        raise UserError(f"teacher weight must be in [0, 1] (got {teacher_weight})")
    vocab = teacher_logits.shape[-1]
    top1 = F.one_hot(teacher_logits.argmax(-1), vocab).to(teacher_logits.dtype)
    label = F.one_hot(labels.clamp_min(0), vocab).to(teacher_logits.dtype)
    return teacher_weight * top1 + (1.0 - teacher_weight) * label


def soft_target_loss(student_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over unmasked tokens of sum_x -target(x) log softmax(student)(x)."""
    per_token = -(targets * student_logits.log_softmax(-1)).sum(-1)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                    temperature: float = 1.0) -> torch.Tensor:
    """Mean over unmasked tokens of KL(P_T || P_S), both softened by `temperature` (x T^2, Hinton's scale)."""
    if temperature <= 0:
        raise UserError(f"distillation temperature must be positive (got {temperature})")
    log_s = (student_logits / temperature).log_softmax(-1)
    log_t = (teacher_logits / temperature).log_softmax(-1)
    per_token = (log_t.exp() * (log_t - log_s)).sum(-1) * temperature ** 2
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp_min(1.0)


def online_dpo_pairs(scores: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per prompt (row of [prompts, K] RM scores): (index of the best sample, index of the worst), or None
    when all K samples score the same (no preference to learn). Ties go to the lowest index."""
    pairs = []
    for row in scores:
        best, worst = int(row.argmax()), int(row.argmin())
        pairs.append(None if row[best] == row[worst] else (best, worst))
    return pairs


def online_merging_step(theta: torch.Tensor, adam_delta: torch.Tensor, tau: torch.Tensor, alpha: float,
                        drop: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One OnDARE update of a parameter tensor (see the module doc); `drop` is F_R's drop rate in [0, 1)."""
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= drop < 1.0:
        raise UserError(f"online merging needs alpha in [0, 1] and drop in [0, 1) (got {alpha}, {drop})")

    def sparsify(t: torch.Tensor) -> torch.Tensor:
        if drop == 0.0:
            return t
        keep = torch.rand(t.shape, generator=generator, device=t.device) >= drop
        return t * keep

    return theta + (1.0 - alpha) * sparsify(adam_delta) + alpha * sparsify(tau)
