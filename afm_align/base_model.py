"""The tiny AFM-architecture base model and its tokenizer, built in-process (no hub download).

What it does:
- `train_tokenizer(texts, vocab_size)` trains a byte-level BPE whose pre-tokenizer splits every digit
  on its own (AFM's tokenizer does this so that arithmetic sees one token per digit), with ChatML-style
  special tokens and a chat template that knows the system, user, assistant and tool roles.
  `isolate_spaces=True` also makes every whitespace character a token of its own, so a word has the same
  tokens wherever it stands: `Paris` after a space in a question and after a quote in a tool call's
  arguments are then one token sequence, and copying it is a plain look-up (with the default, ` P`+`aris`
  in the question becomes `P`+`aris` in the call, a mapping a tiny model must learn token by token; 36% of
  the tiny corpus's copied tool arguments change tokens so). It costs tokens: +33% on the tiny default's
  chat corpus. Not the default: on the tiny preset (seed 0, dev) it cost the base its arithmetic (held-out
  probes 9% against 95%) and r0-sft its math (dev 0.01 against 0.54), and tool stayed at 0.
- `build_model(tokenizer, ModelShape)` builds a transformers `Qwen3ForCausalLM`, which has the AFM
  architecture choices: pre-norm RMSNorm, query/key RMSNorm, grouped-query attention, SwiGLU MLP, RoPE
  (base 500000 here, as AFM) and tied input/output embeddings.
- `load_base(path)` loads any local Hugging Face causal-LM directory (ours or `--base PATH`) and raises
  a one-line `ValueError` when the directory is missing or holds no causal LM. It never downloads.

What it simplifies: AFM's tokenizer has a 49k (device) / 100k (server) vocabulary; ours has a few
hundred to a few thousand tokens, enough for the synthetic corpus.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from afm_align.errors import UserError

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PAD, EOS, IM_START, IM_END = SPECIAL_TOKENS
ROLES = ("system", "user", "assistant", "tool")

# ChatML with the four roles. The assistant body sits in {% generation %} so TRL can mask the loss
# to assistant tokens; an assistant turn ends with <|im_end|>, which is also the EOS for generation.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('unknown chat role: ' + message['role']) }}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass
class ModelShape:
    """The size of the tiny base model; every field maps onto a `Qwen3Config` field (the vocabulary
    size comes from the tokenizer)."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2  # grouped-query attention: fewer KV heads than query heads
    intermediate_size: int = 384  # SwiGLU width
    max_positions: int = 512
    rope_theta: float = 500000.0  # AFM's RoPE base
    dropout: float = 0.0


def train_tokenizer(texts, vocab_size: int = 1024, isolate_spaces: bool = False):
    """Train the digit-splitting byte-level BPE on `texts` and wrap it as a fast HF tokenizer.

    `isolate_spaces`: every whitespace character is a pre-token of its own (see the module docstring).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    split = [pre_tokenizers.Split(Regex(r"\s"), behavior="isolated")] if isolate_spaces else []
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), *split, pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=IM_END, bos_token=None, unk_token=None,
        additional_special_tokens=[EOS, IM_START],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"  # generation pads on the left; trainers set what they need
    fast.model_max_length = 512
    return fast


def build_model(tokenizer, shape: ModelShape, seed: int = 0):
    """A randomly initialised Qwen3 causal LM of the AFM architecture, sized by `shape`."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if shape.hidden_size % shape.num_heads or shape.num_heads % shape.num_kv_heads:
        raise UserError("model shape: hidden_size must divide by num_heads and num_heads by num_kv_heads")
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.hidden_size // shape.num_heads,
        max_position_embeddings=shape.max_positions,
        rope_theta=shape.rope_theta,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        tie_word_embeddings=True,
        attention_dropout=shape.dropout,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def describe_architecture(config) -> dict:
    """The AFM architecture facts of a loaded config, for reports and tests."""
    rope = getattr(config, "rope_parameters", None) or {}
    return {
        "model_type": config.model_type,
        "tied_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "rope_theta": float(rope.get("rope_theta", getattr(config, "rope_theta", 0.0)) or 0.0),
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": getattr(config, "num_key_value_heads", config.num_attention_heads),
        "num_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
    }


def check_base_dir(path: str | Path) -> Path:
    """Fail with one clear line unless `path` is a local directory holding a causal-LM config."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"--base {path}: no such directory (afm-align never downloads models)")
    if not (path / "config.json").is_file():
        raise UserError(f"--base {path}: not a Hugging Face model directory (no config.json)")
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as err:  # noqa: BLE001 - any parse failure is the user's bad directory
        raise UserError(f"--base {path}: unreadable config.json ({type(err).__name__})") from None
    if type(config) not in AutoModelForCausalLM._model_mapping:
        raise UserError(f"--base {path}: model type '{config.model_type}' is not a causal LM")
    return path


def load_base(path: str | Path, dtype=None):
    """Load (model, tokenizer) from a local causal-LM directory, never touching the network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = check_base_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: cannot load a model and tokenizer from it ({first})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
