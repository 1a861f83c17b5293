"""The RM's exact-match channel (`copy_ngram`): which answer tokens the prompt holds, and an RM that learns from it."""
import random

import pytest
import torch

from afm_align.errors import UserError
from reward_model.copy_features import COPIED, NOT_COPIED, PROMPT, answer_starts, assistant_header, copy_flags
from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel

P, C, N = PROMPT, COPIED, NOT_COPIED


def test_answer_tokens_inside_a_run_the_prompt_holds_are_copied():
    # prompt 5 6 7 8 9 | answer 6 7 8 4 4 8 9 | padding
    ids = torch.tensor([[5, 6, 7, 8, 9, 6, 7, 8, 4, 4, 8, 9, 0, 0]])
    mask = torch.tensor([[1] * 12 + [0] * 2])
    start = torch.tensor([5])
    assert copy_flags(ids, mask, start, 3).tolist() == [[P] * 5 + [C, C, C, N, N, N, N] + [P] * 2]
    assert copy_flags(ids, mask, start, 2).tolist() == [[P] * 5 + [C, C, C, N, N, C, C] + [P] * 2]
    assert copy_flags(ids, mask, start, 4).tolist() == [[P] * 5 + [N] * 7 + [P] * 2]  # no 4-run of the prompt
    assert copy_flags(ids, mask, start, 1).tolist() == [[P] * 5 + [C, C, C, N, N, C, C] + [P] * 2]


def test_a_run_must_lie_inside_the_prompt_and_inside_the_answer():
    # the run 8 9 6 straddles the prompt/answer border: it is not a prompt run, so the answer's 8 9 6 is not copied
    ids = torch.tensor([[5, 8, 9, 6, 8, 9, 6]])
    assert copy_flags(ids, torch.ones_like(ids), torch.tensor([3]), 3).tolist() == [[P, P, P, N, N, N, N]]
    assert copy_flags(ids, torch.ones_like(ids), torch.tensor([3]), 2).tolist() == [[P, P, P, N, C, C, N]]
    # an answer repeating itself is not a copy of the prompt
    ids = torch.tensor([[5, 5, 1, 2, 3, 1, 2, 3]])
    assert copy_flags(ids, torch.ones_like(ids), torch.tensor([2]), 3).tolist() == [[P, P] + [N] * 6]


def test_the_answer_starts_after_the_last_turn_start_and_its_header():
    turn = 2
    ids = torch.tensor([[turn, 9, 9, turn, 7, 5, 5, 0], [9, 9, 9, 9, 9, 9, 9, 9], [0, 0, turn, 9, turn, 7, 5, 5]])
    mask = torch.tensor([[1] * 7 + [0], [1] * 8, [0, 0] + [1] * 6])
    assert answer_starts(ids, mask, turn, header_len=2).tolist() == [5, 8, 6]  # no turn start: no answer
    padded_turn = torch.tensor([[turn, 9, 5, turn]])  # a turn-start id on a padding position does not count
    assert answer_starts(padded_turn, torch.tensor([[1, 1, 1, 0]]), turn, 1).tolist() == [1]
    # left padding longer than the answer: the start stays after the header; no turn start: no answer at all
    left = torch.tensor([[0, 0, 0, 0, 0, 9, turn, 7, 5], [0, 0, 0, 0, 0, 9, 9, 9, 9]])
    left_mask = torch.tensor([[0] * 5 + [1] * 4, [0] * 5 + [1] * 4])
    starts = answer_starts(left, left_mask, turn, header_len=2)
    assert starts.tolist() == [8, 9]
    assert copy_flags(left, left_mask, starts, 1).tolist() == [[P] * 8 + [N], [P] * 9]


def test_a_run_longer_than_the_rows_flags_every_answer_token_not_copied():
    ids = torch.tensor([[5, 6, 5, 6]])
    assert copy_flags(ids, torch.ones_like(ids), torch.tensor([2]), 6).tolist() == [[P, P, N, N]]


def test_the_assistant_header_is_read_from_the_chat_template(tokenizer):
    turn_start_id, header_len = assistant_header(tokenizer)
    assert turn_start_id == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert header_len == 1 + len("assistant\n")  # char-level: the turn token and one token a character
    plain = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, pad_token="<|pad|>")
    with pytest.raises(UserError, match="copy_ngram needs a tokenizer with a chat template"):
        assistant_header(plain)


def _copy_rm(backbone_config, tokenizer, n=3):
    turn_start_id, header_len = assistant_header(tokenizer)
    torch.manual_seed(0)
    return MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config, copy_ngram=n,
                                                      turn_start_id=turn_start_id, answer_header_len=header_len))


def _name(rng):
    return "".join(rng.choice("BCDFGKLMNPRSTVZ") + rng.choice("aeiou") for _ in range(3))


def _pair_ids(tokenizer, rng):
    """(chosen ids, rejected ids): an answer greeting the prompt's name against one greeting a name it lacks."""
    name, other = _name(rng), _name(rng)
    prompt = [{"role": "user", "content": f"Write to {name}."}]
    encode = lambda who: tokenizer.apply_chat_template(  # noqa: E731
        prompt + [{"role": "assistant", "content": f"Hi {who}!"}], tokenize=True, return_dict=True)["input_ids"]
    return encode(name), encode(other)


def _batch(seqs):
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    return ids, mask


def test_an_untrained_channel_changes_nothing(backbone_config, tokenizer):
    plain = MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config)).eval()
    copy = _copy_rm(backbone_config, tokenizer).eval()
    copy.load_state_dict(plain.state_dict(), strict=False)  # same backbone and heads; match tables stay zero
    ids, mask = _batch(list(_pair_ids(tokenizer, random.Random(0))))
    assert torch.allclose(plain(input_ids=ids, attention_mask=mask).rewards,
                          copy(input_ids=ids, attention_mask=mask).rewards, atol=1e-6)


def test_an_rm_with_the_channel_learns_to_prefer_the_prompts_name_on_fresh_names(backbone_config, tokenizer,
                                                                                  tmp_path):
    rm = _copy_rm(backbone_config, tokenizer)
    rng = random.Random(0)
    optim = torch.optim.AdamW(rm.parameters(), lr=1e-2)
    for _ in range(60):
        pairs = [_pair_ids(tokenizer, rng) for _ in range(16)]
        ids, mask = _batch([c for c, _ in pairs] + [r for _, r in pairs])
        rewards = rm(input_ids=ids, attention_mask=mask).rewards
        loss = -torch.nn.functional.logsigmoid(rewards[:16] - rewards[16:]).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert rm.match_out.weight.abs().sum() > 0 and rm.match_in.weight.abs().sum() > 0
    rm.eval()
    fresh = random.Random(123)
    pairs = [_pair_ids(tokenizer, fresh) for _ in range(64)]
    ids, mask = _batch([c for c, _ in pairs] + [r for _, r in pairs])
    with torch.no_grad():
        rewards = rm(input_ids=ids, attention_mask=mask).rewards
    assert (rewards[:64] > rewards[64:]).float().mean() >= 0.9
    rm.save_pretrained(tmp_path)  # the channel and its settings survive a reload
    loaded = MultiHeadRewardModel.from_pretrained(tmp_path).eval()
    assert loaded.config.copy_ngram == 3 and loaded.config.answer_header_len == rm.config.answer_header_len
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids, attention_mask=mask).rewards, rewards, atol=1e-5)


def test_the_channel_needs_token_ids(backbone_config, tokenizer):
    rm = _copy_rm(backbone_config, tokenizer)
    with pytest.raises(ValueError, match="pass input_ids, not inputs_embeds"):
        rm(inputs_embeds=torch.zeros(1, 4, backbone_config.hidden_size))


def test_bad_copy_settings_are_one_line_errors(backbone_config, tokenizer, tmp_path):
    from reward_model.recipe import copy_settings, load_init

    with pytest.raises(UserError, match="copy_ngram=-1"):
        copy_settings(tokenizer, -1)
    with pytest.raises(UserError, match="turn-start token"):
        MultiHeadRewardConfig(lm_config=backbone_config, copy_ngram=3)
    assert copy_settings(tokenizer, 0) == {}
    MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="trained with copy_ngram=0, this config asks for 4"):
        load_init(str(tmp_path), 4)
