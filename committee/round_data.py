"""The data of iTeC rounds: the run's fixed datasets, each round's fresh prompts, the committee's answers.

- `run_datasets(cfg)` (round 0, written once per run): per family, `sft_items` train-split prompts with the
  family's reference answer (the SFT data of `r0-sft`), `eval_prompts` dev prompts (what promotion reads,
  every round) and `eval_prompts` test prompts (scored for reports only), and the synthetic RM pairs
  (reference vs corruption, synth.builders.preference_rows): `rm_bootstrap_pairs` train-split pairs that
  start the RM's data and `rm_eval_pairs` test-split ones its accuracy is reported on, every round.
  Each evaluation set holds distinct problem identities (one prompt per problem).
- `round_prompts(cfg, n, seed)`: `prompts_per_round` fresh train-split prompts per family (a new seed per
  round; the split by problem identity keeps every dev and test problem out), each with its `reference`,
  and the same as sft rows (the `sft` candidate's data), topped up to at most `sft_prompts_per_round` sft rows per
  family (or the family's `sft_prompts_by_family`) by a draw of their own (problems the round's prompts do not
  hold; nobody answers or labels them). A family in `cfg.curriculum` draws round n's prompts at that round's
  difficulty (e.g. tool: single calls, then parallel and multi-step ones).
Open-ended families (synth.families.OPEN_ENDED) come with their items' hidden gold attached under a private key,
which the round stages move into the gold side-store (`committee.gold_store`) before anything is written.
- `round_synthetic_pairs(cfg, n)`: `rm_round_pairs` fresh train-split synthetic pairs for round n's RM data
  (each round brings new labelled data of the kind the RM is scored on, not only the committee's pairs).
- `rm_rows(earlier, new, replay, seed)`: a round's RM data; a warm-started RM replays only a share of the
  pairs it has already trained on (`replay_indices`, the seeded draw the SFT members' `sft_replay` uses too).
- `committee_responses(cfg, committee, prompts, n, seed)`: K samples per prompt from each committee member
  through the one member I/O path (`afm_align.member_io.generate_from`: the member's device, vLLM when
  configured; member i samples with seed + i), graded by the families' verifiers.
Every function is deterministic for its arguments. Seeds of families are `pair_seed(seed, family)`.

What it simplifies: every split is the fixed hash bucket of the problem identity (synth.splits), so the
shares of a family's problems on each side are fixed, not stratified.

Run: called by `committee.rounds`; `python -c "from committee.round_data import run_datasets; ..."`.
"""
from __future__ import annotations

from pathlib import Path

from afm_align.errors import UserError
from committee.annotators import pair_seed
from committee.gold_store import PRIVATE
from committee.round_config import IterateConfig, round_difficulty, sft_prompts_of


def split_share(cfg: IterateConfig, split: str) -> float:
    return {"dev": cfg.dev_fraction, "test": cfg.test_fraction}.get(split, 1 - cfg.dev_fraction - cfg.test_fraction)


def _family_rows(family: str, want: int, seed: int, cfg: IterateConfig, split: str,
                 distinct: bool = False, difficulty: int | None = None) -> list[dict]:
    """About `want` prompt rows of one split (over-generating by the split's share), with references.

    `distinct`: at most one row per problem identity (evaluation sets: each problem counts once).
    An open-ended family's rows carry their item's hidden gold under `committee.gold_store.PRIVATE`; the
    stages split it off into the gold side-store before any row is written (committee.gold_store).
    """
    from synth.builders import family_items, item_to_prompt_row

    items = family_items(family, int(want / split_share(cfg, split) * (2.0 if distinct else 1.25)) + 8, seed,
                         cfg.difficulty if difficulty is None else difficulty)
    rows, seen = [], set()
    for it in items:
        row = {**item_to_prompt_row(family, it, cfg.dev_fraction, cfg.test_fraction), "reference": it["reference"]}
        if it.get("gold") is not None:
            row[PRIVATE] = it["gold"]
        if row["split"] != split or (distinct and row["identity"] in seen):
            continue
        seen.add(row["identity"])
        rows.append(row)
    return rows[:want]


def eval_split_rows(cfg: IterateConfig, family: str, split: str) -> list[dict]:
    """The run's fixed `eval_prompts` dev or test rows of one family (one per problem identity), with references."""
    return _family_rows(family, cfg.eval_prompts, pair_seed(cfg.seed, f"eval-{family}") % 2 ** 31, cfg, split,
                        distinct=True)


def _as_sft(row: dict, round_n: int) -> dict:
    keep = {k: row[k] for k in ("id", "prompt", "domain", "verifier", "source", "split", "identity")}
    return {**keep, "completion": [{"role": "assistant", "content": row["reference"]}], "member": "reference",
            "round": round_n, "score": 1.0}


def run_datasets(cfg: IterateConfig) -> dict[str, tuple[str, list[dict]]]:
    """{name: (kind, rows)}: reference SFT rows, dev and test eval prompts, synthetic RM pairs (train + test).

    Dev and test rows of open-ended families still carry their private gold (the data stage splits it off).
    """
    from synth.builders import preference_rows

    sft, evals = [], {"dev": [], "test": []}
    for family in cfg.families:
        sft += [_as_sft(r, 0) for r in _family_rows(family, cfg.sft_items,
                                                    pair_seed(cfg.seed, f"sft-{family}") % 2 ** 31, cfg, "train")]
        for split, rows in evals.items():
            rows += [{k: v for k, v in r.items() if k != "reference"} for r in eval_split_rows(cfg, family, split)]
    n_pairs = int(max(cfg.rm_bootstrap_pairs / split_share(cfg, "train"), cfg.rm_eval_pairs / cfg.test_fraction))
    pairs, _ = preference_rows(int(n_pairs * 1.2), pair_seed(cfg.seed, "rm-pairs") % 2 ** 31, cfg.difficulty,
                               tuple(cfg.families), dev=cfg.dev_fraction, test=cfg.test_fraction)
    rm_pairs = ([r for r in pairs if r["split"] == "train"][:cfg.rm_bootstrap_pairs]
                + [r for r in pairs if r["split"] == "test"][:cfg.rm_eval_pairs])
    if not evals["dev"] or not evals["test"]:
        raise UserError("the families gave no dev or test prompt to evaluate on; raise eval_prompts")
    return {"sft_data": ("sft", sft), "dev": ("prompt", evals["dev"]), "test": ("prompt", evals["test"]),
            "rm_pairs": ("preference", rm_pairs)}


def round_prompts(cfg: IterateConfig, round_n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Fresh train-split prompt rows of every family (with `reference`), and the same as sft rows (with the extra
    reference rows of `sft_prompts_per_round`, or the family's `sft_prompts_by_family`, when it exceeds
    `prompts_per_round`).

    A family in `cfg.curriculum` takes that round's difficulty (`round_difficulty`); the rest `cfg.difficulty`.
    """
    prompts, extra = [], []
    for family in cfg.families:
        rows = _family_rows(family, cfg.prompts_per_round, pair_seed(seed, family) % 2 ** 31, cfg, "train",
                            difficulty=round_difficulty(cfg, family, round_n))
        prompts += rows
        more = sft_prompts_of(cfg, family) - len(rows)
        if more > 0:  # the SFT members' extra references: a draw of its own, none of the round's problems.
            # Up to `more`: the draw asks for `more` problems besides the round's, and what repeats them is dropped
            # (on the tiny preset tool keeps 274-300 of 300 a round and 476-545 of 600: its difficulty-0 problems
            # repeat). An if problem's identity is its reference, so an extra may repeat a round prompt with another
            # reference (3-6 a round); its id is the prompt's, and the SFT members' accumulation
            # (candidates.accumulated_rows) keeps one row per id
            taken = {r["identity"] for r in rows}
            drawn = _family_rows(family, more + len(rows), pair_seed(seed, f"sft-{family}") % 2 ** 31, cfg, "train",
                                 difficulty=round_difficulty(cfg, family, round_n))
            extra += [r for r in drawn if r["identity"] not in taken][:more]
    return prompts, [_as_sft(r, round_n) for r in prompts + extra]


def round_synthetic_pairs(cfg: IterateConfig, round_n: int) -> list[dict]:
    """`rm_round_pairs` fresh synthetic train-split preference pairs for round `round_n` (deterministic)."""
    from synth.builders import preference_rows

    if cfg.rm_round_pairs <= 0:
        return []
    pairs, _ = preference_rows(int(cfg.rm_round_pairs / split_share(cfg, "train") * 1.2) + 8,
                               pair_seed(cfg.seed, f"rm-round-{round_n}") % 2 ** 31, cfg.difficulty,
                               tuple(cfg.families), dev=cfg.dev_fraction, test=cfg.test_fraction)
    return [r for r in pairs if r["split"] == "train"][: cfg.rm_round_pairs]


def replay_indices(n: int, share: float, seed: int) -> list[int]:
    """Which of `n` earlier rows a round trains on again: a seeded draw of round(n * share), in draw order.

    The one rule of `rm_replay` (the RM's earlier pairs) and `sft_replay` (the SFT members' earlier references).
    """
    import random

    return random.Random(seed).sample(range(n), round(n * share))


def rm_rows(earlier: list[dict], new: list[dict], replay: float, seed: int) -> list[dict]:
    """The RM's training data of a round: the new pairs, and a `replay` share of the earlier train pairs.

    A warm-started RM has already trained on the earlier pairs; replaying a share of them keeps it from
    forgetting at a fraction of the cost of all of them (1.0 = all, in order). Pairs of another split (the
    fixed test pairs the RM is scored on) are always kept.
    """
    if replay >= 1.0:
        return earlier + new
    seen = [r for r in earlier if r["split"] == "train"]
    kept = [seen[i] for i in replay_indices(len(seen), replay, seed)]
    return [r for r in earlier if r["split"] != "train"] + kept + new


def committee_responses(cfg: IterateConfig, committee: dict[str, Path], prompts: list[dict], round_n: int,
                        seed: int) -> list[dict]:
    """K sampled answers of every committee member to every prompt, each graded by its family's verifier."""
    from afm_align.member_io import generate_from
    from committee.evaluation import verify_samples

    sampling = {"k": cfg.k, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens}
    rows = []
    for i, (name, path) in enumerate(committee.items()):  # one member in memory at a time
        texts = generate_from(path, [p["prompt"] for p in prompts], stage="committee-sampling", k=cfg.k,
                              max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                              batch_size=cfg.gen_batch_size, seed=seed + i, backend=cfg.generation_backend)
        rows += [{"id": f"{name}-{p['id']}-{j}", "prompt_id": p["id"], "member": name, "round": round_n,
                  "completion": text, "prompt": p["prompt"], "domain": p["domain"],
                  "sampling": {**sampling, "seed": seed + i}}
                 for p, samples in zip(prompts, texts) for j, text in enumerate(samples)]
    return verify_samples(rows, prompts)
