"""The on-device track's datasets, built once per track folder and reused on resume.

What it writes under `<track>/data/` (every dataset through the core store, with its manifest):
- `corpus`: train-split chat conversations of every family (prompt + reference, `synth.corpus.chat_corpus`),
  the pre-training text the teacher, the students and the recovery adapters' first phase read;
- `sft`: train-split prompts with their references (`synth.builders.prompt_rows(with_reference=True)`), the
  post-training data (the student's SFT, the recovery adapters' second phase, the math task adapter);
- `dev`, `test`: dev- and test-split prompt rows of every family (dev selects SFT checkpoints; test is only
  reported);
- `summarize_train` (prompt rows), `summarize_ref` (sft rows with the family's reference summaries: what the
  larger model is fine-tuned on before it writes the task data), `summarize_dev` and `summarize_test` (prompt
  rows, at most 300 each) and `summarize_gold.json` (the hidden gold rubric of the dev and test documents, read
  by evaluation only: dev checks the larger model's summaries, test is reported).
The split of a row comes from its problem identity (`synth.splits`), so no test problem is in any training set.

What it simplifies: fixed sizes from the track config; no deduplication beyond the builders' own.

Run: used by `committee.on_device`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from afm_align.store import read_rows, write_dataset, write_json_atomic
from synth.families import FAMILIES


def _sft_row(index: int, messages: list[dict]) -> dict:
    text = json.dumps(messages, sort_keys=True)
    return {"id": f"corpus-{index}-{hashlib.sha256(text.encode()).hexdigest()[:12]}", "messages": messages,
            "member": "reference", "round": 0, "score": 1.0}


def build_corpus(out: Path, items: int, math_items: int, seed: int) -> Path:
    """The train-split pre-training conversations as an `sft` dataset."""
    from synth.corpus import chat_corpus

    chats = chat_corpus(items, seed, {"math": math_items})
    write_dataset([_sft_row(i, c) for i, c in enumerate(chats)], "sft", out, producer="on_device.corpus",
                  config={"items": items, "math_items": math_items, "seed": seed})
    return out


def build_prompts(out_dir: Path, per_family: int, seed: int) -> dict[str, Path]:
    """`sft` (train rows with references), `dev` and `test` prompt datasets of every family."""
    from synth.builders import prompt_rows

    rows = [r for f in FAMILIES for difficulty in (0, 1)
            for r in prompt_rows(f, per_family // 2, seed + 31 * difficulty, difficulty, with_reference=True)]
    paths = {}
    for split, kind in (("train", "sft"), ("dev", "prompt"), ("test", "prompt")):
        chosen = [r for r in rows if r["split"] == split]
        if kind == "prompt":
            chosen = [{k: v for k, v in r.items() if k not in ("completion", "member", "round", "score")} for r in chosen]
        name = "sft" if split == "train" else split
        write_dataset(chosen, kind, out_dir / name, producer="on_device.prompts",
                      config={"per_family": per_family, "seed": seed, "split": split})
        paths[name] = out_dir / name
    return paths


def capped_test_rows(path: Path, per_domain: int) -> list[dict]:
    """At most `per_domain` test rows of each domain, in a fixed order."""
    rows, out, count = read_rows(path, "prompt"), [], {}
    for row in sorted(rows, key=lambda r: r["id"]):
        if count.get(row["domain"], 0) < per_domain:
            out.append(row)
            count[row["domain"]] = count.get(row["domain"], 0) + 1
    return out


def build_summarize(out_dir: Path, n: int, seed: int, test_cap: int = 300) -> dict[str, Path]:
    """Summarisation prompt rows by split, reference rows for the larger model, and the hidden dev/test gold."""
    from synth import summarize_tasks
    from synth.builders import item_to_prompt_row

    items = summarize_tasks.generate(n, seed, 1)
    rows = [(item_to_prompt_row("summarize", item), item) for item in items]
    train = [r for r, _ in rows if r["split"] == "train"]
    dev = [(r, item) for r, item in rows if r["split"] == "dev"][:test_cap]
    test = [(r, item) for r, item in rows if r["split"] == "test"][:test_cap]
    refs = [{**r, "completion": [{"role": "assistant", "content": item["reference"]}], "member": "reference",
             "round": 0, "score": 1.0} for r, item in rows if r["split"] == "train"]
    write_dataset(train, "prompt", out_dir / "summarize_train", producer="on_device.summarize", config={"n": n, "seed": seed})
    write_dataset(refs, "sft", out_dir / "summarize_ref", producer="on_device.summarize", config={"n": n, "seed": seed})
    write_dataset([r for r, _ in test], "prompt", out_dir / "summarize_test", producer="on_device.summarize",
                  config={"n": n, "seed": seed})
    write_dataset([r for r, _ in dev], "prompt", out_dir / "summarize_dev", producer="on_device.summarize",
                  config={"n": n, "seed": seed})
    write_json_atomic(out_dir / "summarize_gold.json", {r["id"]: item["gold"] for r, item in dev + test})
    return {"summarize_train": out_dir / "summarize_train", "summarize_ref": out_dir / "summarize_ref",
            "summarize_dev": out_dir / "summarize_dev", "summarize_test": out_dir / "summarize_test",
            "summarize_gold": out_dir / "summarize_gold.json"}


def conversations_of(rows: list[dict]) -> list[list[dict]]:
    """Prompt + reference conversations of sft rows (the held-out LM loss text, for test rows with references)."""
    out = []
    for r in rows:
        completion = r["completion"]
        out.append(list(r["prompt"]) + (completion if isinstance(completion, list)
                                        else [{"role": "assistant", "content": completion}]))
    return out


def build_all(data: Path, cfg) -> dict[str, Path]:
    """Every dataset of the track (each written only when missing or different)."""
    from synth.builders import prompt_rows

    paths = {"corpus": build_corpus(data / "corpus", cfg.corpus_items, cfg.corpus_math_items, cfg.data_seed)}
    paths.update(build_prompts(data, cfg.prompts_per_family, cfg.data_seed))
    paths.update(build_summarize(data, cfg.summarize_items, cfg.data_seed))
    # the held-out LM loss text: test-split problems with their reference answers (never trained on)
    held = [r for f in FAMILIES for r in prompt_rows(f, cfg.heldout_per_family, cfg.data_seed + 7, 1, with_reference=True)
            if r["split"] == "test"]
    write_dataset(held, "sft", data / "heldout", producer="on_device.heldout",
                  config={"per_family": cfg.heldout_per_family, "seed": cfg.data_seed + 7})
    paths["heldout"] = data / "heldout"
    return paths
