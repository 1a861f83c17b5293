"""The one sampling path of afm-align: K completions per chat prompt, for rejection sampling, RL and evaluation.

What it does: `sample(model, tokenizer, prompts, k=..., ...)` renders every prompt once with the tokenizer's
chat template (generation prompt added), sorts the prompts by token length into batches of `batch_size`
sequences (prompts x K), so each batch carries little padding, and decodes each batch in its own loop over the
model's KV cache (transformers' `DynamicCache`):
- each left-padded prompt is encoded once and its cache rows are copied to its K samples (`generate` with
  `num_return_sequences=K` encodes the prompt K times);
- a sequence leaves the batch, with its cache rows, the step it emits EOS (and the left padding no remaining
  row needs goes too), so later steps run only the sequences still going; `generate` computes finished rows,
  as padding, until the longest one ends.
Sampling is transformers' own temperature and top-p warpers (no top-k) and an inverse-CDF draw, the distribution
`generate(do_sample=True, top_k=0)` samples from; `temperature=0` is greedy (argmax, the tokens `generate`
gives; the one greedy answer is repeated K times). Each completion stops at the tokenizer's EOS (`<|im_end|>`
for our ChatML template) or after `max_new_tokens`. The result keeps the input prompt order and carries token
counts and wall time for throughput benchmarks. `generate(...)` returns only the texts. A progress bar counts
prompts. Sampling is seeded (`seed`): the same seed gives the same completions, and the caller's RNG state is
left alone.

vLLM: `sample_vllm(path, ...)` generates from a saved checkpoint directory through `vllm.LLM`
(`resolve_backend("auto")` picks it when vLLM is installed and a GPU is present). The caller that loads
members, `afm_align.member_io.generate_from`, chooses the backend; an in-memory policy (SFT checkpoint
selection, RL) always uses the HF path. The vLLM branch is import-guarded and untested on the CPU machines.

What it simplifies: no continuous batching (a batch's freed rows are not refilled with new prompts: on CPU it
measured no faster, as new short prompts must be padded to the running rows' width), no static KV cache (no
measurable gain on CPU), no `torch.compile` (the batch shrinks as rows leave, so shapes change every few
steps), no generation-config extras (repetition penalty, top-k, stop strings); completions are decoded with
special tokens skipped. `benchmarks/generation_throughput.py` measures it against one batched `generate` call
per batch.

Run: `python -c "from afm_align.generation import generate; help(generate)"`;
tests: `python -m pytest tests/afm_align/test_generation.py`.
"""
from __future__ import annotations

import importlib.util
import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from afm_align.errors import UserError
from afm_align.tracking import progress


@dataclass
class Generations:
    """K completions per prompt (input order) and what producing them cost."""

    texts: list[list[str]]
    prompt_tokens: int  # prompt tokens encoded (each prompt once)
    completion_tokens: int  # generated tokens up to and including EOS, over all K samples
    seconds: float

    @property
    def samples_per_second(self) -> float:
        return sum(len(t) for t in self.texts) / max(self.seconds, 1e-9)


def render(tokenizer, prompts: list[list[dict]]) -> list[list[int]]:
    """Token ids of each chat prompt with the generation prompt appended (the template is applied once)."""
    if not tokenizer.chat_template:
        raise UserError("the tokenizer has no chat template, so chat prompts cannot be rendered for generation.")
    out = []
    for messages in prompts:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        out.append(list(ids["input_ids"]))
    return out


def _left_pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return input_ids, mask


def cut_at_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    """The completion up to and including its first EOS (generate pads after it)."""
    for pos, token in enumerate(ids):
        if token in eos_ids:
            return ids[: pos + 1]
    return ids


def _sampler(temperature: float, top_p: float):
    """The next-token rule on float32 logits [rows, vocab]: argmax when greedy, else transformers' own
    temperature and top-p warpers (so the distribution is exactly `generate`'s with `top_k=0`) and one draw."""
    if temperature <= 0:
        return lambda logits: logits.argmax(-1)
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    warpers = ([TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []) + (
        [TopPLogitsWarper(top_p)] if top_p < 1.0 else [])

    def pick(logits):
        for warp in warpers:
            logits = warp(None, logits)
        # inverse CDF: the first token whose cumulative probability reaches u ~ U(0, total] is token i with
        # probability p_i, the distribution torch.multinomial(p, 1) draws from; on CPU multinomial over a 1k
        # vocabulary took as long as a decoding step of the tiny model, this a tenth of it
        cdf = logits.softmax(-1).cumsum(-1)
        u = (1.0 - torch.rand(cdf.size(0), 1, device=cdf.device)) * cdf[:, -1:]
        return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=cdf.size(1) - 1)

    return pick


def _prefill(model, batch: list[list[int]], k: int, pad_id: int, device):
    """Encode the left-padded prompts once, then copy each prompt's cache rows to its K samples
    (`generate(num_return_sequences=K)` copies the prompt K times before encoding it)."""
    from transformers import DynamicCache

    input_ids, mask = (t.to(device) for t in _left_pad(batch, pad_id))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate: left padding does not shift positions
    cache = DynamicCache(config=model.config)
    extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                **extra)
    logits = out.logits[:, -1].float()
    if k > 1:
        cache.batch_repeat_interleave(k)
        mask, logits = mask.repeat_interleave(k, 0), logits.repeat_interleave(k, 0)
    return cache, mask, logits


def _keep_rows(cache, mask: torch.Tensor, keep: torch.Tensor):
    """Drop finished rows from the cache and the mask, then the padding columns no live row needs (only from
    full-attention layers, whose cache holds one column per mask column; sliding-window layers keep theirs)."""
    cache.batch_select_indices(keep)
    mask = mask[keep]
    lead = mask.size(1) - int(mask.sum(1).max())  # left padding common to every live row
    if lead > 0 and all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers):
        for layer in cache.layers:  # tensors [rows, kv heads, columns, head dim]
            layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]
        mask = mask[:, lead:]
    return mask


def _decode(model, batch: list[list[int]], k: int, max_new_tokens: int, pick, eos: torch.Tensor,
            pad_id: int) -> list[list[int]]:
    """Completion ids of one batch, prompt-major (prompt i's samples at rows i*K .. i*K+K-1), EOS included.

    A row that emits EOS leaves the batch at once, with its KV-cache rows, so every later step runs only the
    sequences still going; transformers' `generate` keeps computing finished rows until the longest ends.
    """
    device = next(model.parameters()).device
    cache, mask, logits = _prefill(model, batch, k, pad_id, device)
    eos = eos.to(device)
    rows = torch.arange(mask.size(0), device=device)  # the completion each live row writes
    positions = mask.sum(1, keepdim=True)  # position id of each row's next token
    steps = []
    for step in range(max_new_tokens):
        tokens = pick(logits)
        steps.append((rows, tokens))
        live = ~torch.isin(tokens, eos)
        if step == max_new_tokens - 1 or not live.any():
            break
        if not live.all():
            keep = live.nonzero().squeeze(1)
            rows, tokens, positions = rows[keep], tokens[keep], positions[keep]
            mask = _keep_rows(cache, mask, keep)
        mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], dim=1)
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions, cache=cache,
                    use_cache=True)
        logits, positions = out.logits[:, -1].float(), positions + 1
    completions: list[list[int]] = [[] for _ in range(len(batch) * k)]
    for rows, tokens in steps:
        for row, token in zip(rows.tolist(), tokens.tolist()):
            completions[row].append(token)
    return completions


def _sample_ids(model, tokenizer, encoded, k, max_new_tokens, temperature, top_p, batch_size, seed):
    """Completion ids [prompt][sample] in input order: prompts sorted by length into batches of `batch_size`
    sequences, decoded under `seed` without touching the caller's RNG state."""
    greedy = temperature <= 0
    draws = 1 if greedy else k  # greedy: one answer, repeated K times
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    per_batch = max(1, batch_size // draws)  # batch_size counts sequences: prompts x K
    eos_ids = {tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))}
    eos = torch.tensor(sorted(i for i in eos_ids if i is not None))
    pick = _sampler(temperature, top_p)
    results: list[list[list[int]]] = [[] for _ in encoded]
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    was_training = model.training
    model.eval()
    bar = progress(total=len(encoded), desc="generating", unit="prompt")
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(order), per_batch):
                chunk = order[start:start + per_batch]
                ids = _decode(model, [encoded[i] for i in chunk], draws, max_new_tokens, pick, eos,
                              tokenizer.pad_token_id)
                for n, i in enumerate(chunk):
                    results[i] = ids[n * draws:(n + 1) * draws] * (k if greedy else 1)
                bar.update(len(chunk))
    finally:
        bar.close()
        model.train(was_training)
    return results


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def vllm_available() -> bool:
    """True when vLLM is importable and a CUDA GPU is present."""
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def resolve_backend(backend: str) -> str:
    """`auto` -> `vllm` when vLLM is installed and a GPU is present, else `hf`; an unknown name is a UserError."""
    if backend == "auto":
        return "vllm" if vllm_available() else "hf"
    if backend not in ("hf", "vllm"):
        raise UserError(f"unknown generation backend '{backend}'; choose one of: auto, hf, vllm.")
    if backend == "vllm" and not vllm_available():
        raise UserError("generation backend 'vllm' needs the vllm package and a CUDA GPU (pip install -e '.[gpu]').")
    return backend


def sample_vllm(path: str | Path, tokenizer, prompts: list[list[dict]], *, k: int = 1, max_new_tokens: int = 128,
                temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, dtype: str = "auto") -> Generations:
    """K completions per chat prompt from the checkpoint saved at `path`, through `vllm.LLM`.

    vLLM loads the weights from the directory itself, so this serves saved checkpoints (committee sampling,
    rejection sampling, evaluation), never a policy whose weights changed in memory. Greedy (temperature 0)
    gives one answer repeated K times, as the HF path does.
    """
    from vllm import LLM, SamplingParams  # noqa: PLC0415 - optional dependency (the `gpu` extra)

    start = time.perf_counter()
    encoded = render(tokenizer, prompts)
    llm = LLM(model=str(path), seed=seed, dtype=dtype)
    greedy = temperature <= 0
    params = SamplingParams(n=1 if greedy else k, temperature=0.0 if greedy else temperature, top_p=top_p,
                            max_tokens=max_new_tokens, stop_token_ids=[tokenizer.eos_token_id], seed=seed)
    outputs = llm.generate([{"prompt_token_ids": ids} for ids in encoded], params)
    ids = [[list(c.token_ids) for c in out.outputs] * (k if greedy else 1) for out in outputs]
    texts = [tokenizer.batch_decode(samples, skip_special_tokens=True) for samples in ids]
    del llm
    return Generations(texts=texts, prompt_tokens=sum(len(e) for e in encoded),
                       completion_tokens=sum(len(c) for samples in ids for c in samples),
                       seconds=time.perf_counter() - start)


def sample(model, tokenizer, prompts: list[list[dict]], *, k: int = 1, max_new_tokens: int = 128,
           temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 32, seed: int = 0,
           ) -> Generations:
    """K completions for each chat prompt (in prompt order) from an in-memory model, with counts and wall time.

    This is the Hugging Face path; the vLLM path (`sample_vllm`) starts from a saved directory, and
    `afm_align.member_io.generate_from` chooses between them.
    """
    if k < 1 or max_new_tokens < 1 or batch_size < 1:
        raise UserError(f"k, max_new_tokens and batch_size must be at least 1 (got {k}, {max_new_tokens}, {batch_size}).")
    if not 0 < top_p <= 1:
        raise UserError(f"top_p must be in (0, 1], got {top_p}.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    start = time.perf_counter()
    encoded = render(tokenizer, prompts)
    ids = _sample_ids(model, tokenizer, encoded, k, max_new_tokens, temperature, top_p, batch_size, seed)
    texts = [tokenizer.batch_decode(samples, skip_special_tokens=True) for samples in ids]
    return Generations(
        texts=texts,
        prompt_tokens=sum(len(e) for e in encoded),
        completion_tokens=sum(len(c) for samples in ids for c in samples),
        seconds=time.perf_counter() - start,
    )


def generate(model, tokenizer, prompts: list[list[dict]], *, k: int = 1, max_new_tokens: int = 128,
             temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 32, seed: int = 0) -> list[list[str]]:
    """K completion texts per chat prompt, in prompt order (see `sample` for counts and timing)."""
    return sample(model, tokenizer, prompts, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                  top_p=top_p, batch_size=batch_size, seed=seed).texts
