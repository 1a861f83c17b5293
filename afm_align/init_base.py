"""Recipe: `afm-align init` - tokenizer, tiny AFM base model, CPU pre-training, held-out probes.

Reads top to bottom: build the corpus -> train the digit-splitting BPE tokenizer -> build the Qwen3
(AFM-architecture) model -> pre-train on packed sequences with AdamW, or (`optimizer: muon`, the tiny preset's)
Muon on the layers' matrices beside it (`afm_align.pretrain_optimizer`), and a warmup/cosine schedule ->
report held-out LM loss, greedy exact-match on held-out two-operand arithmetic probes and the in-context copy
score (`afm_align.context_copy.copy_score`) -> save with
`save_pretrained` (plus `meta.json`, `metrics.jsonl`, the resolved config) atomically into
`runs/<run>/base/`.

Threads: `threads: N` pre-trains with N torch threads; `threads: 0` (the default) with the cores free when
pre-training starts (`afm_align.member_io.free_cores`: on a 2-core machine with one core busy, a step at 2
threads took 0.80 s against 0.28 s at 1; benchmarks/threads_under_load.py). The count used is printed and
recorded in `meta.json` and the saved `config.yaml`, so the base can be made again exactly (the thread count
changes the floating-point sums). `afm-align init` also runs with `OMP_WAIT_POLICY=PASSIVE` unless the
environment sets it (`afm_align.cli`): load that appears later then costs far less (another torch job on
the machine: 0.34 s a step at 2 threads instead of 0.63 s with stalls up to 7 s). The round runner passes
its fixed `init_threads`. A killed init's staging folder (`.base.tmp-<pid>-*`) is removed when init starts
again.

The corpus is an arithmetic drill (`a + b = c`, `a - b = c`, `a * b = c`; the probe problems are
excluded, so the probes are held out) plus the chat-formatted synthetic families that `synth` provides
(math word problems, tool calls, code, instruction following), rendered with the tokenizer's chat
template. The drill's loss counts answer tokens only (the operands are random, so predicting them is
noise); the chat text counts every token.

`--base PATH` skips all of that: the run records a pointer to a local Hugging Face causal-LM directory
after checking that it loads. Nothing is ever downloaded.

Run: `afm-align init --preset tiny [--run NAME] [key=value ...]`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from afm_align.base_model import ModelShape
from afm_align.config import load_config, save_resolved
from afm_align.errors import UserError
from afm_align.rundir import RunDir
from afm_align.member_io import available_cores, remove_stale_staging, resolve_threads, staged_dir, stage_device
from afm_align.pretrain_optimizer import OPTIMIZERS, pretrain_optimizer
from afm_align.tracking import MetricsLog, progress


@dataclass
class InitConfig:
    """How `afm-align init` builds and pre-trains the base model."""

    run: str = "default"  # run name under ./runs (or a path)
    base: str | None = None  # a local HF causal-LM directory to use instead of pre-training
    seed: int = 0
    shape: ModelShape = field(default_factory=ModelShape)
    vocab_size: int = 1024  # BPE vocabulary size (digits always single tokens)
    isolate_spaces: bool = False  # every whitespace character its own token, so a word copied from a prompt into
    # an answer keeps its tokens (afm_align.base_model.train_tokenizer, with what it cost on the tiny preset)
    drill_problems: int = 60000  # arithmetic drill lines in the corpus
    drill_max_operand: int = 100  # operands below this; a tenth of the drill goes to 3 digits
    copy_rows: int = 0  # rows of a random token sequence shown twice added to every pre-training step (loss on the
    # repeat; afm_align.context_copy): the base then copies such sequences, at a cost in arithmetic (README); 0 = none
    recall_problems: int = 0  # recall drill lines (synth.corpus.recall_lines: copy a value from earlier in the
    # line) packed with the arithmetic drill, so they share its `drill_fraction` of a batch; 0 = none
    family_items: int = 2000  # chat-formatted synthetic items per synth family
    math_items: int = 0  # chat-formatted math items (0 = family_items): many teach copying numbers from a question
    # per-family item counts over family_items (e.g. {tool: 6000}): more conversations of a family the base
    # must learn to copy from (tool arguments, the facts of a message); math_items still sets math's
    family_counts: dict[str, int] = field(default_factory=dict)
    drill_fraction: float = 0.75  # share of each batch drawn from the arithmetic drill (the rest: chat)
    drill_fraction_start: float = 0.0  # > 0: the drill's share starts here and moves linearly to drill_fraction
    drill_ramp_steps: int = 0  # over this many steps (drill_share); 0 = drill_fraction at every step
    seq_len: int = 64  # packed drill rows
    chat_seq_len: int = 128  # one conversation per chat row (longer ones: their first and last windows, which
    # cut a prompt's values off the answer that copies them)
    chat_groups: int = 1  # length groups of a step's chat rows (length_groups): with a long chat_seq_len, a
    # short conversation then costs its own length, not the longest row's
    batch_size: int = 64
    steps: int = 1200
    learning_rate: float = 5e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    optimizer: str = "adamw"  # adamw, or muon: Muon on the layers' weight matrices, AdamW on the rest
    # (pretrain_optimizer); the tiny preset uses muon, the small one AdamW (README "More tries")
    probes: int = 300  # held-out two-operand +/- probes below 100
    heldout_sequences: int = 64  # packed sequences kept out of training for the LM loss
    threads: int = 0  # torch threads (0: auto, the cores free when pre-training starts; recorded in meta.json)


def load(preset: str = "tiny", config_file: str | None = None, overrides=()) -> InitConfig:
    """The resolved InitConfig of a preset plus overrides."""
    return load_config(InitConfig, preset=preset, recipe="init", config_file=config_file, overrides=overrides)


# ---------------------------------------------------------------- corpus and probes
def arithmetic_problem(rng: random.Random, max_operand: int, ops: str = "+-") -> tuple[str, str]:
    """One `a op b = ` problem and its exact answer."""
    a, b, op = rng.randrange(max_operand), rng.randrange(max_operand), rng.choice(ops)
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"{a} {op} {b} = ", str(value)


def heldout_probes(n: int, seed: int) -> list[tuple[str, str]]:
    """The held-out probes: distinct two-operand addition/subtraction problems below 100."""
    rng, probes = random.Random(seed + 7919), {}
    while len(probes) < min(n, 19000):
        prompt, answer = arithmetic_problem(rng, 100)
        probes[prompt] = answer
    return sorted(probes.items())


def drill_lines(cfg: InitConfig, exclude: set[str], keep=None) -> list[str]:
    """Arithmetic drill lines, never one of the held-out probes nor a line `keep(a, op, b)` rejects.

    `keep` is the splitter's test that `a op b` is a training problem (`synth.corpus.train_arithmetic`),
    the drill must not teach the answers of dev or test math problems by heart.
    """
    rng, lines = random.Random(cfg.seed), []
    while len(lines) < cfg.drill_problems:
        roll = rng.random()
        if roll < 0.1:
            prompt, answer = arithmetic_problem(rng, 1000)
        elif roll < 0.2:
            prompt, answer = arithmetic_problem(rng, 13, ops="*")
        else:
            prompt, answer = arithmetic_problem(rng, cfg.drill_max_operand)
        if prompt not in exclude and (keep is None or keep(*prompt[:-3].split(" "))):
            lines.append(prompt + answer)
    return lines


def answer_split(line: str) -> tuple[str, str]:
    """(question with its mark, answer) of a drill line: the answer follows the last "= " of an arithmetic line
    or the last "? " of a recall line (its own mark, so "= " never asks for a copied value)."""
    mark = "= " if "= " in line else "? "
    head, _, tail = line.rpartition(mark)
    return head + mark, tail


def drill_tokens(tokenizer, drill: list[str]) -> tuple[list[int], list[bool]]:
    """The drill as one token stream; the mask marks answer tokens (and the newline after them)."""
    newline = tokenizer.convert_tokens_to_ids("\u010a")  # byte-level BPE's "\n"
    heads, tails = zip(*(answer_split(line) for line in drill)) if drill else ((), ())
    prompts = tokenizer(list(heads), add_special_tokens=False)["input_ids"]
    answers = tokenizer(list(tails), add_special_tokens=False)["input_ids"]
    ids, mask = [], []
    for head, tail in zip(prompts, answers):
        ids += head + tail + [newline]
        mask += [False] * len(head) + [True] * (len(tail) + 1)
    return ids, mask


def chat_rows(tokenizer, chats: list[str], seq_len: int, seed: int):
    """Chat conversations as shuffled [N, seq_len] rows, each starting at a conversation's start.

    A row holds one whole conversation (right-padded; padding is masked out), so the model sees each
    question together with its answer and learns to copy numbers and arguments from the prompt. Packing
    conversations into short windows cut most of them in two. A conversation longer than a row gives two
    rows: its first and its last `seq_len` tokens.
    """
    import torch

    pad = tokenizer.pad_token_id
    ids, mask = [], []
    for chat in tokenizer(chats, add_special_tokens=False)["input_ids"] if chats else []:
        for window in ([chat] if len(chat) <= seq_len else [chat[:seq_len], chat[-seq_len:]]):
            ids.append(window + [pad] * (seq_len - len(window)))
            mask.append([True] * len(window) + [False] * (seq_len - len(window)))
    ids_t = torch.tensor(ids, dtype=torch.long).view(-1, seq_len)
    mask_t = torch.tensor(mask, dtype=torch.bool).view(-1, seq_len)
    order = torch.randperm(len(ids_t), generator=torch.Generator().manual_seed(seed))
    return ids_t[order], mask_t[order]


def length_groups(ids, mask, groups: int = 4) -> list:
    """Right-padded rows as up to `groups` parts of similar length, each cut to its longest row's length.

    A batch of whole conversations padded to the longest one would spend most of its compute on padding (the
    corpus runs from 40-token math questions to 320-token tool prompts): sorted by length and cut into
    groups, a step costs about the tokens it holds. The loss is the same token-weighted mean
    (`masked_lm_loss`; padding sits after a row's tokens, so causal attention never sees it): grouping changes
    only the order of the floating-point sums.
    """
    import torch

    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    parts = []
    for chunk in torch.tensor_split(order, min(groups, len(order))):
        width = max(2, int(lengths[chunk].max()))
        parts.append((ids[chunk, :width], mask[chunk, :width]))
    return parts


def pack(ids: list[int], mask: list[bool], seq_len: int, seed: int):
    """A token stream packed into shuffled [N, seq_len] rows with its loss mask."""
    import torch

    rows = len(ids) // seq_len
    ids_t = torch.tensor(ids[: rows * seq_len]).view(rows, seq_len)
    mask_t = torch.tensor(mask[: rows * seq_len]).view(rows, seq_len)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return ids_t[order], mask_t[order]


def lr_factor(step: int, cfg: InitConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def drill_share(step: int, cfg: InitConfig) -> float:
    """The drill's share of step `step`'s batch: `drill_fraction`, or with a ramp set, a linear move from
    `drill_fraction_start` to it over `drill_ramp_steps` (a drill-heavy start for the arithmetic, then the
    default's mix). Off by default: on the tiny preset with six times the tool conversations, 0.9 falling to 0.5
    over 500 steps left the probes at 12% and 15% (seeds 1 and 2) against 95% and 61% without it (README)."""
    if cfg.drill_ramp_steps <= 0 or cfg.drill_fraction_start <= 0:
        return cfg.drill_fraction
    t = min(1.0, step / cfg.drill_ramp_steps)
    return cfg.drill_fraction_start + (cfg.drill_fraction - cfg.drill_fraction_start) * t


def masked_lm_loss(model, parts):
    """Token-weighted mean next-token loss over batches of different row lengths ([(ids, mask), ...])."""
    total, count = 0.0, 0
    for ids, mask in parts:
        n = int(mask[:, 1:].sum())
        if n:
            total = total + model(input_ids=ids, labels=ids.masked_fill(~mask, -100)).loss * n
            count += n
    return total / max(1, count)


def pretrain(model, drill, chat, cfg: InitConfig, log: MetricsLog, vocab: tuple[int, int]) -> None:
    """AdamW (or Muon with it: `pretrain_optimizer`) on batches mixing drill rows and chat rows
    (`drill_fraction`); loss on the masked tokens. A step's chat rows go in `chat_groups` length groups
    (`length_groups`; packed drill rows are all full).
    `copy_rows` > 0 adds that many copy rows of token ids in `vocab` = [low, high) to every step. They are drawn
    from the step's generator before its drill and chat rows, so with the option every later draw, and the
    batches, differ from the default's; at 0 nothing is drawn and the default's batches are as before."""
    import torch

    from afm_align.context_copy import COPY_LENGTH, copy_batch

    opt = pretrain_optimizer(model, cfg)
    peaks = [g["lr"] for g in opt.param_groups]
    for group, peak in zip(opt.param_groups, peaks):  # the schedule by hand (`lr_factor`), as LambdaLR did
        group["lr"] = peak * lr_factor(0, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    bar = progress(total=cfg.steps, desc="pre-training", unit="step")
    device = next(model.parameters()).device
    for step in range(cfg.steps):
        n_drill = cfg.batch_size if len(chat[0]) == 0 else round(cfg.batch_size * drill_share(step, cfg))
        sources = [(rows, n, groups) for rows, n, groups in
                   ((drill, n_drill, 1), (chat, cfg.batch_size - n_drill, cfg.chat_groups)) if n]
        copies = ([tuple(t.to(device) for t in copy_batch(cfg.copy_rows, COPY_LENGTH, *vocab, gen))]
                  if cfg.copy_rows else [])
        loss = masked_lm_loss(model, [part for (ids, mask), n, groups in sources
                                      for i in [torch.randint(0, len(ids), (n,), generator=gen)]
                                      for part in (length_groups(ids[i], mask[i], groups) if groups > 1
                                                   else [(ids[i], mask[i])])] + copies)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for group, peak in zip(opt.param_groups, peaks):
            group["lr"] = peak * lr_factor(step + 1, cfg)
        opt.zero_grad(set_to_none=True)
        bar.update(1)
        if step % 25 == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
            log.log(step=step, loss=loss.item(), lr=opt.param_groups[0]["lr"])
    bar.close()


def heldout_loss(model, parts) -> float:
    """Mean masked-token cross-entropy on held-out rows ([(ids, mask), ...])."""
    import torch

    model.eval()
    with torch.no_grad():
        return float(masked_lm_loss(model, parts))


def probe_accuracy(model, tokenizer, probes: list[tuple[str, str]], batch_size: int = 100) -> float:
    """Greedy exact match of the first generated line against the probe answers."""
    import torch

    model.eval()
    tokenizer.padding_side = "left"
    hits = 0
    for i in range(0, len(probes), batch_size):
        chunk = probes[i : i + batch_size]
        enc = tokenizer(["\n" + p for p, _ in chunk], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        hits += sum(t.split("\n")[0].strip() == a for t, (_, a) in zip(texts, chunk))
    return hits / max(1, len(probes))


# ---------------------------------------------------------------- the recipe
def use_local_base(cfg: InitConfig, run: RunDir) -> dict:
    """`--base PATH`: check it loads as a causal LM and record a pointer to it."""
    from afm_align.base_model import check_base_dir, describe_architecture, load_base

    path = check_base_dir(cfg.base).resolve()
    model, _ = load_base(path)
    report = {"base": str(path), "architecture": describe_architecture(model.config),
              "parameters": sum(p.numel() for p in model.parameters())}
    run.ensure()
    run.base.mkdir(parents=True, exist_ok=True)
    (run.base / "base.json").write_text(json.dumps({"path": str(path)}))
    (run.base / "meta.json").write_text(json.dumps(report, indent=2))
    return report


def check_rebuild(run: RunDir, force: bool) -> None:
    """`afm-align init` on a run that already has a base is a one-line refusal unless `force`: its rounds'
    members were trained from that base, and a new one would silently no longer match them."""
    if not ((run.base / "meta.json").is_file() or (run.base / "base.json").is_file()):
        return
    rounds = sorted(p.name for p in run.root.glob("round_*") if p.is_dir())
    if force:
        if rounds:
            print(f"init: --force: rebuilding the base of {run.root}; its {len(rounds)} round folder(s) were "
                  f"trained from the old base and no longer match it")
        return
    trained = f" and {len(rounds)} round(s) trained from it" if rounds else ""
    raise UserError(f"run {run.root} already has a base{trained}; pass --force to rebuild it, "
                    f"or use a new --run")


def main(cfg: InitConfig, conversations: list[list[dict]] | None = None, drill_keep=None,
         recall: list[str] | None = None) -> dict:
    """Build, pre-train, evaluate and save the base model of `cfg.run`; returns the report.

    `conversations`, `drill_keep` and `recall` come from the data layer (`synth.corpus.pretraining_corpus(cfg)`):
    the train-split chat corpus, the predicate that keeps dev/test arithmetic facts out of the drill, and the
    recall drill's lines (`recall_problems` of them). The core does not import synth.
    """
    import torch

    from afm_align.base_model import SPECIAL_TOKENS, build_model, describe_architecture, train_tokenizer
    from afm_align.context_copy import copy_score

    if cfg.optimizer not in OPTIMIZERS:
        raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {cfg.optimizer!r})")
    run = RunDir.named(cfg.run)
    run.check_format()
    remove_stale_staging(run.root)  # a killed init's `.base.tmp-<pid>-*` (only those whose process is gone)
    if cfg.base:
        report = use_local_base(cfg, run)
        print(f"base: using {report['base']} ({report['parameters']:,} parameters)")
        return report
    threads = resolve_threads(cfg.threads)
    if threads != cfg.threads:  # auto: the cores free now; recorded, so config.yaml and meta.json say what ran
        print(f"init: {threads} torch thread(s) (threads: 0 = auto, the {available_cores()} core(s) of this "
              f"process less the busy ones)")
        cfg = dataclasses.replace(cfg, threads=threads)
    torch.set_num_threads(threads)
    start = time.time()
    probes = heldout_probes(cfg.probes, cfg.seed)
    drill = drill_lines(cfg, exclude={p for p, _ in probes}, keep=drill_keep)
    tokenizer = train_tokenizer(drill[:5000] + _chat_texts_raw(conversations or []), cfg.vocab_size,
                                cfg.isolate_spaces)
    drill += recall or []  # after the tokenizer's sample: the tokenizer is the same with or without them
    chats = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations or []]
    drill_ids, drill_mask = pack(*drill_tokens(tokenizer, drill), cfg.seq_len, cfg.seed)
    chat_ids, chat_mask = chat_rows(tokenizer, chats, cfg.chat_seq_len, cfg.seed)
    held_d = min(cfg.heldout_sequences, len(drill_ids) // 10)
    held_c = min(cfg.heldout_sequences, len(chat_ids) // 10)
    model = build_model(tokenizer, cfg.shape, seed=cfg.seed)
    dev = stage_device("base-pretraining")
    if dev.type != "meta":
        model = model.to(dev)
        drill_ids, drill_mask, chat_ids, chat_mask = (t.to(dev) for t in (drill_ids, drill_mask, chat_ids, chat_mask))
    n_params = sum(p.numel() for p in model.parameters())
    n_tokens = int(drill_mask.sum() + chat_mask.sum())
    print(f"init: {n_params:,} parameters, vocab {len(tokenizer)}, {n_tokens:,} corpus tokens "
          f"({int(chat_mask.sum()):,} of them in {len(chat_ids):,} chat rows)")

    run.ensure()
    with staged_dir(run.base, required="meta.json") as staging:
        log = MetricsLog(staging / "metrics.jsonl")
        low, high = len(SPECIAL_TOKENS), len(tokenizer)  # the ordinary tokens' ids
        pretrain(model, (drill_ids[held_d:], drill_mask[held_d:]), (chat_ids[held_c:], chat_mask[held_c:]), cfg, log,
                 (low, high))
        report = {
            "parameters": n_params,
            "architecture": describe_architecture(model.config),
            "heldout_lm_loss": round(heldout_loss(
                model, [(drill_ids[:held_d], drill_mask[:held_d]), (chat_ids[:held_c], chat_mask[:held_c])]), 4),
            "probe_exact_match": round(probe_accuracy(model, tokenizer, probes), 4),
            "probes": len(probes),
            "copy_score": copy_score(model, low=low, high=high),  # loss on a random sequence's first and second showing
            "threads": threads,
            "train_seconds": round(time.time() - start, 1),
        }
        log.log(event="final", **{k: v for k, v in report.items() if not isinstance(v, dict)})
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "meta.json").write_text(json.dumps({"recipe": "init", **report}, indent=2))
        save_resolved(cfg, staging)
    print(f"init: held-out LM loss {report['heldout_lm_loss']:.3f}; greedy exact match on "
          f"{len(probes)} held-out two-operand +/- probes below 100: {100 * report['probe_exact_match']:.1f}%")
    print(f"init: in-context copying: loss {report['copy_score']['repeat']:.2f} on a random token sequence's second "
          f"showing against {report['copy_score']['first']:.2f} on its first (near 0 when the model copies)")
    print(f"init: saved {run.base} in {report['train_seconds']:.0f} s")
    return report


def _chat_texts_raw(conversations: list[list[dict]]) -> list[str]:
    """The plain message contents, for training the tokenizer before its template exists."""
    return [m["content"] for conv in conversations for m in conv]
