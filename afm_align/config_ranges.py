"""The range of every numeric config knob: the `Range` type and the one table, `RANGES`.

Split from `afm_align.config` (which loads configs and checks them against this table with `check_ranges`):
the table grows with every recipe, the loader does not. Keys are field names (one vocabulary across recipes);
a `Class.field` key wins for the few knobs whose range differs by config. `range_for(owner, name)` looks one up.
`tests/afm_align/test_config_ranges.py` fails when a config gains an int or float field without a range here.

Run: `python -c "from afm_align.config_ranges import RANGES; print(len(RANGES))"`.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric knob may take: an interval (either end open or absent) plus named sentinels."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    sentinels: tuple[tuple[float, str], ...] = ()  # (value, meaning): allowed although outside the interval

    def __contains__(self, value: float) -> bool:
        if any(value == s for s, _ in self.sentinels):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """`in [0, 1]`, `in (0, 1]`, `at least 1`, `greater than 0`, `any finite number`, `... or -1 (meaning)`."""
        if self.low is not None and self.high is not None:
            text = (f"in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            text = f"{'greater than' if self.low_open else 'at least'} {_num(self.low)}"
        elif self.high is not None:
            text = f"{'less than' if self.high_open else 'at most'} {_num(self.high)}"
        else:
            text = "any finite number"
        return text + "".join(f" or {_num(v)} ({meaning})" for v, meaning in self.sentinels)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def closed(low: float, high: float, **kw) -> Range:
    """[low, high]."""
    return Range(low, high, **kw)


def at_least(low: float, **kw) -> Range:
    """[low, inf)."""
    return Range(low, None, **kw)


def above(low: float, high: float | None = None) -> Range:
    """(low, high] or (low, inf)."""
    return Range(low, high, low_open=True)


ANY = Range()  # any finite number
MAX_BATCH = 1 << 16
MAX_STEPS = 10**8
MAX_ITEMS = 10**8  # items, prompts, pairs, problems: far beyond what a CPU or one GPU node generates
MAX_THREADS = 1024

# The range of every numeric knob of every config, keyed by field name (one vocabulary: a name means the same
# knob in every recipe); `Class.field` keys win for the few names whose range differs by config. Checked by
# `load_config` after all layers (`check_ranges`); `tests/afm_align/test_config_ranges.py` fails when a config
# gains an int or float field without a range here. The configs: afm_align.init_base.InitConfig (with
# afm_align.base_model.ModelShape as `shape`), alignment.sft.SFTRecipeConfig, alignment.preference
# .PreferenceConfig, alignment.mdloo.MDLOOConfig, alignment.rejection_sampling.RSConfig (with its `sft`),
# reward_model.trainer.RMTrainConfig, committee.round_config.IterateConfig (with committee.promotion
# .PromotionRule as `promotion`). This module imports none of them (layers): the table is keyed by names.
RANGES: dict[str, Range] = {
    # ---- the shared vocabulary of training recipes
    "seed": closed(0, 2**31 - 1),
    "round": closed(0, 10**6),
    "learning_rate": closed(0, 1),  # 0 is allowed: a run that must not move the weights (tests use it)
    "epochs": above(0, 10**4),
    "max_steps": closed(1, MAX_STEPS, sentinels=((-1, "use epochs"),)),
    "steps": closed(1, MAX_STEPS),
    "batch_size": closed(1, MAX_BATCH),
    "eval_batch_size": closed(1, MAX_BATCH),
    "gen_batch_size": closed(1, MAX_BATCH),
    "gradient_accumulation_steps": closed(1, MAX_BATCH),
    "max_length": closed(1, 1 << 20),  # RMTrainConfig's may also be None (no cap)
    "lora_rank": closed(0, 4096),  # which ranks are supported: alignment.members.LORA_RANKS (check_common)
    "warmup_steps": closed(0, MAX_STEPS),  # the RM's: a fraction of all steps when below 1
    "weight_decay": closed(0, 1),
    "logging_steps": closed(1, MAX_STEPS),
    "dropout": Range(0, 1, high_open=True),
    "max_grad_norm": above(0, 1e6),
    "dataloader_num_workers": closed(0, 256),
    # ---- sampling
    "temperature": closed(0, 10),  # 0 = greedy
    "select_temperature": closed(0, 10),
    "top_p": above(0, 1),
    "max_new_tokens": closed(1, 32768),
    "eval_max_new_tokens": closed(1, 32768),
    "k": closed(1, 1024),  # MDLOO needs 2 or more (its check_config: a leave-one-out baseline)
    "best_of_n": closed(1, 1024),
    # ---- scores and weights
    "beta": closed(0, 100),  # MDLOO: KL coefficient (0 = none)
    "PreferenceConfig.beta": above(0, 100),  # DPO beta / IPO tau: divides the margin, so never 0
    "nll_weight": closed(0, 100),
    "rm_weight": closed(0, 100),
    "verifier_weight": closed(0, 100),
    "grading_weight": closed(0, 100),
    "rs_rm_weight": closed(0, 100),
    "min_score": ANY,  # combined score floor (None = no floor); RM scores are unbounded
    "rs_min_score": ANY,
    "verifier_min": closed(0, 1),  # verifier scores are in [0, 1]; 0 = no gate
    "rs_verifier_min": closed(0, 1),
    "min_level": closed(0, 3),
    "copy_ngram": closed(0, 64),  # RM exact-match channel: run length in tokens (0 = off)
    "level_probs": closed(0, 1),  # each entry: a target probability
    "judge_levels": closed(0, 1000),  # each entry: an RM-score gap (check_config: three, increasing)
    "kl_budget": at_least(0),  # 0 = no budget
    "t0": above(0, 1e6),
    "epsilon": above(0, 1),
    "heldout_fraction": Range(0, 1, high_open=True),
    # ---- MDLOO
    "prompts_per_step": closed(1, MAX_BATCH),
    "num_iterations": closed(1, 1000),  # mdloo needs 2 or more (check_config)
    "micro_batches": closed(1, MAX_BATCH),
    "ema_anchor": closed(0, 1),  # 0 = fixed reference; (0, 1]: WARP's EMA anchor (check_config: full FT, beta > 0)
    # ---- SFT checkpoint selection, rejection sampling
    "num_checkpoints": closed(1, 1000),
    "select_prompts": closed(1, MAX_ITEMS),
    "max_prompts": closed(0, MAX_ITEMS),  # 0 = all
    # ---- init (the base model's pre-training) and its model shape
    "vocab_size": closed(260, 1 << 22),  # at least the 256 bytes and 4 special tokens of the BPE
    "drill_problems": closed(100, MAX_ITEMS),
    "recall_problems": closed(0, MAX_ITEMS),
    "copy_rows": closed(0, 1024),
    "drill_max_operand": closed(2, 10**9),
    "family_items": closed(0, MAX_ITEMS),
    "math_items": closed(0, MAX_ITEMS),  # 0 = family_items
    "drill_fraction": closed(0, 1),
    "drill_fraction_start": closed(0, 1),  # 0 = no ramp
    "drill_ramp_steps": closed(0, 1 << 30),
    "seq_len": closed(2, 1 << 20),
    "chat_seq_len": closed(2, 1 << 20),
    "chat_groups": closed(1, 1024),
    "probes": closed(1, 19000),  # distinct two-operand +/- problems below 100
    "heldout_sequences": closed(0, MAX_ITEMS),
    "threads": closed(0, MAX_THREADS),  # init: 0 = auto (the cores free when it starts; member_io.free_cores)
    "hidden_size": closed(1, 1 << 20),
    "num_layers": closed(1, 4096),
    "num_heads": closed(1, 4096),
    "num_kv_heads": closed(1, 4096),
    "intermediate_size": closed(1, 1 << 22),
    "max_positions": closed(2, 1 << 24),
    "rope_theta": above(0, 1e12),
    # ---- iterate (the round runner) and promotion
    "IterateConfig.threads": closed(1, MAX_THREADS),  # fixed: a resumed round computes what an unbroken one did
    "init_threads": closed(0, MAX_THREADS),  # the base's pre-training in a round: 0 = auto (the count is recorded)
    "difficulty": closed(0, 3),  # synth families' MAX_DIFFICULTY
    "dev_fraction": Range(0, 1, low_open=True, high_open=True),  # synth.splits.check_fractions: dev + test < 1
    "test_fraction": Range(0, 1, low_open=True, high_open=True),
    "sft_items": closed(1, MAX_ITEMS),
    "eval_prompts": closed(1, MAX_ITEMS),
    "prompts_per_round": closed(1, MAX_ITEMS),
    "sft_prompts_per_round": closed(0, MAX_ITEMS),
    "pairs_per_prompt": closed(1, 1024),
    "oracle_flip": closed(0, 0.5),
    "oracle_level_jitter": closed(0, 1),
    "gold_temperature": closed(0, 10),
    "human_k": closed(1, 1000),
    "human_min_labels": closed(0, MAX_ITEMS),  # 0 = all queued pairs
    "rm_bootstrap_pairs": closed(1, MAX_ITEMS),
    "rm_round_pairs": closed(0, MAX_ITEMS),
    "rm_eval_pairs": closed(1, MAX_ITEMS),
    "rm_replay": closed(0, 1),
    "sft_replay": closed(0, 1),
    "eval_bootstrap": closed(1, 10**7),
    "top_k": closed(1, 1000),
    "min_improvement": closed(-1, 1),  # a difference of dev means (solved shares)
    "keep_best_earlier": closed(0, 1000),
    # ---- the on-device track (committee.on_device) and its adapter recipe (alignment.adapters)
    "AdapterConfig.lora_rank": closed(1, 4096),  # an adapter needs a rank (0 = full fine-tuning elsewhere)
    "corpus_steps": closed(0, MAX_STEPS),  # 0 = skip the pre-training phase
    "sft_steps": closed(0, MAX_STEPS),
    "seeds": closed(0, 2**31 - 1),
    "data_seed": closed(0, 2**31 - 1),
    "ranks": closed(1, 4096),
    "corpus_items": closed(1, MAX_ITEMS),
    "corpus_math_items": closed(0, MAX_ITEMS),
    "prompts_per_family": closed(10, MAX_ITEMS),
    "heldout_per_family": closed(10, MAX_ITEMS),
    "summarize_items": closed(20, MAX_ITEMS),
    "eval_per_domain": closed(1, MAX_ITEMS),
    "group_size": closed(0, 1 << 30),  # rows per look-up table; 0 = one table per whole tensor
    "task_data_words": closed(1, 10**4),
    "task_rows": closed(1, MAX_ITEMS),
    "serve_requests": closed(1, MAX_ITEMS),
    "target_bpw": closed(2, 8),  # the mixed scheme's average index bits of the projections
    "embedding_bits": closed(8, 16),  # 8 = per-row int8 (AFM), 16 = fp16
    "calibration_rows": closed(1, MAX_ITEMS),
    "PruneConfig.calibration_rows": closed(0, MAX_ITEMS),  # 0 = all train rows
    # pruning targets: 0 = keep the teacher's value
    "PruneConfig.hidden_size": closed(0, 1 << 20),
    "PruneConfig.num_heads": closed(0, 4096),
    "PruneConfig.num_kv_heads": closed(0, 4096),
    "PruneConfig.intermediate_size": closed(0, 1 << 22),
    "PruneConfig.num_layers": closed(0, 4096),
    "teacher_weight": closed(0, 1),  # AFM: 0.9 on the teacher's top-1, the rest on the true label
    "DistillConfig.temperature": above(0, 100),  # divides the logits
    # ---- online DPO (alignment.online_dpo)
    "resample_every": closed(1, MAX_STEPS),  # fresh samples and pairs every N steps
    "OnlineDPOConfig.beta": above(0, 100),  # DPO beta scales the margin, so never 0
    # ---- Qwen2's Online Merging Optimizer (alignment.online_merging)
    "omo_alpha": closed(0, 1),  # weight of the SFT delta per step (online_merging_step takes [0, 1])
    "omo_drop": Range(0, 1, high_open=True),  # the drop rate of the random mask; 1 would drop every update
    # ---- merging (alignment.merge)
    "weights": closed(0, 1e6),  # per-member weights, normalised to sum 1 (a positive sum is checked)
    "decay": closed(0, 1),
    "lam": closed(0, 1),
    "eta": closed(0, 1),
}


def range_for(owner: str, name: str) -> Range | None:
    """The range of field `name` of the config class named `owner` (its `owner.name` entry, else `name`'s)."""
    return RANGES.get(f"{owner}.{name}", RANGES.get(name))
