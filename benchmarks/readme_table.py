"""The README's performance table, generated from the committed result JSON (never typed by hand).

`table()` reads `benchmarks/results/latest.json` (written by `run_all.py`: every ratio with its interval, and
each benchmark's own JSON under `details`) and `benchmarks/results/iterate_round3.json` (the multi-seed round
benchmark), and returns the markdown rows. `python benchmarks/readme_table.py --write` replaces the text
between the `perf-table` markers in README.md; `--check` exits 1 when the README differs (a test runs it), so a
figure in the README is always one that a committed JSON holds.

Run: `python benchmarks/run_all.py --quick && python benchmarks/readme_table.py --write`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
REFERENCE_GFLOPS = 200  # the 2-thread fp32 matmul peak the issues' time budgets assume

RATIO_ROWS = {  # ratio name in latest.json -> what the row says
    "mdloo_vs_trl_rloo": "MDLOO samples/s ÷ TRL `RLOOTrainer` (same model, batch, K, lengths)",
    "mdloo_vs_trl_grpo": "MDLOO samples/s ÷ TRL `GRPOTrainer` (`dr_grpo`, 2 iterations, no std scaling)",
    "rm_step_vs_trl_reward": "multi-head RM training step time ÷ TRL `RewardTrainer` step time",
    "rs_generation_vs_naive": "rejection-sampling generation tokens/s ÷ one batched HF `generate` call a batch "
                              "(mixed prompt and answer lengths)",
    "rm_scoring_vs_naive": "RM scoring throughput, length-sorted ÷ unsorted batches",
}


def _load(name: str) -> dict:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else {}


def _ratio_cell(r: dict) -> str:
    if r.get("value") is None:
        return "not measured"
    ci = r.get("ci95")
    text = f"{r['value']:.2f}"
    if ci:
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    if r.get("interval") == "no measurable difference":
        text += ", no measurable difference"
    return text


def _met(r: dict) -> str:
    return {True: "met", False: "**not met**", None: ""}[r.get("meets_bar")]


def phase_rows(mdloo: dict, generation: dict) -> list[str]:
    """The settings the ratios were measured at, and MDLOO's generation and training time apart."""
    rows = []
    phases, st = mdloo.get("phases") or {}, mdloo.get("settings") or {}
    if phases:
        split = "; ".join(f"{name.replace('_', ' ')} {p['generate_s']:.2f} s / {p['train_s']:.2f} s"
                          for name, p in phases.items())
        rows.append(f"| MDLOO benchmark run, median generation / training seconds (random model h{st.get('hidden')}, "
                    f"{st.get('layers')} layers; n={st.get('prompts')} prompts x K={st.get('k')}, "
                    f"{st.get('max_new_tokens')} new tokens, {st.get('num_iterations')} inner steps, "
                    f"{st.get('steps')} outer iterations a run, {st.get('threads')} thread) | {split} | | |")
    if generation.get("mean_answer_tokens") is not None:
        rows.append(f"| generation benchmark: tokens/s ours / batched HF `generate` (mean answer "
                    f"{generation['mean_answer_tokens']} tokens) | {generation.get('ours_tok_s')} / "
                    f"{generation.get('batched_hf_tok_s')} | | |")
    return rows


def mfu_rows(mfu: dict | None) -> list[str]:
    if not mfu:
        return ["| MFU of the training steps | not measured | | |"]
    peaks = (f"measured {mfu.get('peak_matmul_gflops')} GFLOP/s (median 2048³ fp32 matmul, {mfu.get('threads')} "
             f"threads) / theoretical {mfu.get('theoretical_peak_gflops')} GFLOP/s ({mfu.get('theoretical_peak_how')})")
    cells = []
    for name in ("sft", "dpo", "rm", "mdloo"):
        r = mfu.get(name)
        if isinstance(r, dict) and "mfu_vs_measured_peak" in r:
            theory = r.get("mfu_vs_theoretical_peak")
            cells.append(f"{name.upper()} {100 * r['mfu_vs_measured_peak']:.1f}% / "
                         f"{'-' if theory is None else f'{100 * theory:.1f}%'}")
    return [f"| MFU of the recipes' real TRL steps, tiny preset (`benchmarks/training_mfu.py`: decoder FLOPs on "
            f"non-padding tokens, the LM head where TRL applies it, no LM head in the RM; MDLOO's step includes its "
            f"sampling), % of the {peaks} | {'; '.join(cells) or 'not measured'} | | |"]


def scaled_minutes(data: dict) -> list[float]:
    """Each seed's wall minutes scaled to the budgets' reference machine: minutes x its matmul peak / 200 GFLOP/s.

    The peak is the one read just before the seed ran (`matmul_gflops_before`; the run's own reading otherwise):
    a shared host's speed drifts between seeds, and the issues' time budgets are set for a 200 GFLOP/s machine.
    """
    gflops = data.get("matmul_gflops")
    return [round(s["minutes"] * (s.get("matmul_gflops_before") or gflops) / REFERENCE_GFLOPS, 1)
            for s in data.get("per_seed", []) if s.get("matmul_gflops_before") or gflops]


def round_row(data: dict) -> str:
    if not data:
        return "| `afm-align iterate --round 3`, tiny default | not measured | ≤ 20 min, ≤ 6 GB | |"
    peaks, scaled = data.get("peak_gb") or [], scaled_minutes(data)
    met = "met" if scaled and max(scaled) <= 20 and max(peaks or [0]) <= 6 else "**not met**"
    seeds = data.get("per_seed", [])
    walls = ", ".join(f"{s['minutes']} min at {s.get('matmul_gflops_before') or data.get('matmul_gflops')} GFLOP/s"
                      for s in seeds)
    return (f"| `afm-align iterate --round 3`, tiny default (`{data.get('command')}`, {data.get('date')}, commit "
            f"{str(data.get('commit'))[:10]}) | pipeline seeds {', '.join(str(s['seed']) for s in seeds)}: {walls}; "
            f"scaled to {REFERENCE_GFLOPS} GFLOP/s (minutes x peak / {REFERENCE_GFLOPS}): "
            f"{', '.join(f'{m} min' for m in scaled) or '-'}; peak {max(peaks) if peaks else '-'} GB | "
            f"≤ 20 min at {REFERENCE_GFLOPS} GFLOP/s, ≤ 6 GB | {met} |")


def table() -> str:
    latest, rounds = _load("latest.json"), _load("iterate_round3.json")
    details = latest.get("details") or {}
    lines = [f"Measured {latest.get('date', '-')} at commit {str(latest.get('commit'))[:10]} on {latest.get('machine', '-')} "
             f"(`{latest.get('command', 'python benchmarks/run_all.py')}`, {latest.get('total_seconds', '-')} s). "
             "Ratios: median of at least 10 interleaved, warmed-up pairs [bootstrap 95% interval]; above 1 = ours "
             "faster, except the RM step row (a time ratio, ours ÷ TRL).", "",
             "| figure | value | bar | |", "|---|---|---|---|"]
    for name, what in RATIO_ROWS.items():
        r = (latest.get("ratios") or {}).get(name) or {}
        lines.append(f"| {what} | {_ratio_cell(r)} | {r.get('bar') or ''} | {_met(r)} |")
    lines += phase_rows(details.get("mdloo_vs_trl_rloo") or {}, details.get("rs_generation") or {})
    lines += mfu_rows(latest.get("mfu") or details.get("training_mfu"))
    sandbox, store, cli = details.get("sandbox") or {}, details.get("label_store") or {}, details.get("cli_startup") or {}
    if sandbox:
        lines.append(f"| sandbox programs/s ({sandbox.get('mode')}) | {sandbox.get('programs_per_s')} | | |")
    if store:
        lines.append(f"| label store: {store.get('clients')} concurrent writer processes, {store.get('committed')} labels | "
                     f"{store.get('labels_per_second')} labels/s, {store.get('lost')} lost, {store.get('duplicated')} "
                     f"duplicated, {store.get('double_assignments')} double-assigned | | |")
    if cli:
        lines.append(f"| `afm-align --help` | {1000 * cli['help_s']:.0f} ms (bare `python -c pass`: "
                     f"{1000 * cli['python_startup_s']:.0f} ms) | | |")
    lines.append(round_row(rounds))
    lines.append("| GPU: vLLM ÷ HF `generate`; small-preset step time and MFU | not measured (no GPU machine was lent "
                 "to this project) | | |")
    return "\n".join(lines)


def readme_section(text: str) -> str:
    start, end = text.index(START) + len(START), text.index(END)
    return text[start:end].strip("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table differs")
    args = parser.parse_args()
    text, generated = README.read_text(encoding="utf-8"), table()
    if args.write:
        start, end = text.index(START) + len(START), text.index(END)
        README.write_text(text[:start] + "\n" + generated + "\n" + text[end:], encoding="utf-8")
        return 0
    if args.check:
        same = readme_section(text) == generated
        print("README table matches the results JSON" if same else "README table differs: run --write")
        return 0 if same else 1
    print(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
