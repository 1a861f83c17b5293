"""Shared test setup: quiet progress bars, offline Hugging Face, one torch thread, runs under tmp."""
import os

os.environ.setdefault("AFM_ALIGN_QUIET", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    """Every test writes its runs under its own temporary directory."""
    monkeypatch.setenv("AFM_ALIGN_RUNS", str(tmp_path / "runs"))
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


TINY_TEXTS = [f"{a} + {b} = {a + b}" for a in range(30) for b in range(30)] + [
    "What is the answer? Answer: The total is 12. Sure, here is a tool call. I cannot help with that.",
    "def add(a, b):\n    return a + b\n```python\n```",
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The project's digit-splitting BPE tokenizer (with chat template), trained on a few lines."""
    from afm_align.base_model import train_tokenizer

    return train_tokenizer(TINY_TEXTS, vocab_size=320)


@pytest.fixture
def tiny_lm(tiny_tokenizer):
    """A fresh, randomly initialised tiny AFM-architecture causal LM (about 40k parameters)."""
    from afm_align.base_model import ModelShape, build_model

    shape = ModelShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                       max_positions=256)
    return build_model(tiny_tokenizer, shape, seed=0)


@pytest.fixture
def tiny_base_dir(tiny_lm, tiny_tokenizer, tmp_path):
    """The tiny LM and tokenizer saved with save_pretrained, as a base/ checkpoint directory."""
    path = tmp_path / "tiny_base"
    tiny_lm.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path
