"""The one sampling path: K samples per prompt in prompt order, seeded, left padding that does not change
the answer, greedy tokens equal to transformers' `generate` (batched and one by one) while finished rows leave
the batch, temperature / top-p drawn from the distribution worked by hand, stop at EOS, token counts, bad
arguments rejected."""
import pytest
import torch

from afm_align.errors import UserError
from afm_align.generation import _sample_ids, _sampler, cut_at_eos, generate, render, resolve_backend, sample

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


MIXED = PROMPTS + [
    [{"role": "user", "content": "tool call please"}],
    [{"role": "user", "content": "3 + 4 = 7 and 5 + 6 = 11, what is 8 + 9?"}],
    [{"role": "user", "content": "Sure"}],
    [{"role": "user", "content": "I cannot help with that. Paris weather"}],
]


def eos_bias(model, eos_id: int, bias: float):
    """A forward hook raising the EOS logit, so greedy answers of the sharp tiny LM end at varied lengths."""
    def hook(module, inputs, output):
        output[..., eos_id] += bias
        return output
    return model.get_output_embeddings().register_forward_hook(hook)


def hf_greedy(model, tokenizer, encoded, max_new_tokens):
    """transformers' greedy `generate` over one left-padded batch, cut after EOS."""
    tokenizer.padding_side = "left"
    batch = tokenizer.pad({"input_ids": encoded}, return_tensors="pt")
    out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return [cut_at_eos(row, {tokenizer.eos_token_id}) for row in out[:, batch["input_ids"].size(1):].tolist()]


def test_greedy_tokens_equal_hf_generate_while_finished_rows_leave(sharp_lm, tiny_tokenizer):
    eos_bias(sharp_lm, tiny_tokenizer.eos_token_id, 10.0)
    encoded = render(tiny_tokenizer, MIXED)
    ours = _sample_ids(sharp_lm, tiny_tokenizer, encoded, 2, 12, 0.0, 1.0, 3, 0)  # batches of 3, K=2
    with torch.no_grad():
        batched = hf_greedy(sharp_lm, tiny_tokenizer, encoded, 12)
        one_by_one = [hf_greedy(sharp_lm, tiny_tokenizer, [ids], 12)[0] for ids in encoded]
    assert [samples[0] for samples in ours] == batched == one_by_one
    assert all(samples[0] == samples[1] for samples in ours)
    lengths = {len(ids) for ids in batched}
    assert len(lengths) >= 3 and max(lengths) == 12  # rows finished at different steps, some ran to the cap
    assert sum(ids[-1] == tiny_tokenizer.eos_token_id for ids in batched) >= 3


def test_sampling_draws_from_the_temperature_top_p_distribution():
    # logits [2, 1, 0, -1] at temperature 0.5 -> [4, 2, 0, -2]; softmax = [0.8650, 0.1171, 0.0158, 0.0021];
    # top-p 0.9 drops the tokens whose ascending cumulative probability stays <= 0.1 (tokens 2 and 3),
    # leaving [0.8650, 0.1171] / 0.9821 = [0.8808, 0.1192]
    pick = _sampler(0.5, 0.9)
    torch.manual_seed(0)
    draws = pick(torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1))
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    assert torch.allclose(freq, torch.tensor([0.8808, 0.1192, 0.0, 0.0]), atol=0.01)
    # temperature 1, no top-p: the plain softmax, tokens of probability 0 never drawn
    logits = torch.tensor([[0.0, float("-inf"), 1.0, 2.0]]).repeat(20000, 1)
    freq = torch.bincount(_sampler(1.0, 1.0)(logits), minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.0900, 0.0, 0.2447, 0.6652]), atol=0.01)
    assert _sampler(0.0, 1.0)(torch.tensor([[0.1, 3.0, -1.0]])).tolist() == [1]


def test_same_seed_same_samples_with_finished_rows_leaving_and_caller_rng_untouched(tiny_lm, tiny_tokenizer):
    eos_bias(tiny_lm, tiny_tokenizer.eos_token_id, 4.0)  # about one answer token in 5 is EOS
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = sample(tiny_lm, tiny_tokenizer, MIXED, k=3, max_new_tokens=16, seed=7, batch_size=6)
    assert torch.equal(torch.rand(3), expected)  # the caller's RNG stream went on as if nothing ran
    again = sample(tiny_lm, tiny_tokenizer, MIXED, k=3, max_new_tokens=16, seed=7, batch_size=6)
    assert again.texts == first.texts and again.completion_tokens == first.completion_tokens
    assert first.completion_tokens < len(MIXED) * 3 * 16  # some rows stopped early


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


def testcut_at_eos():
    assert cut_at_eos([5, 6, 3, 0, 0], {3}) == [5, 6, 3]
    assert cut_at_eos([5, 6], {3}) == [5, 6]


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
