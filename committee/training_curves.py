"""Training curves of a round's members: `round_<N>/plots/training_<member>.png`, linked from report.md.

What it does: every member folder under `round_<N>/members/` holds a `metrics.jsonl` (the trainer's log
history, `alignment.members.write_member`). `write_training_plots(run, round_n, plots_dir, plt)` draws, per
member, one panel per metric in `CURVES` that its log holds (loss always; then what its recipe logs: reward,
KL and length for MDLOO / RLOO, implicit-reward accuracy and margin for DPO / IPO, next-token accuracy for
SFT / RS, ...) against the training step, and returns the report's markdown lines. Series with many points
are drawn raw (thin) with a trailing mean (bold). A member without a metrics.jsonl, or with no training
record in it, is named in the report as having no curves.

What it simplifies: steps are the trainer's logging steps (`logging_steps` apart); no wall-clock axis.

Run: through `committee.report.write_report`; tests: `python -m pytest tests/committee/test_report_plots.py`.
"""
from __future__ import annotations

import json
from pathlib import Path

from afm_align.tracking import MetricsLog, training_series
from committee.report_plots import KL_WINDOW, save, trailing_mean

PREFIX = "training_"  # plots/training_<member>.png
SMOOTH_FROM = 8  # series with at least this many points also get a trailing mean
CURVES = {  # metric key in metrics.jsonl -> panel title (in this order)
    "loss": "training loss",
    "reward": "reward (RM + verifiers, per sampling step)",
    "kl": "KL to reference (k1, nats/token; a batch can dip < 0)",
    "rewards/accuracies": "implicit reward: chosen > rejected",
    "rewards/margins": "implicit reward margin",
    "mean_token_accuracy": "next-token accuracy",
    "entropy": "entropy (nats/token)",
    "completions/mean_length": "mean completion length (tokens)",
    "grad_norm": "gradient norm",
    "learning_rate": "learning rate",
}


def member_curves(records: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """{metric: [(step, value)]} for each metric of `CURVES` the training records hold."""
    curves = {key: training_series(records, key) for key in CURVES}
    return {key: points for key, points in curves.items() if points}


def draw_member(name: str, recipe: str | None, curves: dict[str, list[tuple[float, float]]], plt):
    """One figure: a grid of panels (up to 4 a row), one per metric, against the training step."""
    cols = min(4, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (key, points) in zip(axes.flat, curves.items()):
        steps, values = (list(v) for v in zip(*points))
        many = len(points) >= SMOOTH_FROM
        ax.plot(steps, values, marker="." if len(points) < 30 else None, linewidth=0.8, alpha=0.45 if many else 1.0)
        if many:
            ax.plot(steps, trailing_mean(values, KL_WINDOW), linewidth=1.8, color=ax.lines[0].get_color())
        if key == "kl":
            ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(CURVES[key], fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(curves):]:
        ax.set_visible(False)
    smooth = f"; bold: trailing mean of {KL_WINDOW} logged steps" if any(
        len(p) >= SMOOTH_FROM for p in curves.values()) else ""
    fig.suptitle(f"{name} ({recipe or 'recipe unknown'}): training curves from metrics.jsonl{smooth}", fontsize=9)
    return fig


def _recipe(member_dir: Path, recipes: dict[str, str]) -> str | None:
    if member_dir.name in recipes:
        return recipes[member_dir.name]
    meta = member_dir / "meta.json"
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("recipe") if meta.is_file() else None
    except json.JSONDecodeError:
        return None


def write_training_plots(run, round_n: int, plots_dir: Path, plt, recipes: dict[str, str] | None = None) -> list[str]:
    """Draw `training_<member>.png` for each member folder of round N; the report's markdown lines."""
    for stale in plots_dir.glob(f"{PREFIX}*.png"):
        stale.unlink()
    members_dir = run.round(round_n) / "members"
    folders = sorted(p for p in members_dir.iterdir() if p.is_dir()) if members_dir.is_dir() else []
    lines, without = [], []
    for folder in folders:
        curves = member_curves(MetricsLog(folder / "metrics.jsonl").read())
        if not curves:
            without.append(folder.name)
            continue
        recipe = _recipe(folder, recipes or {})
        name = f"{PREFIX}{folder.name}.png"
        save(draw_member(folder.name, recipe, curves, plt), plots_dir / name, plt)
        lines += [f"![training curves of {folder.name} ({recipe}): {', '.join(curves)}](plots/{name})", ""]
    if not folders:
        lines.append(f"*No member folders under round_{round_n}/members: no training curves.*")
    if without:
        lines.append(f"*No training records in metrics.jsonl of: {', '.join(without)}.*")
    return lines
