"""The one sampling path of afm-align: K completions per chat prompt, for rejection sampling, RL and evaluation.

What it does: `sample(model, tokenizer, prompts, k=..., ...)` renders every prompt once with the tokenizer's
chat template (generation prompt added), sorts the prompts by token length so each batch carries little
padding, left-pads them, and calls transformers' `generate` once per batch with `num_return_sequences=k`
(the prompt is encoded once and shared by its K samples). Sampling uses temperature / top-p
(`temperature=0` is greedy, and the one greedy answer is repeated K times), and each completion stops at
the tokenizer's EOS (`<|im_end|>` for our ChatML template). The result keeps the input prompt order and
carries token counts and wall time for throughput benchmarks. `generate(...)` returns only the texts.
A progress bar counts prompts. Sampling is seeded (`seed`) without disturbing the caller's RNG state.

vLLM: `sample_vllm(path, ...)` generates from a saved checkpoint directory through `vllm.LLM`
(`resolve_backend("auto")` picks it when vLLM is installed and a GPU is present). The caller that loads
members, `afm_align.member_io.generate_from`, chooses the backend; an in-memory policy (SFT checkpoint
selection, RL) always uses the HF path. The vLLM branch is import-guarded and untested on the CPU machines.

What it simplifies: no continuous batching or KV-cache reuse across batches; completions are decoded with
special tokens skipped.

Run: `python -c "from afm_align.generation import generate; help(generate)"`;
tests: `python -m pytest tests/alignment/test_generation.py`.
"""
from __future__ import annotations

import importlib.util
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


def _cut_at_eos(ids: list[int], eos_ids: set[int]) -> list[int]:
    """The completion up to and including its first EOS (generate pads after it)."""
    for pos, token in enumerate(ids):
        if token in eos_ids:
            return ids[: pos + 1]
    return ids


def _hf_batch(model, tokenizer, batch: list[list[int]], k: int, max_new_tokens: int, temperature: float,
              top_p: float, eos_ids: set[int]) -> list[list[list[int]]]:
    """Completion ids [prompt][sample] of one left-padded batch."""
    input_ids, mask = _left_pad(batch, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    greedy = temperature <= 0
    kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=sorted(eos_ids), do_sample=not greedy)
    if not greedy:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=k)
    out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs)
    completions = out[:, input_ids.size(1):].tolist()
    per_prompt = 1 if greedy else k
    grouped = [completions[i * per_prompt:(i + 1) * per_prompt] for i in range(len(batch))]
    return [[_cut_at_eos(ids, eos_ids) for ids in group] * (k if greedy else 1) for group in grouped]


def _hf_generate(model, tokenizer, encoded, k, max_new_tokens, temperature, top_p, batch_size, seed):
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    per_batch = max(1, batch_size // k)  # batch_size counts sequences: prompts x K
    eos_ids = {tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))}
    eos_ids.discard(None)
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
                batch = _hf_batch(model, tokenizer, [encoded[i] for i in chunk], k, max_new_tokens,
                                  temperature, top_p, eos_ids)
                for i, samples in zip(chunk, batch):
                    results[i] = samples
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
    ids = _hf_generate(model, tokenizer, encoded, k, max_new_tokens, temperature, top_p, batch_size, seed)
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
