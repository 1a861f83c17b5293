"""Benchmark: one training step of our multi-head RM trainer vs TRL's plain RewardTrainer.

What it does: builds one Qwen3 backbone config and one batch of preference pairs, then times a full training
step (forward of chosen+rejected concatenated, backward, AdamW step) of
  - `MultiHeadRewardTrainer` + `MultiHeadRewardModel` (reward head + 4 grading heads, soft labels, lambda > 0),
  - TRL `RewardTrainer` + `AutoModelForSequenceClassification(num_labels=1)` on the same backbone config,
in `--repeats` interleaved pairs after `--warmup` steps of each (`benchmarks/paired_ratio.py`), and reports the
median step-time ratio ours / TRL with its bootstrap 95% interval (target <= 1.15).

What it simplifies: a character-level tokenizer built here (no hub access) and random digit strings as
responses; the same batch is reused for every step. CPU runs use one thread (shared machines).

Run: `python benchmarks/rm_step_vs_trl.py --json benchmarks/results/rm_step.json`
     (`--hidden 256 --layers 4 --seq-len 256` for a larger model; `--device cuda` on a GPU).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

from benchmarks.paired_ratio import paired_ratio  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForSequenceClassification, Qwen3Config  # noqa: E402
from trl import RewardTrainer  # noqa: E402

from reward_model.model import MultiHeadRewardConfig, MultiHeadRewardModel  # noqa: E402
from reward_model.trainer import MultiHeadRewardTrainer, reward_config  # noqa: E402

SPECIALS = ["<|pad|>", "<|im_end|>", "<|im_start|>", "<|unk|>"]
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def char_tokenizer():
    """A character-level fast tokenizer with a ChatML-like template (stand-in for afm_align.base_model)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + sorted(set(string.printable)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>",
                                   unk_token="<|unk|>", additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def preference_rows(n: int, seq_len: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)

    def digits(k):
        return "".join(str(int(d)) for d in torch.randint(0, 10, (k,), generator=g))

    rows = []
    for i in range(n):
        lengths = torch.randint(seq_len // 2, seq_len, (2,), generator=g).tolist()
        rows.append({
            "prompt": [{"role": "user", "content": digits(16)}],
            "chosen": [{"role": "assistant", "content": digits(lengths[0])}],
            "rejected": [{"role": "assistant", "content": digits(lengths[1])}],
            "level": i % 4,
            "grades_chosen": {"instruction_following": 2, "verbosity": 1, "truthfulness": 2, "harmlessness": 2},
            "grades_rejected": {"instruction_following": 1, "verbosity": 0, "truthfulness": None, "harmlessness": 2},
        })
    return rows


def time_steps(trainer, batch, repeats: int) -> list[float]:
    """Wall time of `repeats` full training steps (forward, backward, optimizer step) on `batch`."""
    model = trainer.model
    times = []
    for _ in range(repeats):
        if batch["input_ids"].is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.training_step(model, dict(batch))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        if batch["input_ids"].is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def build(args, tokenizer):
    backbone = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=3 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
        head_dim=args.hidden // 4, max_position_embeddings=4 * args.seq_len, pad_token_id=tokenizer.pad_token_id,
    )
    ds = Dataset.from_list(preference_rows(args.batch, args.seq_len, seed=0))
    common = dict(per_device_train_batch_size=args.batch, max_length=None, disable_tqdm=True,
                  use_cpu=args.device == "cpu", logging_steps=10**6)
    torch.manual_seed(0)
    ours = MultiHeadRewardTrainer(
        MultiHeadRewardModel(MultiHeadRewardConfig(lm_config=backbone)),
        reward_config("/tmp/rm_bench_ours", **common),
        grading_weight=0.1, train_dataset=ds, processing_class=tokenizer,
    )
    seq_cls_config = copy.deepcopy(backbone)
    seq_cls_config.num_labels = 1
    torch.manual_seed(0)
    trl = RewardTrainer(
        AutoModelForSequenceClassification.from_config(seq_cls_config),
        reward_config("/tmp/rm_bench_trl", **common),
        train_dataset=ds, processing_class=tokenizer,
    )
    return ours, trl


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8, help="preference pairs per step")
    parser.add_argument("--seq-len", type=int, default=128, help="max response length in characters")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved pairs (at least 10)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(1)

    tokenizer = char_tokenizer()
    ours, trl = build(args, tokenizer)
    batches = {}
    for name, trainer in (("ours", ours), ("trl", trl)):
        rows = [trainer.train_dataset[i] for i in range(args.batch)]
        batches[name] = {k: v.to(args.device) for k, v in trainer.data_collator(rows).items()}
        trainer.model.to(args.device).train()
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by train(); we call training_step directly
        time_steps(trainer, batches[name], args.warmup)
    assert torch.equal(batches["ours"]["input_ids"], batches["trl"]["input_ids"]), "batches differ"

    speed = paired_ratio(lambda: time_steps(ours, batches["ours"], 1)[0],
                         lambda: time_steps(trl, batches["trl"], 1)[0],
                         pairs=args.repeats, warmup=0, higher_is_better=False)  # warmed up above
    low, high = speed["ci95"]
    result = {
        "benchmark": "rm_step_vs_trl",
        "device": args.device,
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "tokens_per_step": int(batches["ours"]["attention_mask"].sum()),
        "median_step_s": {"ours": statistics.median(speed["ours"]), "trl": statistics.median(speed["baseline"])},
        "ratio_ours_over_trl": 1 / speed["ratio"],  # step time ours / TRL: <= 1.15 is the bar
        "ci95": [1 / high, 1 / low],
        "speed_vs_trl": speed,
        "target_ratio": 1.15,
    }
    print(f"median step: ours {result['median_step_s']['ours'] * 1e3:.1f} ms, TRL "
          f"{result['median_step_s']['trl'] * 1e3:.1f} ms; step time ours / TRL {result['ratio_ours_over_trl']:.3f} "
          f"[{result['ci95'][0]:.3f}, {result['ci95'][1]:.3f}] over {speed['pairs']} interleaved pairs "
          f"(target <= 1.15; {speed['verdict']})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
