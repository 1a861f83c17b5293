"""MDLOO's fast step (issue 21): pi_old's log-probs for the reward come from sampling, not a second forward pass,
and the reference and training passes score only the completion positions, each distinct prompt once.

Pins: the gate (`old_logps_source`) and the two pure pieces on hand-worked numbers; the recorded log-probs equal a
forward pass (atol 1e-4, float32, tiny model); our passes give TRL's per-token log-probs, entropies and gradients
(atol 1e-5; policy and reference, with and without grad, tempered, chunked, LoRA on and off) while running each
repeated prompt once; the fast step runs no policy forward pass after sampling (and none at all at beta = 0), and
one MDLOO outer iteration gives the same losses, KL and parameters as TRL's slow path (TRL's pi_old pass and
TRL's fused head everywhere).
"""
import contextlib
import functools
import math

import pytest
import torch
from transformers import DynamicCache, GenerationConfig
from trl import RLOOTrainer

from alignment import mdloo, mdloo_trainer, recipes


def length_reward(prompts, completions, **columns):
    """A dense toy reward (every group of K has spread): the completion's length in characters / 10."""
    return [len(c[-1]["content"] if isinstance(c, list) else c) / 10 for c in completions]


def make_trainer(base_dir, prompt_dir, out, *, old_logps_from="auto", peft_config=None, **overrides):
    from afm_align.base_model import load_base

    settings = {"steps": 1, "k": 4, "prompts_per_step": 2, "max_new_tokens": 8, "learning_rate": 0.01, "beta": 0.05,
                **overrides}
    cfg = recipes.load("mdloo", preset="tiny", overrides=[f"from_checkpoint={base_dir}", f"data={prompt_dir}",
                                                          f"out={out}", *(f"{k}={v}" for k, v in settings.items())])
    args = mdloo.rloo_args(cfg, out / "trainer", [1.0])
    args.generation_kwargs = {"min_new_tokens": 2}  # a logits processor: the recorded logits must be the raw ones
    model, tok = load_base(base_dir)
    # move the policy off the reference (TRL reloads that from base_dir), so the reward's KL term is not zero
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * param.std().nan_to_num() * torch.randn(param.shape, generator=generator))
    return mdloo.MDLOOTrainer(model=model, reward_funcs=[length_reward], args=args, processing_class=tok,
                              train_dataset=mdloo.prompt_dataset(prompt_dir), old_logps_from=old_logps_from,
                              peft_config=peft_config)


def policy_passes(monkeypatch, trainer):
    """Count the no-grad log-prob passes that run a model, by model: {"policy": n, "reference": n}.

    Both ways a pass can run are counted: our trimmed head (`completion_logps`) and TRL's fused one.
    """
    counts = {"policy": 0, "reference": 0}
    trl_pass, ours = RLOOTrainer._get_per_token_logps_and_entropies, mdloo_trainer.completion_logps

    def count(model):
        if not torch.is_grad_enabled():
            counts["policy" if model is trainer.model else "reference"] += 1

    def counting_trl(self, model, *args, **kwargs):
        count(model)
        return trl_pass(self, model, *args, **kwargs)

    def counting_ours(model, *args, **kwargs):
        count(model)
        return ours(model, *args, **kwargs)

    monkeypatch.setattr(RLOOTrainer, "_get_per_token_logps_and_entropies", counting_trl)
    monkeypatch.setattr(mdloo_trainer, "completion_logps", counting_ours)
    return counts


def padded_batch(vocab_size: int, seed: int = 0):
    """Prompt + completion ids [6, 7 + 9] as TRL lays them out: prompts left-padded, completions cut after EOS and
    right-padded (one empty), with every padding pattern the passes must score as 0. Rows 3 and 4 repeat the prompts
    of rows 0 and 1 (a prompt sampled K times); 2 and 5 are the only samples of theirs."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (6, 16), generator=generator)
    prompt_lengths, completion_lengths = [7, 5, 3, 7, 5, 2], [9, 4, 1, 0, 9, 6]
    mask = torch.zeros_like(ids)
    for row, (p, c) in enumerate(zip(prompt_lengths, completion_lengths)):
        mask[row, 7 - p:7 + c] = 1
    ids[3:5, :7] = ids[0:2, :7]
    return ids, mask, 9


# ---------------------------------------------------------------- pure pieces
def test_old_logps_source_gate():
    plain = GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0)
    assert mdloo_trainer.old_logps_source(0.05, 1.0, plain) == "generation"
    assert mdloo_trainer.old_logps_source(0.0, 1.0, plain) == "skip"
    assert mdloo_trainer.old_logps_source(0.0, 0.7, plain) == "skip"  # nothing reads them at beta = 0
    for tempered in ({"temperature": 0.7}, {"top_p": 0.9}, {"top_k": 50}, {"min_p": 0.1},
                     {"repetition_penalty": 1.1}):
        config = GenerationConfig(**{**plain.to_diff_dict(), **tempered})
        assert mdloo_trainer.old_logps_source(0.05, 1.0, config) == "forward", tempered
    assert mdloo_trainer.old_logps_source(0.05, 0.7, plain) == "forward"  # the fused head's own temperature
    assert mdloo_trainer.old_logps_source(0.05, 1.0, plain, use_vllm=True) == "forward"
    assert mdloo_trainer.old_logps_source(0.0, 1.0, plain, continuous_batching=True) == "forward"


def test_sampled_token_logps_and_alignment_by_hand():
    # two steps over a vocabulary of 3; prompt token 9, then tokens 2 and 0 sampled
    logits = (torch.tensor([[0.0, 0.0, math.log(2.0)]]), torch.tensor([[math.log(3.0), 0.0, 0.0]]))
    sequences = torch.tensor([[9, 2, 0]])
    logps = mdloo_trainer.sampled_token_logps(logits, sequences)
    torch.testing.assert_close(logps, torch.tensor([[math.log(2 / 4), math.log(3 / 5)]]))
    # temperature 2: softmax(logits / 2) -> step 1: [1, 1, sqrt 2] / (2 + sqrt 2)
    hot = mdloo_trainer.sampled_token_logps(logits, sequences, temperature=2.0)
    assert hot[0, 0].item() == pytest.approx(math.log(math.sqrt(2) / (2 + math.sqrt(2))), abs=1e-6)
    # TRL's layout: completions cut after EOS and right-padded; masked positions are 0; C may exceed T
    steps = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]])
    aligned = mdloo_trainer.align_to_completions(steps, mask)
    torch.testing.assert_close(aligned, torch.tensor([[-1.0, -2.0, 0.0, 0.0], [-4.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(mdloo_trainer.align_to_completions(steps, mask[:, :2]), aligned[:, :2])


# ---------------------------------------------------------------- against TRL's forward pass
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_recorded_logps_equal_a_forward_pass(tiny_base_dir, prompt_dir, tmp_path, temperature):
    trainer = make_trainer(tiny_base_dir, prompt_dir, tmp_path, temperature=temperature)
    assert trainer.old_logps_source == ("generation" if temperature == 1.0 else "forward")
    # At 0.7 the gate keeps TRL's pass (issue 21); record anyway to show raw logits / T match it there too.
    mdloo_trainer.install_recording(trainer, "generation")
    answered = []
    ours = trainer._get_per_token_logps_and_entropies

    def spy(model, *args, **kwargs):
        out = ours(model, *args, **kwargs)
        if model is trainer.model and not torch.is_grad_enabled():
            answered.append(out[0])
        return out

    trainer._get_per_token_logps_and_entropies = spy
    trainer.model.train()
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions([trainer.train_dataset[i] for i in (0, 0, 0, 0, 1, 1, 1, 1)])
    assert len(answered) == 1
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    with torch.no_grad():
        forward, _, _ = RLOOTrainer._get_per_token_logps_and_entropies(trainer, trainer.model, ids, mask,
                                                                       batch["completion_ids"].size(1))
    assert batch["completion_mask"].sum() > 8  # several tokens per completion were compared
    torch.testing.assert_close(answered[0], forward, atol=1e-4, rtol=0)
    torch.testing.assert_close(batch["old_logps"], (forward * batch["completion_mask"]).sum(1), atol=1e-3, rtol=0)


def test_fast_step_runs_no_policy_pass_after_sampling(tiny_base_dir, prompt_dir, tmp_path, monkeypatch):
    rows = [0, 0, 0, 0, 1, 1, 1, 1]
    for beta, source, expected in ((0.05, "generation", {"policy": 0, "reference": 1}),
                                   (0.0, "skip", {"policy": 0, "reference": 0})):
        trainer = make_trainer(tiny_base_dir, prompt_dir, tmp_path / source, beta=beta)
        assert trainer.old_logps_source == source
        counts = policy_passes(monkeypatch, trainer)
        batch = trainer._generate_and_score_completions([trainer.train_dataset[i] for i in rows])
        assert counts == expected, source
        assert torch.isnan(batch["old_logps"]).all() == (source == "skip")  # nothing reads them at beta = 0
    slow = make_trainer(tiny_base_dir, prompt_dir, tmp_path / "slow", old_logps_from="forward")
    counts = policy_passes(monkeypatch, slow)
    slow._generate_and_score_completions([slow.train_dataset[i] for i in rows])
    assert slow.old_logps_source == "forward" and counts == {"policy": 1, "reference": 1}
    with pytest.raises(ValueError, match="old_logps_from"):
        make_trainer(tiny_base_dir, prompt_dir, tmp_path / "bad", old_logps_from="sampler")


# ---------------------------------------------------------------- the trimmed LM head against TRL's
@pytest.mark.parametrize("temperature, batch_size", [(1.0, None), (0.7, 4)])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_completion_logps_equal_trls_pass(tiny_base_dir, prompt_dir, tmp_path, grad, temperature, batch_size):
    trainer = make_trainer(tiny_base_dir, prompt_dir, tmp_path, temperature=temperature)
    ids, mask, keep = padded_batch(trainer.model.config.vocab_size)
    weights = torch.randn(ids.size(0), keep, generator=torch.Generator().manual_seed(1))
    for model in (trainer.model, trainer.ref_model):  # the training passes and the reference pass
        entropy = model is trainer.model  # TRL computes entropies on the policy only (its reference head has none)
        results = []
        for method in (trainer._get_per_token_logps_and_entropies,  # ours, then TRL's own
                       functools.partial(RLOOTrainer._get_per_token_logps_and_entropies, trainer)):
            model.zero_grad()
            with torch.set_grad_enabled(grad):
                logps, entropies, aux = method(model, ids, mask, keep, batch_size, compute_entropy=entropy)
            assert aux is None and logps.shape == (ids.size(0), keep) and (entropies is None) != entropy
            if grad:
                (logps * weights).sum().backward()
            grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
            results.append((logps.detach(), entropies, grads))
        (ours, our_entropy, our_grads), (trl, trl_entropy, trl_grads) = results
        torch.testing.assert_close(ours, trl, atol=1e-5, rtol=0)
        if entropy:
            torch.testing.assert_close(our_entropy, trl_entropy.detach(), atol=1e-5, rtol=0)
        assert (ours[mask[:, -keep:] == 0] == 0).all() and (ours[mask[:, -keep:] == 1] < 0).all()
        assert our_grads.keys() == trl_grads.keys() and (len(our_grads) > 0) == grad
        for name in trl_grads:
            torch.testing.assert_close(our_grads[name], trl_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    # the backbone ran each distinct prompt once, then the completions on its cache (where a chunk repeats one)
    shapes = []
    hook = trainer.model.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    _, no_entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep, batch_size)
    hook.remove()
    assert no_entropy is None
    assert shapes == ([(4, 7), (6, 9)] if batch_size is None else [(3, 7), (4, 9), (2, 16)])


def test_completion_logps_with_lora_and_clear_errors(tiny_base_dir, prompt_dir, tmp_path):
    from alignment.lora import lora_config
    from trl.trainer.utils import use_adapter

    trainer = make_trainer(tiny_base_dir, prompt_dir, tmp_path, peft_config=lora_config(4))
    model = trainer.model
    assert trainer.ref_model is None and mdloo_trainer.direct_lm(model) is model.get_base_model()
    with torch.no_grad():  # LoRA starts as a no-op (B = 0): make the adapters matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    ids, mask, keep = padded_batch(model.config.vocab_size)
    with torch.no_grad():
        for adapters in (True, False):  # the policy, then TRL's reference for a new adapter
            with contextlib.nullcontext() if adapters else use_adapter(model, None):
                ours = trainer._get_per_token_logps_and_entropies(model, ids, mask, keep, compute_entropy=True)
                trl = RLOOTrainer._get_per_token_logps_and_entropies(trainer, model, ids, mask, keep,
                                                                     compute_entropy=True)
            for mine, theirs in zip(ours[:2], trl[:2]):
                torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
            if adapters:
                with_adapters = ours[0]
    assert not torch.allclose(with_adapters, ours[0], atol=1e-3)  # the adapters were on, then off
    with pytest.raises(ValueError, match="text-only"):
        trainer._get_per_token_logps_and_entropies(model, ids, mask, keep, pixel_values=torch.zeros(1, 3, 4, 4))


def test_trimmed_pass_falls_back_where_it_would_not_be_exact(tiny_lm):
    assert mdloo_trainer.direct_lm(tiny_lm) is tiny_lm
    assert isinstance(mdloo_trainer.shared_prompt_cache(tiny_lm.base_model), DynamicCache)
    tiny_lm.config.final_logit_softcapping = 30.0  # TRL's head caps the logits: keep TRL's pass
    assert mdloo_trainer.direct_lm(tiny_lm) is None
    tiny_lm.gradient_checkpointing_enable()  # transformers drops the cache under checkpointing with grad
    tiny_lm.train()
    assert mdloo_trainer.shared_prompt_cache(tiny_lm.base_model) is None
    with torch.no_grad():
        assert mdloo_trainer.shared_prompt_cache(tiny_lm.base_model) is not None


def test_one_mdloo_iteration_fast_equals_slow(tiny_base_dir, prompt_dir, tmp_path, monkeypatch):
    # fast: pi_old recorded while sampling; the reference and training passes on the trimmed head with shared prompts.
    # slow: TRL's pi_old pass, and TRL's fused head for every pass (direct_lm says no).
    runs, trimmed, direct = {}, mdloo_trainer.completion_logps, mdloo_trainer.direct_lm
    for source in ("auto", "forward"):
        trainer = make_trainer(tiny_base_dir, prompt_dir, tmp_path / source, old_logps_from=source)
        passes = []  # grad enabled, per trimmed pass

        def counting(*args, **kwargs):
            passes.append(torch.is_grad_enabled())
            return trimmed(*args, **kwargs)

        monkeypatch.setattr(mdloo_trainer, "completion_logps", counting)
        monkeypatch.setattr(mdloo_trainer, "direct_lm", direct if source == "auto" else lambda model: None)
        trainer.train()  # one outer iteration: sample, score, 2 inner policy steps
        logged = [h for h in trainer.state.log_history if "loss" in h]
        params = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        runs[source] = (trainer.old_logps_source, logged, params, passes)
    (fast_source, fast_log, fast_params, fast_passes) = runs["auto"]
    (slow_source, slow_log, slow_params, slow_passes) = runs["forward"]
    assert (fast_source, slow_source) == ("generation", "forward")
    assert fast_passes == [False, True, True] and slow_passes == []  # reference, then the two training passes
    assert len(fast_log) == len(slow_log) == 2
    assert abs(slow_log[0]["kl"]) > 1e-3  # the reward's KL term is in play
    for fast, slow in zip(fast_log, slow_log):
        for key in ("loss", "reward", "kl", "kl_old", "entropy", "completions/mean_length"):
            if key in slow:
                assert fast[key] == pytest.approx(slow[key], rel=1e-4, abs=1e-6), key
    initial = make_trainer(tiny_base_dir, prompt_dir, tmp_path / "initial").model.state_dict()
    assert any(not torch.equal(initial[k], slow_params[k]) for k in slow_params), "no parameter changed"
    # Adam divides each gradient element by its own size: a float-rounding difference in a near-zero element (about
    # 5e-10 on 2e-7, from summing the head's gradient in another order) moves a parameter by up to ~2e-6, while one
    # step moves every parameter by about lr = 1e-2; hence atol 1e-5 on the parameters.
    for name in slow_params:
        torch.testing.assert_close(fast_params[name], slow_params[name], atol=1e-5, rtol=1e-5, msg=name)
