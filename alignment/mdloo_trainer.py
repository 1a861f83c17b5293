"""The MDLOO trainer: TRL's `RLOOTrainer` one level down, with the MDLOO policy step, no separate pi_old pass, and
log-prob passes that score only the completion positions and run each distinct prompt once.

`MDLOOTrainer` overrides three methods (the most DESIGN §5 allows):
- `__init__`: validates (m >= 2 for MDLOO, one generation batch per optimizer step cycle), stores the loss
  settings and decides where pi_old's per-token log-probs for the reward come from (`old_logps_source`);
- `_compute_loss`: the policy loss from `LOSSES` (`"mdloo"` or `"ppo_clip"`). pi_k's per-token log-probs (the
  KL to the previous policy, the ratio) are the policy's own on its first pass over the batch, when pi_theta
  still equals pi_k; that is why `steps_per_generation` must equal `gradient_accumulation_steps`;
- `_get_per_token_logps_and_entropies`: TRL's signature and numbers. The one no-grad call on the policy right
  after sampling (TRL's "old log-probs" pass) gets the log-probs recorded while sampling; every other pass (the
  reference pass, the training passes) runs `completion_logps` (below).

Why that pass can go. After sampling, TRL 1.16's `RLOOTrainer._generate_and_score_completions` always runs a
no-grad forward of the policy over the n*K prompt+completion sequences (GRPOTrainer skips its own when
`gradient_accumulation_steps` is a multiple of `steps_per_generation * num_iterations`, i.e. when a sampled batch
feeds a single optimizer step, num_iterations == 1; RLOOTrainer has no such skip, not even at num_iterations == 1).
It feeds (1) `old_logps`, sequence sums that only TRL's own PPO-clip loss reads (ours does not: both `LOSSES`
take pi_k from the first training pass), and (2) the reward's KL `beta * sum_t (log pi_old - log pi_ref)` and the
logged `kl`. Sampling already computed pi_old's logits for every sampled token: `generate(output_logits=True)`
returns them raw (before any logits processor, so `min_new_tokens` or suppressed tokens do not change them), and
`log_softmax(logits / T)` at the sampled tokens is what the forward pass computes (TRL's fused head divides by the
same T), up to float rounding between a KV-cache decode and one full pass (about 1e-6 in float32;
tests/alignment/test_mdloo_fast.py).
`old_logps_source` picks, once per trainer:
- `"skip"`: beta = 0, so nothing reads them; the pass is not run and `old_logps` is NaN (loud if anything did);
- `"generation"`: untempered sampling (temperature 1, top_p 1, no top_k / min_p / repetition penalty) through
  transformers' `generate`: the recorded log-probs;
- `"forward"`: anything else (tempered sampling, vLLM, continuous batching): TRL's pass, unchanged. The raw
  logits would match TRL's pass there too (it ignores top-p/top-k and divides by T as well); issue 21 asked to
  keep the pass for tempered sampling, and this gate does.
Rewards, advantages and metrics are TRL's, unchanged.

The passes that remain do only the work the loss reads. Off Triton devices (CPU included) TRL's fused LM head
projects every position, prompt and padding too, and projects them again in its backward; and each prompt, sampled
K times, runs through the backbone K times. `completion_logps` runs the backbone once per distinct prompt, then
the completions on that prompt's key/value cache (`completion_states`), and the LM head, log-softmax and gather on
the kept completion positions only. Same numbers to float rounding: log-probs within 1e-6, entropies within 2e-6,
gradients within 2e-6 of TRL's in float32 (tests/alignment/test_mdloo_fast.py). Models where that is not exact
or not possible keep TRL's pass (`direct_lm`, `shared_prompt_cache`): MoE aux loss, distributed wrappers, PEFT
prompt learning, vision-language models, scaled or capped logits, sliding-window layers, activation checkpointing
(prompt sharing only). Multimodal inputs are refused: the trainer scores text only.

What it saves, at benchmarks/mdloo_vs_trl_rloo.py's shapes on one CPU thread: the pi_old pass (one no-grad
forward over n*K sequences per sampled batch), and about a third of each reference and training pass (the head
alone: 10-15%). What it costs: about 1 ms of log-softmax after sampling, which keeps the raw logits (batch x new
tokens x vocab float32, 4 MB at 32 x 32 x 1024) until `generate` returns; and per pass the completion logits
(kept tokens x vocab float32) where TRL's head tiles them. How to run: through `alignment.mdloo` (`afm-align train
mdloo ...`); `old_logps_from="forward"` forces TRL's pi_old pass.
"""
from __future__ import annotations

import copy
import functools
import inspect
import weakref

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer
from transformers.utils import is_peft_available
from trl import RLOOTrainer

from alignment.losses import mdloo_loss, ppo_clip_loss, t_schedule

SKIP = "skip"  # recorded instead of log-probs when nothing needs them (beta = 0)


def _mdloo(trainer, logp_new, logp_old, advantages, mask):
    steps = trainer.state.global_step // trainer.num_iterations
    total = max(1, trainer.state.max_steps // trainer.num_iterations)
    t_k = t_schedule(trainer.t_schedule, trainer.t0, steps, total)
    trainer._metrics["train"]["mdloo/t_k"].append(t_k)
    return mdloo_loss(logp_new, logp_old, advantages, mask, t_k, trainer.kl_estimator)


def _ppo_clip(trainer, logp_new, logp_old, advantages, mask):
    return ppo_clip_loss(logp_new, logp_old, advantages, mask, trainer.epsilon_low, trainer.epsilon_high)


LOSSES = {"mdloo": _mdloo, "ppo_clip": _ppo_clip}
OLD_LOGPS_FROM = ("auto", "forward")  # where pi_old's log-probs come from: the gate below, or always TRL's pass


# ---------------------------------------------------------------- pi_old's log-probs from sampling
def old_logps_source(beta: float, temperature: float, generation_config, *, use_vllm: bool = False,
                     continuous_batching: bool = False) -> str:
    """"skip", "generation" or "forward": where the reward's pi_old log-probs come from (module docstring)."""
    if use_vllm or continuous_batching or generation_config is None:
        return "forward"  # the recording wraps transformers' `generate` only
    if beta == 0.0:
        return "skip"
    g = generation_config
    untempered = (temperature == 1.0 and g.temperature in (None, 1.0) and g.top_p in (None, 1.0) and not g.top_k
                  and not g.min_p and g.repetition_penalty in (None, 1.0))
    return "generation" if untempered else "forward"


def sampled_token_logps(logits, sequences: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """[B, T]: log_softmax(logits_t / temperature) at the token sampled at step t.

    `logits` is `generate(output_logits=True)`'s tuple of T raw [B, V] step logits; `sequences` ends with the
    T sampled tokens. One step at a time, so only one [B, V] log-softmax is alive at once.
    """
    tokens = sequences[:, sequences.size(1) - len(logits):]
    return torch.stack([(step.float() / temperature).log_softmax(-1).gather(1, tokens[:, t, None]).squeeze(1)
                        for t, step in enumerate(logits)], dim=1)


def align_to_completions(logps: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Sampled-token log-probs [B, T] in TRL's completion layout [B, C], as its forward pass returns them.

    TRL cuts each completion after its first EOS and right-pads to C <= T (more with `pad_to_multiple_of`):
    keep the first C steps (zero-pad if fewer) and put 0 where the mask is 0, as TRL's fused head does.
    """
    width = completion_mask.size(1)
    out = logps[:, :width]
    if out.size(1) < width:
        out = torch.nn.functional.pad(out, (0, width - out.size(1)))
    return torch.where(completion_mask.bool(), out, torch.zeros_like(out))


def recording_generate(generate, trainer_ref):
    """`generate`, which on TRL's own sampling call (the one given the trainer's `generation_config`) also leaves
    pi_old's per-token log-probs (or `SKIP`) on the trainer for the old-log-prob pass; other calls pass through."""

    @functools.wraps(generate)
    def run(*args, **kwargs):
        trainer = trainer_ref()
        if trainer is None or kwargs.get("generation_config") is not trainer.generation_config:
            return generate(*args, **kwargs)
        if trainer.old_logps_source == SKIP:
            trainer._sampled_logps = SKIP
            return generate(*args, **kwargs)
        config = copy.copy(trainer.generation_config)  # the same sampling, plus the raw logits back
        config.output_logits = config.return_dict_in_generate = True
        out = generate(*args, **{**kwargs, "generation_config": config})
        trainer._sampled_logps = sampled_token_logps(out.logits, out.sequences, trainer.temperature)
        return out.sequences

    run.records_sampled_logps = True
    return run


def install_recording(trainer, source: str) -> None:
    """Set where `trainer` takes pi_old's log-probs from; wrap its policy's `generate` unless that is "forward"."""
    trainer.old_logps_source, trainer._sampled_logps = source, None
    generate = trainer.model.generate
    if getattr(generate, "records_sampled_logps", False):  # wrapped for an earlier trainer (or this one)
        generate = generate.__wrapped__
        trainer.model.generate = generate
    if source != "forward":
        # a weak reference: the model outlives the trainer (it is saved after training) and must not keep it alive
        trainer.model.generate = recording_generate(generate, weakref.ref(trainer))


# ---------------------------------------------------------------- the log-prob passes
MULTIMODAL = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
              "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")  # TRL's keyword inputs
# config fields with which TRL's fused head scales or soft-caps the logits; such models keep TRL's pass
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                    "logits_scaling")


def recorded_old_logps(recorded, completion_mask: torch.Tensor) -> torch.Tensor:
    """TRL's old-log-prob pass answered from the recording: NaN for `SKIP` (beta = 0, loud if anything read it)."""
    if isinstance(recorded, str):
        return torch.full(completion_mask.shape, float("nan"), device=completion_mask.device)
    if recorded.size(0) != completion_mask.size(0):
        raise RuntimeError(f"recorded log-probs for {recorded.size(0)} samples, but the old-log-prob pass scores "
                           f"{completion_mask.size(0)}; construct the trainer with old_logps_from='forward'.")
    return align_to_completions(recorded.to(completion_mask.device), completion_mask)


def direct_lm(model):
    """The transformers causal LM whose backbone and LM head `completion_logps` may call, or None (TRL's pass).

    A PEFT model gives its base model: LoRA layers sit inside it, so adapters (and `disable_adapter()`, TRL's
    reference for a new adapter) still apply. None for prompt learning (its forward adds virtual tokens), a wrapper
    that is not a transformers model (torch.compile), a vision-language model or a head that scales its logits.
    """
    if is_peft_available():
        from peft import PeftModel

        if isinstance(model, PeftModel):
            if model.active_peft_config.is_prompt_learning:
                return None
            model = model.get_base_model()
    if not isinstance(model, PreTrainedModel) or model.config.get_text_config() is not model.config:
        return None
    if any(getattr(model.config, field, None) is not None for field in LOGIT_TRANSFORMS):
        return None
    return model


def shared_prompt_cache(backbone):
    """An empty KV cache for `backbone` to share prompt states in, or None where that is not exact or not possible:
    a layer that is not plain full attention (sliding window, linear attention), or activation checkpointing under
    grad (transformers drops the cache there)."""
    if torch.is_grad_enabled() and any(getattr(m, "gradient_checkpointing", False) for m in backbone.modules()):
        return None
    cache = DynamicCache(config=backbone.config)
    return cache if cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers) else None


def completion_states(backbone, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int):
    """The backbone's last hidden states [B, C, H] at the positions before each of the last C = `logits_to_keep`
    tokens (position t predicts token t + 1).

    TRL samples each prompt K times, so a batch holds each prompt (same ids, same left padding) up to K times. Its
    states do not depend on the completion (causal attention), so they are computed once per distinct prompt; the
    completions then run on that prompt's key/value cache, at the positions the full pass gives them. Where no prompt
    repeats, or sharing is not possible (`shared_prompt_cache`), one pass over the whole sequences, as TRL's.
    """
    prompt_len = input_ids.size(1) - logits_to_keep
    rows = torch.cat([input_ids[:, :prompt_len], attention_mask[:, :prompt_len]], 1)
    distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)
    cache = shared_prompt_cache(backbone) if distinct.size(0) < input_ids.size(0) else None
    if cache is None:
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return hidden[:, -logits_to_keep - 1:-1]
    # transformers 5 renames the cache argument model by model
    name = "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"
    prompts = backbone(input_ids=distinct[:, :prompt_len], attention_mask=distinct[:, prompt_len:], use_cache=True,
                       **{name: cache}).last_hidden_state
    cache.batch_select_indices(inverse)  # each row's prompt keys and values (differentiable: gradients add up)
    completions = backbone(input_ids=input_ids[:, prompt_len:], attention_mask=attention_mask, use_cache=True,
                           **{name: cache}).last_hidden_state
    return torch.cat([prompts[inverse, -1:], completions[:, :-1]], 1)


def completion_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                     temperature: float = 1.0, batch_size: int | None = None, compute_entropy: bool = False):
    """Per-token log-probs [B, C] of the last C = `logits_to_keep` tokens, and their entropies when asked, as TRL's
    fused LM head returns them (tempered by 1 / `temperature`, 0 where `attention_mask` is 0), in chunks of
    `batch_size` sequences.

    What differs is the work: TRL's fused head scores only the labelled positions on Triton devices but every
    position elsewhere (CPU included), prompt and padding too, and repeats that projection in its backward. Here the
    head runs on the kept completion positions only, and the backbone on each distinct prompt once
    (`completion_states`). Entropies carry no gradient: the trainer only logs them (TRL's carry one no loss uses).
    """
    head = model.get_output_embeddings()
    size = batch_size or input_ids.size(0)
    inv_t = 1.0 / temperature  # TRL's fused head multiplies by 1 / T too
    logps, entropies = [], []
    for start in range(0, input_ids.size(0), size):
        ids, mask = input_ids[start:start + size], attention_mask[start:start + size]
        hidden = completion_states(model.base_model, ids, mask, logits_to_keep).to(head.weight.device)
        keep = mask[:, -logits_to_keep:].to(head.weight.device).bool()
        targets = ids[:, -logits_to_keep:].to(head.weight.device)[keep]
        token_logps = (head(hidden[keep]).float() * inv_t).log_softmax(-1)
        picked = token_logps.gather(-1, targets[:, None]).squeeze(-1)
        logps.append(picked.new_zeros(keep.shape).masked_scatter(keep, picked))
        if compute_entropy:
            with torch.no_grad():
                entropy = -(token_logps.exp() * token_logps).sum(-1)
            entropies.append(entropy.new_zeros(keep.shape).masked_scatter(keep, entropy))
    return torch.cat(logps), torch.cat(entropies) if compute_entropy else None


# ---------------------------------------------------------------- the trainer
class MDLOOTrainer(RLOOTrainer):
    """TRL's RLOOTrainer with the MDLOO policy step, taking pi_old's log-probs from sampling (module docstring)."""

    def __init__(self, *args, loss: str = "mdloo", t0: float = 1.0, t_schedule: str = "constant",
                 kl_estimator: str = "token", old_logps_from: str = "auto", **kwargs):
        rloo_args = kwargs.get("args")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss '{loss}'; choose one of: {', '.join(LOSSES)}.")
        if old_logps_from not in OLD_LOGPS_FROM:
            raise ValueError(f"old_logps_from must be one of {OLD_LOGPS_FROM}, got '{old_logps_from}'.")
        if rloo_args is None:
            raise ValueError("MDLOOTrainer needs explicit args (an RLOOConfig).")
        if loss == "mdloo" and rloo_args.num_iterations < 2:
            raise ValueError(f"MDLOO needs num_iterations >= 2 (got {rloo_args.num_iterations}): with one inner "
                             "step the KL penalty to the previous policy is always zero.")
        if rloo_args.steps_per_generation != rloo_args.gradient_accumulation_steps:
            raise ValueError("MDLOOTrainer needs steps_per_generation equal to gradient_accumulation_steps, so that "
                             "the first pass over a sampled batch still sees the sampling policy.")
        self.loss_name, self.t0, self.t_schedule, self.kl_estimator = loss, t0, t_schedule, kl_estimator
        super().__init__(*args, **kwargs)
        source = old_logps_source(self.beta, self.temperature, getattr(self, "generation_config", None),
                                  use_vllm=self.use_vllm, continuous_batching=self.use_transformers_continuous_batching)
        install_recording(self, source if old_logps_from == "auto" else "forward")

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        # TRL's signature and result. The first no-grad call on the policy after a recorded sampling is TRL's
        # old-log-prob pass: answered from the recording. Every other call (reference pass, training passes,
        # evaluation) runs `completion_logps`: prompts once, the LM head on the kept completion positions only.
        given = sorted(name for name, value in multimodal.items() if value is not None)
        if given:
            raise ValueError(f"MDLOOTrainer scores text-only models; got multimodal inputs {given}.")
        recorded = self._sampled_logps
        if recorded is not None and model is self.model and not torch.is_grad_enabled():
            self._sampled_logps = None
            return recorded_old_logps(recorded, attention_mask[:, -logits_to_keep:]), None, None
        lm = None if compute_aux_loss or self.accelerator.distributed_type != "NO" else direct_lm(model)
        if lm is None:  # MoE aux loss, a distributed wrapper, PEFT prompt learning, ...: TRL's pass as is
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                              batch_size, compute_entropy, compute_aux_loss)
        with self.accelerator.autocast():
            logps, entropies = completion_logps(lm, input_ids, attention_mask, logits_to_keep, self.temperature,
                                                batch_size, compute_entropy)
        return logps, entropies, None

    def _compute_loss(self, model, inputs):
        prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]
        completion_mask = inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], completion_mask], dim=1)
        multimodal = {key: inputs[key] for key in MULTIMODAL if inputs.get(key) is not None}  # raises below
        logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled, **multimodal)
        # First pass over this sampled batch: no optimizer step has been taken since sampling, so the
        # policy's own log-probs are pi_k's; keep them (the buffered dict is reused on later passes).
        first_pass = (self._step // self.args.steps_per_generation) % self.num_iterations == 0
        if first_pass or "old_per_token_logps" not in inputs:
            inputs["old_per_token_logps"] = logps.detach()
        out = LOSSES[self.loss_name](self, logps, inputs["old_per_token_logps"], inputs["advantages"],
                                     completion_mask)
        loss = out.loss + (self.router_aux_loss_coef * aux_loss if self.aux_loss_enabled else 0.0)
        mask = completion_mask.float()
        metrics = self._metrics["train" if self.model.training else "eval"]
        metrics["entropy"].append(((entropies * mask).sum() / mask.sum().clamp(min=1.0)).item())
        metrics["kl_old"].append(self.accelerator.gather(out.kl_old.reshape(1)).mean().item())
        metrics["ratio"].append(self.accelerator.gather(out.ratio.reshape(1)).mean().item())
        metrics["clip_ratio"].append(self.accelerator.gather(out.clipped.reshape(1)).mean().item())
        return loss
