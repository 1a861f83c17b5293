"""How the on-device track measures a model: held-out LM loss, test accuracy per domain, and the
summarisation task's gold score - on an in-memory model (a palettised base, with or without adapters).

What it does:
- `heldout_loss(model, tokenizer, conversations)`: mean next-token cross-entropy over every token of test-split
  conversations (prompt + reference answer), the "held-out LM loss" of the track's tables;
- `domain_accuracy(model, tokenizer, rows)`: greedy answers to test-split prompt rows, graded by the families'
  verifiers (`committee.evaluation.verify_samples`, the one grader) and summarised with a cluster bootstrap
  (`committee.eval_stats.accuracy_report`): per-domain accuracy with intervals that stay honest at 0 and 1;
- `gold_summary_score(model, tokenizer, rows, golds)`: the hidden gold rubric (`synth.summarize_gold`) of the
  greedy summaries, mean and a bootstrap interval over documents. Only evaluation reads the gold: training
  sees the rows, whose `verifier` is empty.

What it simplifies: one greedy answer per prompt (as every evaluation of afm-align); the LM loss counts every
token of a conversation, the prompt's included, as a pre-training loss does.

Run: used by `committee.on_device`; `python -c "from committee.on_device_eval import heldout_loss"`.
"""
from __future__ import annotations

import random


def heldout_loss(model, tokenizer, conversations: list[list[dict]], *, seq_len: int = 160,
                 batch_size: int = 32) -> float:
    """Mean next-token loss over all tokens of `conversations` (weighted by tokens)."""
    import torch

    from alignment.adapters import batch_tensors, encode

    rows = encode(tokenizer, conversations, seq_len, all_tokens=True)
    total, count = 0.0, 0.0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            ids, attn, mask = batch_tensors(rows[i:i + batch_size], tokenizer.pad_token_id)
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            total += float((nll * mask[:, 1:]).sum())
            count += float(mask[:, 1:].sum())
    return round(total / max(count, 1.0), 4)


def answers(model, tokenizer, rows: list[dict], *, max_new_tokens: int, batch_size: int = 32) -> list[str]:
    """The greedy answer to each prompt row."""
    from afm_align.generation import generate

    texts = generate(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens=max_new_tokens,
                     temperature=0.0, batch_size=batch_size)
    return [t[0] for t in texts]


def domain_accuracy(model, tokenizer, rows: list[dict], *, name: str = "model", max_new_tokens: int = 48,
                    n_boot: int = 500) -> dict:
    """{per_domain: {d: {accuracy, ci95, n}}, mean, ci95, n} of the greedy answers, graded by the verifiers."""
    from committee.eval_stats import accuracy_report
    from committee.evaluation import verify_samples

    texts = answers(model, tokenizer, rows, max_new_tokens=max_new_tokens)
    samples = [{"prompt_id": r["id"], "prompt": r["prompt"], "domain": r["domain"], "member": name,
                "identity": r.get("identity"), "completion": t} for r, t in zip(rows, texts)]
    report = accuracy_report(verify_samples(samples, rows), name, n_boot=n_boot, seed=0)
    return {"per_domain": {d: {"accuracy": v["accuracy"], "ci95": v["ci95"], "n": v["n"]}
                           for d, v in report["per_domain"].items()},
            "mean": report["mean"], "ci95": report["ci95"], "n": report["n"]}


def bootstrap_mean(values: list[float], *, n_boot: int = 1000, seed: int = 0) -> list[float]:
    """A 95% percentile-bootstrap interval of the mean of `values`."""
    if not values:
        return [0.0, 0.0]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n_boot))
    return [round(means[int(0.025 * n_boot)], 4), round(means[int(0.975 * n_boot) - 1], 4)]


def gold_summary_score(model, tokenizer, rows: list[dict], golds: dict[str, dict], *,
                       max_new_tokens: int = 48) -> dict:
    """Mean hidden-gold score of the greedy summaries of `rows` ({id: gold} from the track's gold file)."""
    from synth.summarize_gold import gold_score

    texts = answers(model, tokenizer, rows, max_new_tokens=max_new_tokens)
    scores = [gold_score(t, golds[r["id"]]) for r, t in zip(rows, texts)]
    values = [s["score"] for s in scores]
    keys = [k for k in scores[0] if k != "score"] if scores else []
    return {"gold": round(sum(values) / max(len(values), 1), 4), "ci95": bootstrap_mean(values),
            "n": len(values), **{k: round(sum(s[k] for s in scores) / len(scores), 4) for k in keys},
            "scores": [round(v, 4) for v in values], "example": texts[0] if texts else ""}

