"""Fixtures for the reward-model tests: a tiny Qwen3 backbone config, a char-level tokenizer, tiny datasets.

Self-contained on purpose (no afm_align.base_model dependency): a character-level `PreTrainedTokenizerFast`
with ChatML-like special tokens and a small Jinja chat template, and a Qwen3 config of hidden size 32.
"""
import string

import pytest
import torch

SPECIALS = ["<|pad|>", "<|im_end|>", "<|im_start|>", "<|unk|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_char_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>", unk_token="<|unk|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 256
    return fast


def tiny_qwen3_config(vocab_size: int):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
        tie_word_embeddings=True,
    )


def sum_rows(n: int, seed: int = 0, with_grades: bool = True) -> list[dict]:
    """Preference rows where `chosen` is the correct sum and `rejected` a wrong one."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        a, b = (int(x) for x in torch.randint(0, 50, (2,), generator=g))
        wrong = a + b + int(torch.randint(1, 9, (1,), generator=g))
        grades_c = {"instruction_following": 2, "verbosity": 2, "truthfulness": 2, "harmlessness": 2}
        grades_r = {"instruction_following": 2, "verbosity": 1, "truthfulness": 0, "harmlessness": None}
        rows.append({
            "prompt": [{"role": "user", "content": f"{a}+{b}="}],
            "chosen": [{"role": "assistant", "content": str(a + b)}],
            "rejected": [{"role": "assistant", "content": str(wrong)}],
            "level": i % 4,
            "grades_chosen": grades_c if with_grades else None,
            "grades_rejected": grades_r if with_grades else None,
        })
    return rows


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the test machine's two cores are shared


@pytest.fixture(scope="session")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def backbone_config(tokenizer):
    return tiny_qwen3_config(len(tokenizer))


@pytest.fixture
def rm(backbone_config):
    from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel

    torch.manual_seed(0)
    return MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone_config)).eval()


@pytest.fixture
def make_rows():
    """`make_rows(n, seed=0, with_grades=True)` -> list of preference rows (chosen = correct sum)."""
    return sum_rows
