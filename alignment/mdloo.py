"""Recipe: MDLOO online RL (AFM's RLHF algorithm), and RLOO with PPO clipping as its baseline config.

Reads top to bottom: the config -> the pieces main needs (KL budget stop, prompt dataset, TRL arguments, final
metrics) -> `main(cfg)`: load the policy, the prompts and the reward, train (`alignment.mdloo_trainer`'s
`MDLOOTrainer`), save a member directory, clean up.

The algorithm (afm-spec §4), per outer iteration k: take n prompts, sample K responses each from the
current policy pi_k; reward `R = RM score + sum_f w_f * verifier_f - beta * sum_t log(pi_k / pi_ref)` (the
KL to the reference sits in the reward, AFM style, not in the loss); leave-one-out advantage over the K
samples of a prompt, no std normalisation; then `num_iterations` (m >= 2) full-batch policy steps on
`-mean(rho * A) + (1/t_k) * KL(pi_theta || pi_k)` (`alignment.losses.mdloo_loss`), the mirror-descent
penalty replacing PPO's ratio clipping. TRL's RLOO already computes exactly this reward and advantage
(weighted nansum of the reward functions, `- beta * (old - ref)` summed per sequence, LOO baseline,
`normalize_advantages=False`), so `MDLOOTrainer` (`alignment.mdloo_trainer`, TRL's `RLOOTrainer` one level down)
changes only the policy step, `LOSSES[loss]` (`"mdloo"` or `"ppo_clip"`, TRL's own loss, for the `rloo`
baseline), and where pi_k's log-probs come from: its per-token log-probs for the penalty are the policy's own on
its first pass over the batch (no extra forward pass), and for the reward's KL those recorded while sampling, so
TRL's separate pi_old forward pass after sampling does not run (exact at temperature 1; see that module).
`t_k` is constant or annealed linearly as in MDPO (`t_schedule`). LoRA: `lora_rank` 8/16/32 (0 = full).
`online_merging: true` replaces the trainer's AdamW with Qwen2's Online Merging Optimizer (`alignment.online_merging`,
OnDARE: every update merged with the start's SFT delta; full fine-tuning only).
`ema_anchor: mu` (0 < mu <= 1) is the exponential-moving-average anchor of WARP (Ramé et al. 2024; Gemma 2):
after every optimiser step the KL reference becomes `(1 - mu) * reference + mu * policy`, so the KL term pulls
toward a slowly moving anchor instead of the start. It is TRL's own `sync_ref_model` (SyncRefModelCallback) with
`ref_model_mixup_alpha = mu` every step; it needs the separate reference model TRL loads for full fine-tuning
with beta > 0 (with LoRA the reference is the policy with its adapters off, nothing to average).

Outputs: a member directory `cfg.out` in the `alignment.members` layout, written atomically: the weights
(`save_pretrained`; LoRA adapters merged), the tokenizer, `meta.json` (member, recipe `mdloo` / `rloo`,
round, source checkpoint, data hash, reward terms, the config, final metrics), `recipe_config.yaml` (the
resolved config), `metrics.jsonl` (per step: reward, `kl` to the reference, `kl_old` to pi_k, loss,
entropy, ratio, ...; reward and `kl` on the sampling steps) and, with an RM, `rollouts.jsonl` (every sampled
answer with its step, prompt id, domain and RM score: `RolloutLog`, what the over-optimisation curves read).
CPU threads: `$AFM_ALIGN_THREADS` (default 1).

What it simplifies: single-turn prompts only; no evaluation during training; the reference model is the
starting checkpoint, fixed for the run unless `ema_anchor` moves it (WARP's later stages, merging several
EMA-anchored policies and interpolating toward the start, are not part of this recipe).

Run: `afm-align train mdloo --preset tiny from_checkpoint=... data=... out=...` (or `train rloo`); from code
`main(alignment.recipes.load("mdloo", preset="tiny", overrides=[...]))`.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback
from trl import RLOOConfig

from afm_align.config import config_dict
from afm_align.errors import UserError
from alignment.losses import KL_ESTIMATORS, T_SCHEDULES
from alignment.mdloo_trainer import LOSSES, MDLOOTrainer
from alignment.members import check_common
from alignment.online_merging import OMO_ALPHA, OMO_DROP, check_recipe, recipe_meta, recipe_optimizers
from alignment.rewards import RewardTerm
from synth.families import FAMILIES


@dataclass
class MDLOOConfig:
    """One online-RL run: MDLOO (`loss: mdloo`) or the RLOO + PPO-clip baseline (`loss: ppo_clip`)."""

    from_checkpoint: str = ""  # the starting policy (a base/ or member directory); also the KL reference
    data: str = ""  # a prompt dataset folder: rows with `prompt` messages, `domain`, `verifier` (JSON)
    out: str = ""  # the member directory to write
    member: str = ""  # member name in provenance ("" = the name of `out`)
    round: int = 0  # iTeC round this member belongs to
    reward_model: str = ""  # a saved multi-head RM directory; "" = verifier rewards only
    loss: str = "mdloo"  # "mdloo" (mirror-descent penalty) or "ppo_clip" (RLOO baseline)
    split: str = "train"  # use the prompt rows of this split ("" = every row)
    k: int = 4  # samples per prompt (K of the leave-one-out advantage), at least 2
    prompts_per_step: int = 4  # prompts per outer iteration (n); a batch holds n * K responses
    steps: int = 4  # outer iterations: sample + score + `num_iterations` policy steps
    num_iterations: int = 2  # inner policy steps per sampled batch (m); MDLOO needs at least 2
    micro_batches: int = 1  # split each policy step's n * K responses into this many accumulation chunks
    beta: float = 0.05  # coefficient of the sequence KL to the reference, subtracted from the reward
    ema_anchor: float = 0.0  # WARP/Gemma 2: after each step reference = (1-mu)*reference + mu*policy (0 = fixed)
    kl_budget: float = 0.0  # stop once the logged KL to the reference (TRL's `kl`: nats per token) exceeds this; 0 = none
    t0: float = 1.0  # mirror-descent step size at the first outer iteration (the KL weight is 1 / t_k)
    t_schedule: str = "constant"  # "constant" or "linear" (MDPO: t_k = t0 * (1 - k / N))
    kl_estimator: str = "token"  # "token" or "sequence" (see alignment.losses)
    epsilon: float = 0.2  # PPO clip range (ppo_clip only)
    learning_rate: float = 1e-5  # AdamW learning rate (constant)
    max_grad_norm: float = 1.0  # global gradient-norm clip
    max_new_tokens: int = 64  # response length limit
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling
    rm_weight: float = 1.0  # weight of the RM score
    verifier_weight: float = 1.0  # weight of each synthetic family's verifier reward (0 = RM only)
    families: list[str] = field(default_factory=lambda: list(FAMILIES))  # verifier families to use
    lora_rank: int = 0  # 0 = full fine-tuning; 8 / 16 / 32 = LoRA on all attention and MLP projections
    seed: int = 0  # sampling, shuffling and adapter initialisation
    bf16: bool = False  # TRL defaults to bf16; off for CPU
    gradient_checkpointing: bool = False  # TRL defaults to on; off for CPU
    report_to: str = "none"  # trackers through TRL's integrations (tensorboard, trackio, ...); metrics.jsonl always
    dataloader_num_workers: int = 0  # no worker processes on CPU
    online_merging: bool = False  # Qwen2's Online Merging Optimizer (OnDARE) around AdamW; full fine-tuning only
    omo_alpha: float = OMO_ALPHA  # weight of the SFT delta in each merged step (Qwen2 gives none)
    omo_drop: float = OMO_DROP  # drop rate of the random sparsification, no rescaling (Qwen2 gives none)
    omo_base: str = ""  # pre-trained base of the start ("" = follow meta.json's from_checkpoint links)


def check_config(cfg: MDLOOConfig) -> None:
    """Reject bad settings with one clear sentence each, before anything is loaded."""
    check_common(cfg)
    if cfg.loss not in LOSSES:
        raise UserError(f"unknown loss '{cfg.loss}'; choose one of: {', '.join(LOSSES)}.")
    if cfg.loss == "mdloo" and cfg.num_iterations < 2:
        raise UserError(f"MDLOO needs num_iterations >= 2 (got {cfg.num_iterations}): with one inner step the "
                         "KL penalty to the previous policy is always zero.")
    if cfg.k < 2:
        raise UserError(f"k (samples per prompt) must be at least 2 for a leave-one-out baseline, got {cfg.k}.")
    if (cfg.prompts_per_step * cfg.k) % cfg.micro_batches:
        raise UserError(f"micro_batches ({cfg.micro_batches}) must divide prompts_per_step * k "
                         f"({cfg.prompts_per_step * cfg.k}).")
    if cfg.t_schedule not in T_SCHEDULES or cfg.kl_estimator not in KL_ESTIMATORS:
        raise UserError(f"t_schedule must be one of {list(T_SCHEDULES)} and kl_estimator one of "
                         f"{list(KL_ESTIMATORS)} (got '{cfg.t_schedule}', '{cfg.kl_estimator}').")
    if cfg.kl_budget < 0:
        raise UserError(f"kl_budget must be 0 (none) or positive, got {cfg.kl_budget}.")
    if cfg.ema_anchor and (cfg.lora_rank or not cfg.beta):
        raise UserError(f"ema_anchor ({cfg.ema_anchor}) moves a separate reference model, which exists only with "
                        f"full fine-tuning and beta > 0 (got lora_rank {cfg.lora_rank}, beta {cfg.beta}).")
    if not cfg.data or not Path(cfg.data).exists():
        raise UserError(f"data '{cfg.data}' is not an existing prompt dataset folder.")
    check_recipe(cfg)


# ---------------------------------------------------------------- what main needs
RECIPE_NAMES = {"mdloo": "mdloo", "ppo_clip": "rloo"}


class KLBudgetStop(TrainerCallback):
    """Stops training at the first logged KL to the reference above `budget` (a guard on the policy drift)."""

    def __init__(self, budget: float):
        self.budget, self.stopped_at = budget, None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.budget and logs and logs.get("kl", 0.0) > self.budget and self.stopped_at is None:
            self.stopped_at = state.global_step
            control.should_training_stop = True


ROLLOUTS_FILE = "rollouts.jsonl"


class RolloutLog(TrainerCallback):
    """Records every scored rollout of the run: {step, prompt_id, domain, completion, reward_model} per line.

    It wraps the RM reward term (same name, so TRL logs the same column) and, as a callback, knows the step
    each sampling happens at. Why: the over-optimisation curves (committee.overoptimisation) put the proxy (this
    RM score) beside the hidden gold score of the same answers along the run, against the step's logged KL;
    the gold is computed there, from the round's gold store, never in training.
    """

    def __init__(self, scorer, rows: list[dict]):
        self.scorer, self.rows, self.step = scorer, rows, 0
        self.__name__ = getattr(scorer, "__name__", "reward_model")

    def on_step_begin(self, args, state, control, **kwargs):
        self.step = state.global_step

    def __call__(self, prompts, completions, **columns):
        rewards = self.scorer(prompts, completions, **columns)
        none = [None] * len(completions)
        ids, domains = columns.get("prompt_id") or none, columns.get("domain") or none
        for pid, domain, text, r in zip(ids, domains, completions, rewards):
            content = text[-1]["content"] if isinstance(text, list) else text
            self.rows.append({"step": self.step, "prompt_id": pid, "domain": domain, "completion": content,
                              "reward_model": None if r is None else float(r)})
        return rewards


def prompt_dataset(path: str | Path, split: str = "train"):
    """The prompt rows of a dataset folder as a `datasets.Dataset` (prompt, domain, verifier, prompt_id)."""
    from datasets import Dataset

    from afm_align.store import read_rows

    rows = [r for r in read_rows(path, kind="prompt") if not split or r.get("split") == split]
    if not rows:
        raise UserError(f"{path}: no prompt rows in split '{split}'.")
    return Dataset.from_list([{"prompt": r["prompt"], "domain": r["domain"], "verifier": r["verifier"],
                               "prompt_id": r["id"]} for r in rows])


def rloo_args(cfg: MDLOOConfig, output_dir: str | Path, reward_weights: list[float]) -> RLOOConfig:
    """TRL arguments for `cfg` (device-safe, afm_align.member_io): one optimizer step per inner step over n * K.

    `ema_anchor` > 0 turns on TRL's reference sync after every optimizer step with mixing weight `ema_anchor`.
    """
    from afm_align.member_io import trainer_args

    batch = cfg.prompts_per_step * cfg.k
    ema = {"sync_ref_model": True, "ref_model_mixup_alpha": cfg.ema_anchor, "ref_model_sync_steps": 1}
    return trainer_args(
        RLOOConfig, output_dir, stage=f"{RECIPE_NAMES[cfg.loss]}-training", bf16=cfg.bf16, report_to=cfg.report_to,
        seed=cfg.seed, max_steps=cfg.steps * cfg.num_iterations,
        per_device_train_batch_size=batch // cfg.micro_batches, gradient_accumulation_steps=cfg.micro_batches,
        steps_per_generation=cfg.micro_batches, num_generations=cfg.k, num_iterations=cfg.num_iterations,
        learning_rate=cfg.learning_rate, lr_scheduler_type="constant", max_grad_norm=cfg.max_grad_norm,
        beta=cfg.beta, epsilon=cfg.epsilon, normalize_advantages=False, reward_weights=reward_weights,
        max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
        activation_checkpointing=cfg.gradient_checkpointing, gradient_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=cfg.dataloader_num_workers, logging_steps=1, logging_first_step=False,
        disable_dropout=True, log_completions=False, **(ema if cfg.ema_anchor else {}),
    )


def final_metrics(history: list[dict]) -> dict:
    """The latest value of each headline metric over the logged steps, plus run totals, for meta.json."""
    keep = ("reward", "reward_std", "kl", "kl_old", "loss", "entropy", "completions/mean_length", "clip_ratio")
    out: dict = {}
    for record in history:
        out.update({k: record[k] for k in keep if k in record})
        out.update({k: record[k] for k in ("train_runtime", "train_samples_per_second") if k in record})
    rewards = [h["reward"] for h in history if "reward" in h]
    if rewards:
        out["first_reward"] = rewards[0]
    return out


@contextmanager
def repeatable_kernels():
    """torch's deterministic kernels while MDLOO trains, then the caller's setting back. Measured on the tiny
    preset (2026-12-03, a round's r1-mdloo settings): at 2 CPU threads two runs from the same inputs and seed
    ended with different weights (the first step's loss differed in the 6th digit; over 192 steps the members'
    gold differed by as much as the effect measured), while at 1 thread, and for the SFT, RS, DPO and IPO members
    at 2, runs repeat bit for bit; with these kernels two 2-thread runs are bit-identical at the same speed (16
    steps: 14 s either way). The difference arises in the training passes, not in sampling: these kernels around
    `generate` alone leave it, everywhere but `generate` remove it (which op was not isolated). A killed round
    re-runs the stage, so this is what lets it resume to the same member. `warn_only`: where a device has no
    deterministic kernel for an op, torch warns instead of failing."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def main(cfg: MDLOOConfig, rewards: list[RewardTerm] | None = None) -> dict:
    """Train from `cfg.from_checkpoint` on `cfg.data` and write the member `cfg.out`; returns final metrics.

    `rewards` replaces the configured reward terms (RM + verifiers) when given, e.g. in tests.
    """
    from alignment.lora import lora_config_or_none, merged
    from alignment.members import WORK_DIR, data_meta, load_start, member_staging, train_summary, write_member
    from alignment.rewards import reward_terms

    check_config(cfg)
    model, tokenizer = load_start(cfg.from_checkpoint, stage=f"{RECIPE_NAMES[cfg.loss]}-training")
    tokenizer.padding_side = "left"  # TRL samples from left-padded prompts
    dataset = prompt_dataset(cfg.data, cfg.split)
    terms = rewards or reward_terms(cfg.reward_model or None, cfg.rm_weight, cfg.families, cfg.verifier_weight)
    rollouts: list[dict] = []
    logs = [RolloutLog(t.fn, rollouts) if t.name == "reward_model" else None for t in terms]
    with member_staging(cfg.out) as stage:
        trainer = MDLOOTrainer(
            model=model, reward_funcs=[log or t.fn for log, t in zip(logs, terms)],
            args=rloo_args(cfg, stage / WORK_DIR, [t.weight for t in terms]),
            train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config_or_none(cfg.lora_rank),
            loss=cfg.loss, t0=cfg.t0, t_schedule=cfg.t_schedule, kl_estimator=cfg.kl_estimator,
            optimizers=recipe_optimizers(model, cfg, cfg.learning_rate, 0.0),  # (None, None) unless online_merging
        )
        budget = KLBudgetStop(cfg.kl_budget)
        trainer.add_callback(budget)
        for log in filter(None, logs):
            trainer.add_callback(log)
        with repeatable_kernels():
            trainer.train()
        history = trainer.state.log_history
        metrics = {**final_metrics(history), "kl_budget": cfg.kl_budget, "kl_budget_stop_step": budget.stopped_at}
        meta = {"member": cfg.member or Path(cfg.out).name, "recipe": RECIPE_NAMES[cfg.loss], "round": cfg.round,
                "from_checkpoint": str(cfg.from_checkpoint), **data_meta(cfg.data), "lora_rank": cfg.lora_rank,
                "reward_terms": {t.name: t.weight for t in terms}, "train": train_summary(history),
                "online_merging": recipe_meta(cfg), "ema_anchor": cfg.ema_anchor,
                "config": config_dict(cfg), "final_metrics": metrics}
        policy = merged(trainer.accelerator.unwrap_model(trainer.model))
        write_member(stage, policy, tokenizer, meta=meta, cfg=cfg, log_history=history)
        if rollouts:  # inside the staging folder: committed with the member, atomically
            (stage / ROLLOUTS_FILE).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rollouts),
                                               encoding="utf-8")
    return metrics
