"""The one sampling path: K samples per prompt in prompt order, seeded, left padding that does not change
the answer, stop at EOS, token counts, bad arguments rejected."""
import pytest
import torch

from afm_align.errors import UserError
from afm_align.generation import _cut_at_eos, generate, render, resolve_backend, sample

PROMPTS = [
    [{"role": "user", "content": "1 + 2 = "}],
    [{"role": "user", "content": "What is the answer? 12 + 13 and some more words here"}],
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "def add(a, b)"}, {"role": "user", "content": "tool call"}],
]


@pytest.fixture
def sharp_lm(tiny_lm):
    """The tiny LM with scaled-up weights, so its greedy answer depends on the prompt."""
    with torch.no_grad():
        for p in tiny_lm.parameters():
            p.mul_(8)
    return tiny_lm


def test_k_samples_per_prompt_in_order_and_seeded(sharp_lm, tiny_tokenizer):
    out = sample(sharp_lm, tiny_tokenizer, PROMPTS, k=3, max_new_tokens=6, seed=1, batch_size=4)
    assert len(out.texts) == len(PROMPTS) and all(len(t) == 3 for t in out.texts)
    assert out.prompt_tokens == sum(len(ids) for ids in render(tiny_tokenizer, PROMPTS))
    assert 0 < out.completion_tokens <= len(PROMPTS) * 3 * 6
    assert out.samples_per_second > 0
    again = generate(sharp_lm, tiny_tokenizer, PROMPTS, k=3, max_new_tokens=6, seed=1, batch_size=4)
    assert again == out.texts
    other = generate(sharp_lm, tiny_tokenizer, PROMPTS, k=3, max_new_tokens=6, seed=2, batch_size=4)
    assert other != out.texts
    assert len({t for texts in out.texts for t in texts}) > 1  # samples differ


def test_batched_left_padded_greedy_equals_one_by_one(sharp_lm, tiny_tokenizer):
    single = [generate(sharp_lm, tiny_tokenizer, [p], temperature=0, max_new_tokens=8)[0] for p in PROMPTS]
    batched = generate(sharp_lm, tiny_tokenizer, PROMPTS, temperature=0, max_new_tokens=8, batch_size=8)
    assert batched == single
    assert len({t[0] for t in single}) == len(PROMPTS)  # answers depend on the prompt: order is checked
    twice = generate(sharp_lm, tiny_tokenizer, PROMPTS, k=2, temperature=0, max_new_tokens=8)
    assert all(t == [s[0], s[0]] for t, s in zip(twice, single))


def test_stops_at_eos(tiny_lm, tiny_tokenizer):
    # teach the tiny LM to close every assistant turn at once, then sample: every completion is empty
    ids = [torch.tensor(x) for x in render(tiny_tokenizer, PROMPTS)]
    opt = torch.optim.Adam(tiny_lm.parameters(), lr=3e-2)
    for _ in range(40):
        for x in ids:
            logits = tiny_lm(input_ids=x[None]).logits[0, -1]
            loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([tiny_tokenizer.eos_token_id]))
            loss.backward()
        opt.step()
        opt.zero_grad()
    out = sample(tiny_lm, tiny_tokenizer, PROMPTS, k=2, max_new_tokens=10, temperature=0.7)
    assert out.texts == [["", ""]] * len(PROMPTS)
    assert out.completion_tokens == 2 * len(PROMPTS)  # exactly the EOS token each


def test_cut_at_eos():
    assert _cut_at_eos([5, 6, 3, 0, 0], {3}) == [5, 6, 3]
    assert _cut_at_eos([5, 6], {3}) == [5, 6]


def test_bad_arguments(tiny_lm, tiny_tokenizer):
    with pytest.raises(ValueError, match="at least 1"):
        generate(tiny_lm, tiny_tokenizer, PROMPTS, k=0)
    with pytest.raises(ValueError, match="top_p"):
        generate(tiny_lm, tiny_tokenizer, PROMPTS, top_p=0)
    with pytest.raises(ValueError, match="unknown generation backend"):
        resolve_backend("tgi")


def test_auto_picks_hf_without_vllm_and_a_gpu_and_vllm_asked_without_it_is_a_user_error(monkeypatch):
    import afm_align.generation as g

    monkeypatch.setattr(g, "vllm_available", lambda: False)
    assert resolve_backend("auto") == "hf" and resolve_backend("hf") == "hf"
    with pytest.raises(UserError, match="needs the vllm package and a CUDA GPU"):
        resolve_backend("vllm")
    monkeypatch.setattr(g, "vllm_available", lambda: True)
    assert resolve_backend("auto") == "vllm"
