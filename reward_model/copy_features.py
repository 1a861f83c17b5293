"""Which answer tokens the prompt holds: an exact-match channel for the reward model (`copy_ngram`, off by default).

Why: the open-ended families' gold (coverage of the prompt's facts, no invented values) is decided by whether an
answer's names, days and times are the prompt's. The tiny backbones do not copy in context (README, "The reward
model decides"), and an RM fine-tuned on a few thousand pairs does not learn that check (2,400 noiseless
value-swap pairs leave it at chance), while the same check written as a fixed score (share of answer tokens
inside a 4-token run the prompt also holds) orders r0-sft's own answers at 0.84 on dev. So the RM can be given
the match as an input, as reading-comprehension models give their encoders an exact-match bit per word (DrQA,
Chen et al. 2017): for every answer token, whether some run of `n` consecutive answer tokens covering it occurs
verbatim in the prompt. The RM still learns from labelled pairs what the bit is worth.

What it does, from token ids alone (so the trainer, the scorer and online RL need nothing new):
- `answer_starts(input_ids, attention_mask, turn_start_id, header_len)`: per row, the first answer position:
  after the last non-padding `turn_start_id` token and the `header_len` tokens of the assistant header; one
  past the row's last real token when it has none (no answer: nothing is flagged).
- `copy_flags(input_ids, attention_mask, starts, n)`: per position 0 (prompt, padding), 1 (an answer token
  inside an n-token run that the prompt holds) or 2 (an answer token that is not).
- `assistant_header(tokenizer)`: (turn_start_id, header_len) read from the chat template: the tokens its
  generation prompt adds after a user turn.

What it simplifies: the match is exact on token ids (a word tokenised differently after a space or a quote does
not match); the answer region runs to the row's end, so the template's closing tokens count among its tokens (the
same few in every answer); a sequence the scorer truncated to its last `max_length` tokens keeps only the prompt
it still holds (if the answer's turn start was cut, nothing is flagged: training drops such over-long pairs); and
`copy_flags` compares every position with every other, so it holds a few [B, T, T] boolean tensors (a batch of 64
sequences of 384 tokens: about 9 MB each; of 2,048 tokens: about 270 MB each).

Run: `python -m pytest tests/reward_model/test_copy_features.py`.
"""
from __future__ import annotations

import torch

from afm_align.errors import UserError

PROMPT, COPIED, NOT_COPIED = 0, 1, 2  # the three flag values (rows of the model's match embeddings)


def answer_starts(input_ids: torch.Tensor, attention_mask: torch.Tensor, turn_start_id: int,
                  header_len: int) -> torch.Tensor:
    """[B] first answer position of each row: one past its last real token (no answer) when no turn start is found
    or the header runs past the row's end. Left and right padding both work."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    valid = attention_mask.bool()
    is_start = (input_ids == turn_start_id) & valid
    last = torch.where(is_start, positions, torch.full_like(positions, -1)).max(dim=1).values
    end = torch.where(valid, positions, torch.full_like(positions, -1)).max(dim=1).values + 1
    return torch.where(last >= 0, torch.minimum(last + header_len, end), end)


def copy_flags(input_ids: torch.Tensor, attention_mask: torch.Tensor, starts: torch.Tensor, n: int) -> torch.Tensor:
    """[B, T] long: PROMPT before `starts` and on padding; COPIED for an answer token covered by a run of `n`
    answer tokens that also occurs inside the prompt; NOT_COPIED for any other answer token."""
    batch, width = input_ids.shape
    positions = torch.arange(width, device=input_ids.device)
    valid = attention_mask.bool()
    in_answer = valid & (positions[None, :] >= starts[:, None])
    in_prompt = valid & (positions[None, :] < starts[:, None])
    flags = torch.full((batch, width), PROMPT, dtype=torch.long, device=input_ids.device)
    flags[in_answer] = NOT_COPIED
    if n > width:  # no run of n tokens fits in these rows
        return flags
    same = input_ids[:, :, None] == input_ids[:, None, :]  # [B, answer position i, prompt position j]
    runs = same.clone()
    for k in range(1, n):  # runs[b, i, j]: tokens i..i+n-1 equal tokens j..j+n-1 (i, j <= width - n: masked below)
        runs[:, : width - k, : width - k] &= same[:, k:, k:]
    # a run must lie inside the answer (i .. i+n-1) and inside the prompt (j .. j+n-1)
    answer_run = torch.zeros_like(in_answer)
    prompt_run = torch.zeros_like(in_prompt)
    answer_run[:, : width - n + 1] = in_answer[:, : width - n + 1] & in_answer[:, n - 1:]
    prompt_run[:, : width - n + 1] = in_prompt[:, : width - n + 1] & in_prompt[:, n - 1:]
    found = (runs & answer_run[:, :, None] & prompt_run[:, None, :]).any(dim=2)  # [B, T]: a run starts at i
    covered = torch.zeros_like(found)
    for k in range(n):  # token t is covered by a run starting at t-k
        covered[:, k:] |= found[:, : width - k]
    flags[in_answer & covered] = COPIED
    return flags


def assistant_header(tokenizer) -> tuple[int, int]:
    """(turn_start_id, header_len) of `tokenizer`'s chat template: the tokens its generation prompt adds to a
    user turn (the last `turn_start_id` of a row opens its answer's turn); a tokenizer without a chat template,
    or a generation prompt that does not extend a user turn, is a one-line UserError."""
    turn = [{"role": "user", "content": "x"}]
    try:
        plain = tokenizer.apply_chat_template(turn, tokenize=True, return_dict=True)["input_ids"]
        header = tokenizer.apply_chat_template(turn, tokenize=True, return_dict=True,
                                               add_generation_prompt=True)["input_ids"]
    except (ValueError, AttributeError) as err:
        raise UserError(f"copy_ngram needs a tokenizer with a chat template ({err})".splitlines()[0]) from None
    added = list(header[len(plain):])
    if list(header[:len(plain)]) != list(plain) or not added:
        raise UserError("copy_ngram: the chat template's generation prompt does not extend a user turn; "
                        "the answer cannot be found (set copy_ngram=0)")
    return int(added[0]), len(added)
