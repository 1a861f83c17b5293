"""The multi-head reward model of the AFM report (afm-spec.md §2.2), as a Hugging Face model.

What it does:
- `MultiHeadRewardConfig` stores the backbone's config inside (`lm_config`, any HF decoder config; default
  Qwen3) plus the grading-head shape.
- `MultiHeadRewardModel` runs the backbone (`AutoModel.from_config`), takes the final hidden state of the
  last non-padding token of each row (found from `attention_mask`, so left and right padding both work;
  `pooling="attention"` instead takes a learned softmax-weighted mean of every non-padding token's state, so
  a feature found at one answer token, a name the prompt does not hold, need not be carried to the last
  token first), and applies one linear head -> scalar reward and four MLP heads (hidden -> hidden -> 3, SiLU) -> 3-way
  grading logits for `instruction_following`, `verbosity`, `truthfulness`, `harmlessness`.
  It returns `rewards` `[B]`, `grade_logits` `[B, 4, 3]` and `logits` = `rewards[:, None]` (TRL reads that).
- `copy_ngram=n` (ours, off: 0) gives the RM an exact-match channel (`reward_model.copy_features`): every
  answer token's flag (inside an n-token run the prompt holds, or not) adds a learned vector to its input
  embedding, and the answer tokens' mean of a second learned vector per flag is added to the pooled state the
  heads read. Both start at zero, so an untrained channel changes nothing.
- Both are registered with `AutoConfig`, `AutoModel` and `AutoModelForSequenceClassification`, so
  `save_pretrained` / `AutoModel.from_pretrained` round-trip every head (importing `reward_model` registers).
- `MultiHeadRewardModel.from_backbone(path_or_model)` starts an RM from a causal-LM checkpoint's base model.
- `check_rm_dir(path, what)` reads a saved folder's config.json and refuses anything but a trained RM, with
  one line naming the option (`what`), before any weights are loaded.

What it simplifies: `pooling="attention"` and `copy_ngram` are our options, not the paper's (AFM reads one token
and gives its RM nothing but the tokens); the attention pool's scorer starts
at zero, so an untrained pool is the plain mean of the tokens. The MLP depth/width is not given by the paper
(afm-spec §14 q4): one hidden layer of the backbone's width. The reward head is linear with a bias, as in the
paper (r = w^T h + b).

Run: `python -m pytest tests/reward_model/test_model.py`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import ModelOutput

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS
from reward_model.copy_features import PROMPT, answer_starts, copy_flags
from reward_model.data import NUM_GRADE_LEVELS

MODEL_TYPE = "afm_multihead_rm"
POOLINGS = ("last", "attention")  # how a row's token states become the one vector the heads read


class MultiHeadRewardConfig(PretrainedConfig):
    """Config of the multi-head RM: the backbone config plus the grading-head shape."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"lm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen3")}

    lm_config: dict | PretrainedConfig | None = None  # the backbone's config (any HF decoder)
    grading_dims: list[str] = field(default_factory=lambda: list(GRADE_DIMENSIONS))  # one 3-way head per dimension
    num_grade_levels: int = NUM_GRADE_LEVELS  # classes per grading head
    head_hidden_size: int | None = None  # MLP width of the grading heads; None = backbone hidden size
    initializer_range: float = 0.02  # std of the heads' initial weights
    pooling: str = "last"  # "last": the last non-padding token (AFM); "attention": learned weights over all tokens
    copy_ngram: int = 0  # > 0: the exact-match channel with runs of this many tokens (copy_features); 0 = off
    turn_start_id: int | None = None  # the token that opens a chat turn (the last one opens the answer)
    answer_header_len: int = 0  # tokens of the assistant header from that token to the answer's first

    def __post_init__(self, **kwargs):
        kwargs.setdefault("num_labels", 1)  # one scalar reward: TRL's RewardTrainer checks num_labels == 1
        super().__post_init__(**kwargs)
        check_pooling(self.pooling)
        if self.copy_ngram < 0 or (self.copy_ngram and self.turn_start_id is None):
            raise UserError(f"copy_ngram={self.copy_ngram}: give 0 (off) or a run length >= 1 with the chat "
                            "template's turn-start token")


@dataclass
class MultiHeadRewardOutput(ModelOutput):
    """`rewards` [B]; `grade_logits` [B, D, K]; `logits` = rewards[:, None] for TRL-style code."""

    logits: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    grade_logits: torch.Tensor | None = None


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding position in each row (works for left and right padding)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=1)


def check_pooling(pooling: str) -> str:
    """`pooling` when it is one of POOLINGS; else a one-line UserError."""
    if pooling not in POOLINGS:
        raise UserError(f"pooling={pooling!r}: choose one of {', '.join(POOLINGS)}")
    return pooling


def match_flags(input_ids: torch.Tensor, attention_mask: torch.Tensor, config: MultiHeadRewardConfig) -> torch.Tensor:
    """[B, T] copy flags (`copy_features.copy_flags`) of a batch, the answer found by the config's turn header."""
    starts = answer_starts(input_ids, attention_mask, config.turn_start_id, config.answer_header_len)
    return copy_flags(input_ids, attention_mask, starts, config.copy_ngram)


def attention_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The softmax(`scores`)-weighted mean of `hidden` [B, T, H] over each row's non-padding positions."""
    scores = scores.masked_fill(attention_mask == 0, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=1)
    return torch.einsum("bt,bth->bh", weights, hidden)


class MultiHeadRewardModel(PreTrainedModel):
    """Backbone + linear reward head + four MLP grading heads on the last non-padding token."""

    config_class = MultiHeadRewardConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: MultiHeadRewardConfig):
        super().__init__(config)
        self.model = AutoModel.from_config(config.lm_config)
        hidden = config.lm_config.hidden_size
        width = config.head_hidden_size or hidden
        self.reward_head = nn.Linear(hidden, 1)
        self.pool_scorer = nn.Linear(hidden, 1) if config.pooling == "attention" else None
        # the exact-match channel: one vector per flag (prompt, copied, not copied) at the input and at the pool
        self.match_in = nn.Embedding(3, hidden) if config.copy_ngram else None
        self.match_out = nn.Embedding(3, hidden) if config.copy_ngram else None
        self.grade_heads = nn.ModuleDict(
            {
                dim: nn.Sequential(nn.Linear(hidden, width), nn.SiLU(), nn.Linear(width, config.num_grade_levels))
                for dim in config.grading_dims
            }
        )
        self.post_init()
        if self.pool_scorer is not None:  # zero: an untrained attention pool is the plain mean of the tokens
            nn.init.zeros_(self.pool_scorer.weight)
            nn.init.zeros_(self.pool_scorer.bias)
        for table in (self.match_in, self.match_out):  # zero: an untrained channel changes nothing
            if table is not None:
                nn.init.zeros_(table.weight)

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> MultiHeadRewardOutput:
        kwargs.pop("labels", None)
        kwargs["use_cache"] = False
        flags = None
        if self.match_in is not None:
            if input_ids is None:
                raise ValueError("copy_ngram: this RM reads its exact-match flags from input_ids; pass input_ids, "
                                 "not inputs_embeds")
            mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(input_ids.device)
            flags = match_flags(input_ids, mask, self.config)
            inputs_embeds = self.model.get_input_embeddings()(input_ids) + self.match_in(flags)
            input_ids = None
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        hidden = out.last_hidden_state  # [B, T, H]
        if self.pool_scorer is not None:
            mask = torch.ones(hidden.shape[:2], device=hidden.device) if attention_mask is None else attention_mask
            pooled = attention_pool(hidden, mask.to(hidden.device), self.pool_scorer(hidden).squeeze(-1))
        else:
            if attention_mask is None:
                index = torch.full((hidden.shape[0],), hidden.shape[1] - 1, device=hidden.device, dtype=torch.long)
            else:
                index = last_token_index(attention_mask.to(hidden.device))
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), index]  # [B, H]
        if flags is not None:  # the answer tokens' mean match vector: the copied share, readable by every head
            answer = (flags != PROMPT).to(hidden.dtype)
            pooled = pooled + torch.einsum("bt,bth->bh", answer, self.match_out(flags).to(hidden.dtype)) \
                / answer.sum(dim=1, keepdim=True).clamp(min=1)
        rewards = self.reward_head(pooled).squeeze(-1)
        grade_logits = torch.stack([head(pooled) for head in self.grade_heads.values()], dim=1)
        return MultiHeadRewardOutput(logits=rewards[:, None], rewards=rewards, grade_logits=grade_logits)

    @classmethod
    def from_backbone(cls, path_or_model, **config_kwargs) -> MultiHeadRewardModel:
        """Build an RM whose backbone is the base model of a causal-LM checkpoint (path) or model instance.

        The heads are freshly initialised; `config_kwargs` go to `MultiHeadRewardConfig` (e.g. `head_hidden_size`).
        A path is loaded with `AutoModel.from_pretrained` (local files only), which strips a causal LM's
        `lm_head` and keeps the base model's weights. A model instance's base model is used as is (shared, not
        copied), so deep-copy it first if the causal LM must stay untouched by RM training.
        """
        if isinstance(path_or_model, PreTrainedModel):
            backbone = path_or_model.base_model
        else:
            try:
                backbone = AutoModel.from_pretrained(str(path_or_model), local_files_only=True, dtype=torch.float32)
            except OSError as err:
                raise UserError(f"Cannot load a backbone from {path_or_model!s}: {err}".splitlines()[0]) from err
        config = MultiHeadRewardConfig(lm_config=backbone.config, **config_kwargs)
        rm = cls(config)
        rm.model = backbone
        return rm.to(next(backbone.parameters()).device)


def check_rm_dir(path, what: str = "reward model") -> Path:
    """`path` as a Path when it holds a trained multi-head RM; else a one-line UserError naming `what`."""
    path = Path(path)
    config = path / "config.json"
    if not config.is_file():
        raise UserError(f"{what} {path}: not a trained reward-model directory (train one with `afm-align rm train`)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (ValueError, AttributeError):
        raise UserError(f"{what} {path}: config.json is not a JSON object") from None
    if model_type != MODEL_TYPE:
        raise UserError(f"{what} {path}: not a reward-model directory (it holds a '{model_type}' model, "
                        "not an afm-align RM; train one with `afm-align rm train`)")
    return path


def register_auto_classes() -> None:
    """Register the RM with the Auto classes (idempotent; runs on import of `reward_model`)."""
    try:
        AutoConfig.register(MODEL_TYPE, MultiHeadRewardConfig)
    except ValueError:  # already registered in this process
        return
    AutoModel.register(MultiHeadRewardConfig, MultiHeadRewardModel)
    AutoModelForSequenceClassification.register(MultiHeadRewardConfig, MultiHeadRewardModel)


register_auto_classes()
