"""Shared test setup: quiet progress bars, offline Hugging Face, one torch thread, runs under tmp."""
import os

os.environ.setdefault("AFM_ALIGN_QUIET", "1")
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
