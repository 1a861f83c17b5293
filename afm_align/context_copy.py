"""In-context copying of the base model: copy rows for pre-training, and a score that measures the skill.

Why: the tiny base's answers invent the names, places and call arguments they should copy out of the prompt
(benchmarks/gold_parts.py). A transformer copies from its context with induction heads (attend to the token
after an earlier occurrence of the current token, and repeat it). `copy_score` measures whether a model has
them: on a random token sequence shown twice, a model that copies predicts the second showing almost exactly.
The default tiny base does not (its loss on the second showing is no lower than on the first), though the same
shape learns to in about 200 steps of such rows alone. `copy_rows` (an `afm-align init` setting, off by
default) adds such rows to every pre-training step; what it did on the tiny preset is in the README (it makes
the base copy random sequences, costs arithmetic, and the answers still invent names: copying a recipient
named in an instruction is not a repeat of an earlier sequence).

What it does:
- `copy_batch(n, length, low, high, generator)`: (ids, mask) of `n` rows, a random sequence of token ids in
  [low, high) followed by itself, the loss mask on the whole second showing (the first is noise; the repeat's
  first token is noise too, kept in the mask as in the seed-0 try the README reports, and left out of the score).
- `copy_score(model, ...)`: the mean next-token loss on the first and on the second showing of held-out rows
  (a generator of its own seed), recorded in the base's meta.json by `afm-align init`.
- `copies(score)`: the verdict on such a score (the run report's "Base model" section states it).

Simplifies: random ids of the ordinary vocabulary (not text); one length.
"""
from __future__ import annotations

COPY_LENGTH = 24  # tokens of a copy row's sequence (a row holds it twice)


def copy_batch(n: int, length: int, low: int, high: int, generator):
    """(ids, mask): `n` rows of a random sequence of ids in [low, high) followed by itself; mask on the repeat."""
    import torch

    seq = torch.randint(low, high, (n, length), generator=generator)
    ids = torch.cat([seq, seq], dim=1)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, length:] = True
    return ids, mask


def copy_score(model, *, low: int, high: int, length: int = COPY_LENGTH, rows: int = 64, seed: int = 12345) -> dict:
    """{first, repeat}: mean next-token loss on the first and on the second showing of held-out copy rows
    (position `length - 1` predicts the repeat's first token, which nothing before it gives away: left out)."""
    import torch
    import torch.nn.functional as F

    ids, _ = copy_batch(rows, length, low, high, torch.Generator().manual_seed(seed))
    ids = ids.to(next(model.parameters()).device)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1]
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
    nll = nll.view(rows, -1)
    return {"first": round(float(nll[:, : length - 1].mean()), 3), "repeat": round(float(nll[:, length:].mean()), 3)}


def copies(score: dict) -> bool:
    """Whether a `copy_score` says the model copies from its context: its loss on the repeat is under half its
    loss on the first showing (the default bases sit at about 1x, a base trained on copy rows near 0)."""
    return score["repeat"] < score["first"] / 2
