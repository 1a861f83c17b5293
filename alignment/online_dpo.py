"""Recipe: Qwen2's online DPO. The current policy samples, the reward model picks the best and the worst, DPO trains on them.

What it does, top to bottom (`main(cfg)`, afm-spec §10, Qwen2's second RLHF stage):
1. load the starting checkpoint `cfg.from_checkpoint`; a frozen copy of it is the DPO reference (with LoRA the
   reference is the same weights with the adapters disabled, so no copy is made); load the RM `cfg.reward_model`
   (required: it is what ranks the samples) and, with `verifier_weight` > 0, the synthetic families' verifiers,
   combined as rejection sampling and MDLOO combine them (`alignment.rewards`);
2. every `resample_every` optimiser steps (1 = every step), take the next `prompts_per_step` prompts of the
   train split of `cfg.data` (a shuffled cycle), let the *current* policy sample `k` completions each through the
   one generation path (`afm_align.generation.generate`), score them, and keep per prompt the (best, worst) pair
   of `alignment.system_losses.online_dpo_pairs`; a prompt whose k samples all score the same gives no pair and
   is skipped. The reference's log-probs of the group's pairs are computed once, when the group is drawn;
3. each optimiser step is one AdamW step (constant learning rate, gradient clipped at `max_grad_norm`) on DPO's
   sigmoid loss (`dpo_loss`) over all the group's pairs, in micro-batches of `batch_size` pairs; `nll_weight`
   adds Llama 3's NLL term on the chosen response (mean per token; off by default, as in `alignment.preference`);
   `online_merging: true` wraps that AdamW in Qwen2's Online Merging Optimizer (`alignment.online_merging`, OnDARE:
   every update merged with the start's SFT delta), the optimizer afm-spec §10's Qwen2 preset gives this stage;
4. write the member directory `cfg.out` atomically (`alignment.members`), recipe `online_dpo`, with the reward
   model, the pairs seen and the train summary in meta.json. `metrics.jsonl` gets one record per logged step:
   `loss`, `reward_chosen` / `reward_rejected` / `reward_margin` (the RM + verifier score of the picked samples,
   means over the pairs), `margin` (DPO's implicit reward margin `beta * (log-ratio chosen - log-ratio rejected)`,
   TRL's `rewards/margins`), `accuracy`, `pairs` (pairs used), `skipped_prompts`, `sampled` (fresh samples this
   step), `grad_norm`.

Why not TRL's `trl.experimental.online_dpo.OnlineDPOTrainer` (trl 1.16): it does run on CPU with the tiny model and
our RM scorer as its reward function (checked: two steps), but it samples exactly two completions per prompt (`num_generations = 2` is fixed in `__init__`), generates inside `training_step` on every step (no
`resample_every`), breaks a tie by taking the first sample as chosen instead of skipping the prompt, and samples
through its own `generate` call rather than our generation path. Reaching Qwen2's best-of-k / worst-of-k pair
would mean rewriting its ~170-line `training_step` plus its sampling, more than the three overridden methods
DESIGN §5 allows. So this is a compact loop; what it reuses: the generation path, the RM scorer and the reward
combination (`alignment.rewards`), the pair choice (`system_losses.online_dpo_pairs`), train-split prompt loading
(`rejection_sampling.load_prompts`), LoRA (`alignment.lora`) and the member contract (`alignment.members`).
The DPO loss itself is the pure function `dpo_loss` below (Rafailov et al. 2023, eq. 7), tested on hand numbers.

What it simplifies: one process (no `accelerate launch` data parallelism), float32 master weights with optional bf16
autocast; a sampled completion is re-tokenized from its text plus EOS (as TRL's DPOTrainer tokenizes text pairs), so
a completion cut at `max_new_tokens` is trained as if it had ended there; a prompt + completion longer than
`max_length` tokens loses its end; dropout stays off during training (DPO's practice, as TRL does); `report_to`
takes `none` or `tensorboard` (metrics.jsonl is always written); `logging_steps` logs that step's values, not
an average. The RM is fixed for the run.

Run: `afm-align train online_dpo --from runs/x/base --data runs/x/data/prompt-... --rm runs/x/round_1/rm
--out runs/x/round_1/members/online_dpo`; from code
`main(alignment.recipes.load("online_dpo", preset="tiny", overrides=[...]))`.
Tests: `python -m pytest tests/alignment/test_online_dpo.py`.
"""
from __future__ import annotations

import copy
import random
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from afm_align import generation
from afm_align.config import config_dict
from afm_align.errors import NothingToTrain, UserError
from afm_align.member_io import stage_device
from afm_align.tracking import MetricsLog, progress
from alignment.lora import lora_config, merged
from alignment.members import (
    METRICS_FILE, WORK_DIR, check_common, data_meta, load_start, member_staging, train_summary, write_member,
)
from alignment.online_merging import (
    OMO_ALPHA, OMO_DROP, check_recipe, make_optimizer, pretrained_base, recipe_meta,
)
from alignment.rejection_sampling import load_prompts
from alignment.rewards import combine, load_rm, reward_terms
from alignment.system_losses import online_dpo_pairs

STAGE = "online-dpo-training"
NO_RM = "online_dpo needs a reward model (reward_model=DIR or --rm DIR): it picks the best and the worst sample"


@dataclass
class OnlineDPOConfig:
    """Every knob of Qwen2's online DPO."""

    from_checkpoint: str = ""  # the starting policy (a base/ or member directory); also the frozen DPO reference
    data: str = ""  # a `prompt` dataset folder; only its train-split rows are sampled
    out: str = ""  # the member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to
    reward_model: str = ""  # a saved multi-head RM directory (required: it picks the best and the worst sample)
    seed: int = 0  # prompt order, sampling (group g samples with seed + g) and adapter initialisation
    learning_rate: float = 5e-6  # AdamW learning rate (constant); Qwen2 gives none
    beta: float = 0.1  # DPO beta: strength of the pull toward the reference (Qwen2 gives none; Llama 3: 0.1)
    k: int = 4  # samples per prompt, at least 2: the pair is the best and the worst of them
    prompts_per_step: int = 8  # prompts sampled per group (each gives at most one pair)
    steps: int = 8  # optimiser steps
    resample_every: int = 1  # fresh samples and pairs every this many steps (1 = every step, fully on-policy)
    max_new_tokens: int = 64  # sample length limit
    temperature: float = 1.0  # sampling temperature (> 0: greedy samples would all be the same)
    top_p: float = 1.0  # nucleus sampling
    gen_batch_size: int = 32  # sequences (prompts x k) per generation batch
    verifier_weight: float = 0.0  # weight of the synthetic families' verifier rewards added to the RM score (0 = RM only)
    nll_weight: float = 0.0  # weight of an NLL term on the chosen response (Llama 3: 0.2; 0 = off)
    max_grad_norm: float = 1.0  # global gradient-norm clip
    batch_size: int = 8  # pairs per micro-batch (gradients are accumulated over the group's pairs)
    max_length: int = 512  # token cap of prompt + completion (the end of a longer one is dropped)
    lora_rank: int = 0  # 0 = full fine-tuning; 8, 16 or 32 = LoRA adapters, merged before saving
    logging_steps: int = 1  # write a metrics record every this many steps (and at the last)
    bf16: bool = False  # bf16 autocast (GPU presets; off on CPU)
    report_to: str = "none"  # "none" or "tensorboard" (event files under the member's tracking/); metrics.jsonl always
    online_merging: bool = False  # Qwen2's Online Merging Optimizer (OnDARE) around AdamW; full fine-tuning only
    omo_alpha: float = OMO_ALPHA  # weight of the SFT delta in each merged step (Qwen2 gives none)
    omo_drop: float = OMO_DROP  # drop rate of the random sparsification, no rescaling (Qwen2 gives none)
    omo_base: str = ""  # pre-trained base of the start ("" = follow meta.json's from_checkpoint links)


def check_config(cfg: OnlineDPOConfig) -> None:
    """One-sentence errors for a bad config, before anything is loaded."""
    check_common(cfg)
    if not cfg.reward_model:
        raise UserError(NO_RM)
    if cfg.k < 2:
        raise UserError(f"k (samples per prompt) must be at least 2: the pair is the best and the worst (got {cfg.k})")
    if cfg.beta <= 0 or cfg.temperature <= 0:
        raise UserError(f"beta and temperature must be positive (got {cfg.beta}, {cfg.temperature}): beta scales "
                        "the DPO margin and greedy sampling gives k identical samples")
    if cfg.report_to not in ("none", "tensorboard"):
        raise UserError(f"online_dpo reports to none or tensorboard (got report_to '{cfg.report_to}'); "
                        "metrics.jsonl is always written")
    check_recipe(cfg)


# ---- pure pieces: the loss and the pair choice ---------------------------------------------------------

class DPOLoss(NamedTuple):
    """DPO's per-pair loss and the implicit rewards TRL logs (those two detached)."""

    losses: torch.Tensor  # [B]
    chosen_rewards: torch.Tensor  # beta * (log pi(y_c|x) - log pi_ref(y_c|x))
    rejected_rewards: torch.Tensor  # beta * (log pi(y_r|x) - log pi_ref(y_r|x))


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> DPOLoss:
    """DPO's sigmoid loss (Rafailov et al. 2023, eq. 7) from summed sequence log-probs [B]:
    `-log sigmoid(beta * ((log pi(y_c) - log pi_ref(y_c)) - (log pi(y_r) - log pi_ref(y_r))))`."""
    chosen, rejected = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    losses = -F.logsigmoid(beta * (chosen - rejected))
    return DPOLoss(losses, beta * chosen.detach(), beta * rejected.detach())


def pick_pairs(rows: list[dict], texts: list[list[str]], scores: list[list[float | None]]) -> tuple[list[dict], int]:
    """Per prompt the (best, worst) sample by score (`online_dpo_pairs`); returns (pairs, prompts skipped for ties).

    A score of None (no reward term applies; never with an RM) counts as the lowest.
    """
    table = torch.tensor([[float("-inf") if s is None else float(s) for s in row] for row in scores],
                         dtype=torch.float64)
    pairs = []
    for row, samples, values, choice in zip(rows, texts, table, online_dpo_pairs(table)):
        if choice is not None:
            best, worst = choice
            pairs.append({"prompt": row["prompt"], "chosen": samples[best], "rejected": samples[worst],
                          "score_chosen": float(values[best]), "score_rejected": float(values[worst])})
    return pairs, len(rows) - len(pairs)


# ---- the model side ---------------------------------------------------------------------------------------

def sequence_logps(model, prompts: list[list[int]], completions: list[list[int]], pad_id: int,
                   max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob [B] of each completion given its prompt, and its token count [B] (right-padded batch)."""
    seqs = [(p + c)[:max_length] for p, c in zip(prompts, completions)]
    ids = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    attention, target = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
    for i, (seq, prompt) in enumerate(zip(seqs, prompts)):
        ids[i, :len(seq)], attention[i, :len(seq)] = torch.tensor(seq), 1
        target[i, len(prompt):len(seq)] = True
    device = next(model.parameters()).device
    ids, attention, target = ids.to(device), attention.to(device), target.to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    logp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:, None]).squeeze(2)
    mask = target[:, 1:]
    return (logp * mask).sum(1), mask.sum(1)


def _autocast(model, bf16: bool):
    device = next(model.parameters()).device
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def _reference_logps(policy, ref, prompts, completions, cfg: OnlineDPOConfig, pad_id: int) -> torch.Tensor:
    """The frozen reference's summed log-probs (the policy with its adapters off under LoRA), in micro-batches."""
    model = policy if ref is None else ref
    adapters_off = policy.disable_adapter() if ref is None else nullcontext()
    out = []
    with torch.no_grad(), adapters_off, _autocast(model, cfg.bf16):
        for s in range(0, len(prompts), cfg.batch_size):
            out.append(sequence_logps(model, prompts[s:s + cfg.batch_size], completions[s:s + cfg.batch_size],
                                      pad_id, cfg.max_length)[0])
    return torch.cat(out)


def draw_group(policy, ref, tokenizer, reward, rows: list[dict], cfg: OnlineDPOConfig, seed: int) -> dict:
    """Sample k completions per prompt from the current policy, score them, pick the pairs, tokenize them and
    compute the reference's log-probs once (they do not change while the group is trained on)."""
    texts = generation.generate(policy, tokenizer, [r["prompt"] for r in rows], k=cfg.k,
                                max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                                batch_size=cfg.gen_batch_size, seed=seed)
    flat = [(row, text) for row, samples in zip(rows, texts) for text in samples]
    values = reward([r["prompt"] for r, _ in flat], [[{"role": "assistant", "content": t}] for _, t in flat],
                    domain=[r["domain"] for r, _ in flat], verifier=[r["verifier"] for r, _ in flat])
    pairs, skipped = pick_pairs(rows, texts, [values[i * cfg.k:(i + 1) * cfg.k] for i in range(len(rows))])
    group = {"pairs": pairs, "skipped": skipped, "prompts": generation.render(tokenizer, [p["prompt"] for p in pairs])}
    for side in ("chosen", "rejected"):  # the sampled text + EOS, after the rendered prompt (as generation saw it)
        group[side] = [tokenizer(p[side], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                       for p in pairs]
        group[f"ref_{side}"] = (_reference_logps(policy, ref, group["prompts"], group[side], cfg,
                                                 tokenizer.pad_token_id) if pairs else None)
    return group


def dpo_step(policy, optimizer, group: dict, cfg: OnlineDPOConfig, pad_id: int) -> dict:
    """One optimiser step on all the group's pairs (micro-batches of `batch_size` pairs); returns its metrics."""
    n, sums = len(group["pairs"]), torch.zeros(4)
    optimizer.zero_grad(set_to_none=True)
    for s in range(0, n, cfg.batch_size):
        prompts = group["prompts"][s:s + cfg.batch_size]
        b = len(prompts)
        with _autocast(policy, cfg.bf16):
            logps, counts = sequence_logps(policy, prompts * 2, group["chosen"][s:s + b] + group["rejected"][s:s + b],
                                           pad_id, cfg.max_length)
        out = dpo_loss(logps[:b], logps[b:], group["ref_chosen"][s:s + b], group["ref_rejected"][s:s + b], cfg.beta)
        loss = out.losses
        if cfg.nll_weight:  # Llama 3's NLL on the chosen response, per token
            loss = loss + cfg.nll_weight * (-logps[:b] / counts[:b].clamp_min(1))
        (loss.sum() / n).backward()
        margin = out.chosen_rewards - out.rejected_rewards
        sums += torch.stack([loss.detach().sum(), out.chosen_rewards.sum(), out.rejected_rewards.sum(),
                             (margin > 0).float().sum()]).cpu()
    params = [p for p in policy.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    optimizer.step()
    loss, chosen, rejected, right = (sums / n).tolist()
    return {"loss": loss, "rewards_chosen": chosen, "rewards_rejected": rejected, "margin": chosen - rejected,
            "accuracy": right, "grad_norm": float(grad_norm)}


# ---- the recipe ---------------------------------------------------------------------------------------------

def setup_policy(cfg: OnlineDPOConfig):
    """(policy, reference or None under LoRA, tokenizer) on the training device."""
    policy, tokenizer = load_start(cfg.from_checkpoint, stage=STAGE)
    policy = policy.to(stage_device(STAGE))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.lora_rank:
        from peft import get_peft_model

        torch.manual_seed(cfg.seed)  # adapter initialisation
        return get_peft_model(policy, lora_config(cfg.lora_rank)), None, tokenizer
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    return policy, ref, tokenizer


def _tensorboard(cfg: OnlineDPOConfig, stage: Path):
    if cfg.report_to != "tensorboard":
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(stage / WORK_DIR / "runs"))  # member_staging moves work/runs to tracking/


def train(policy, ref, tokenizer, reward, rows: list[dict], cfg: OnlineDPOConfig, stage: Path):
    """The loop: a fresh group every `resample_every` steps, one DPO step per step; returns (history, totals)."""
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.learning_rate,
                                  weight_decay=0.0)
    if cfg.online_merging:  # made before any step: the policy is still the SFT start
        optimizer = make_optimizer(policy, optimizer, alpha=cfg.omo_alpha, drop=cfg.omo_drop, seed=cfg.seed,
                                   base=pretrained_base(cfg.from_checkpoint, cfg.omo_base))
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    per_group = min(cfg.prompts_per_step, len(rows))
    log, writer = MetricsLog(stage / METRICS_FILE), _tensorboard(cfg, stage)
    history, totals, group = [], {"pairs_seen": 0, "skipped_prompts": 0, "sampling_rounds": 0}, {}
    policy.eval()  # dropout off for sampling and training alike (gradients flow in eval mode)
    for step in progress(range(1, cfg.steps + 1), desc="online dpo", unit="step"):
        fresh = (step - 1) % cfg.resample_every == 0
        if fresh:
            g = (step - 1) // cfg.resample_every
            batch = [rows[order[(g * per_group + i) % len(rows)]] for i in range(per_group)]
            group = draw_group(policy, ref, tokenizer, reward, batch, cfg, seed=cfg.seed + g)
            totals = {"pairs_seen": totals["pairs_seen"] + len(group["pairs"]),
                      "skipped_prompts": totals["skipped_prompts"] + group["skipped"],
                      "sampling_rounds": totals["sampling_rounds"] + 1}
        pairs = group["pairs"]
        record = {"step": step, "sampled": fresh, "pairs": len(pairs), "skipped_prompts": group["skipped"]}
        if pairs:
            chosen = sum(p["score_chosen"] for p in pairs) / len(pairs)
            rejected = sum(p["score_rejected"] for p in pairs) / len(pairs)
            record.update(reward_chosen=chosen, reward_rejected=rejected, reward_margin=chosen - rejected,
                          **dpo_step(policy, optimizer, group, cfg, tokenizer.pad_token_id))
        history.append(record)
        if step % cfg.logging_steps == 0 or step == cfg.steps:
            log.log(source="trainer", **record)
            if writer:
                for key, value in record.items():
                    writer.add_scalar(f"train/{key}", float(value), step)
    if writer:
        writer.close()
    return history, totals


def main(cfg: OnlineDPOConfig) -> dict:
    """Run online DPO from `cfg.from_checkpoint` on the prompts of `cfg.data`, write the member `cfg.out`;
    returns the run's summary (pairs seen, last loss and rewards)."""
    check_config(cfg)
    rows = load_prompts(cfg.data, "train")  # the data is checked before any model is loaded
    terms = reward_terms(load_rm(cfg.reward_model), 1.0, verifier_weight=cfg.verifier_weight)
    policy, ref, tokenizer = setup_policy(cfg)
    with member_staging(cfg.out) as stage:
        history, totals = train(policy, ref, tokenizer, combine(terms), rows, cfg, stage)
        if not totals["pairs_seen"]:
            raise NothingToTrain(f"online_dpo found no pair in {totals['sampling_rounds']} sampling rounds: every "
                                 "sample of every prompt scored the same")
        last = next(r for r in reversed(history) if "loss" in r)
        summary = {"steps": cfg.steps, **totals,
                   **{k: last[k] for k in ("loss", "reward_chosen", "reward_rejected", "reward_margin", "margin")}}
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": "online_dpo", "round": cfg.round,
                "from_checkpoint": str(cfg.from_checkpoint), **data_meta(cfg.data), "lora_rank": cfg.lora_rank,
                "beta": cfg.beta, "reward_model": str(cfg.reward_model),
                "reward_terms": {t.name: t.weight for t in terms}, **totals, "online_merging": recipe_meta(cfg),
                "train": train_summary(history), "config": config_dict(cfg), "final_metrics": summary}
        write_member(stage, merged(policy), tokenizer, meta=meta, cfg=cfg)  # metrics.jsonl: logged while training
    return summary
