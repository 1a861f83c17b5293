"""Score (prompt, completion) pairs with a trained multi-head RM; usable directly as a TRL reward function.

What it does:
- `load_reward_model(path, stage=...)` -> (model, tokenizer) of a trained RM directory, on the device
  `afm_align.member_io` gives the stage (`rm-scoring`, `rm-eval`); anything else is a one-line UserError.
- `RewardScorer(model, tokenizer, stage=...)` puts the model on that stage's device too (a scorer over a
  model loaded anywhere scores on the GPU when there is one), tokenizes each prompt + completion exactly as
  TRL's `RewardTrainer` does for training (the chat template over prompt + completion messages), sorts the
  rows by length so each batch carries little padding, runs the model under `no_grad` and restores the order.
- `score(prompts, completions) -> ScoreResult(rewards, grades)`: grades are the argmax of each grading head.
- `__call__(prompts, completions, **columns) -> list[float]`: TRL's reward-function signature (DESIGN.md §2).
Prompts and completions may be strings or chat-message lists (a string prompt becomes one user message, a
string completion one assistant message). With a tokenizer that has no chat template and string inputs,
the text is `prompt + completion + eos`, as TRL does for non-conversational rows.

What it simplifies: sequences longer than `max_length` keep their last `max_length` tokens (the reward is
read at the last token), so the start of a very long prompt is lost.

Run: `python -m pytest tests/reward_model/test_scorer.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from afm_align import member_io
from afm_align.errors import UserError


@dataclass
class ScoreResult:
    """Per input row: the scalar reward and the predicted grade (0..2) of each grading dimension."""

    rewards: list[float]
    grades: list[dict[str, int]]


def _messages(turns, role: str) -> list[dict]:
    return [{"role": role, "content": turns}] if isinstance(turns, str) else list(turns)


def load_reward_model(path, *, stage: str = "rm-scoring"):
    """(model, tokenizer) of the trained RM at `path`, in eval mode on the stage's device (`member_io.place`)."""
    from transformers import AutoModel, AutoTokenizer

    import reward_model  # noqa: F401  (registers the Auto classes)
    from reward_model.model import check_rm_dir

    path = check_rm_dir(path)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    return member_io.place(model, stage=stage), AutoTokenizer.from_pretrained(path, local_files_only=True)


class RewardScorer:
    """Batched, length-sorted, no-grad scoring with a `MultiHeadRewardModel` (or any model with `.rewards`).

    The model goes to the device `member_io` gives `stage` (its train/eval mode is kept: `score` switches to
    eval and back); inputs go to the model's device.
    """

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int | None = None, *,
                 stage: str = "rm-scoring"):
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}.")
        training = model.training
        self.model = member_io.place(model, stage=stage).train(training)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.__name__ = "reward_model"  # TRL names a reward function's logged column after `__name__`
        pad = tokenizer.pad_token or tokenizer.eos_token
        self.pad_token_id = tokenizer.convert_tokens_to_ids(pad)
        self.dims = list(getattr(model.config, "grading_dims", []))

    def encode(self, prompt, completion) -> list[int]:
        """Token ids of one prompt + completion, as the trainer saw them."""
        tok = self.tokenizer
        if isinstance(prompt, str) and isinstance(completion, str) and not tok.chat_template:
            text = prompt + completion
            ids = tok(text if text.endswith(tok.eos_token) else text + tok.eos_token)["input_ids"]
        else:
            messages = _messages(prompt, "user") + _messages(completion, "assistant")
            ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        if self.max_length is not None and len(ids) > self.max_length:
            ids = ids[-self.max_length :]
        return list(ids)

    def _forward(self, batch_ids: list[list[int]]):
        device = next(self.model.parameters()).device
        width = max(len(ids) for ids in batch_ids)
        input_ids = torch.full((len(batch_ids), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, ids in enumerate(batch_ids):  # right padding; the model pools the last unmasked token
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        out = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device))
        grades = out.grade_logits.argmax(-1).tolist() if getattr(out, "grade_logits", None) is not None else None
        return out.rewards.float().tolist(), grades

    def score(self, prompts, completions) -> ScoreResult:
        """Score each (prompts[i], completions[i]); the result is in input order."""
        if len(prompts) != len(completions):
            raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions; they must match.")
        encoded = [self.encode(p, c) for p, c in zip(prompts, completions)]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        rewards: list[float] = [0.0] * len(encoded)
        grades: list[dict[str, int]] = [{} for _ in encoded]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(order), self.batch_size):
                    chunk = order[start : start + self.batch_size]
                    batch_rewards, batch_grades = self._forward([encoded[i] for i in chunk])
                    for k, i in enumerate(chunk):
                        rewards[i] = batch_rewards[k]
                        if batch_grades is not None:
                            grades[i] = dict(zip(self.dims, batch_grades[k]))
        finally:
            self.model.train(was_training)
        return ScoreResult(rewards=rewards, grades=grades)

    def __call__(self, prompts, completions, **columns) -> list[float]:
        """TRL reward-function entry point: one float per completion (extra dataset columns are ignored)."""
        return self.score(prompts, completions).rewards
