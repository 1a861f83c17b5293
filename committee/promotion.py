"""The promotion rule: which of a round's candidates join the next committee, stated as data.

What it does: `promote(entries, rule, previous_committee)` reads the round's leaderboard entries (all
members of rounds 0..N, as `committee.evaluation.evaluate_round` returns them) and applies a
`PromotionRule`:
- candidates are the members trained in the latest round, ranked by dev mean accuracy (`rank_key`: ties
  by higher Elo, then name); members without a dev mean are never promoted;
- a candidate is promoted if it is among the `top_k` and beats the best earlier member's dev mean
  by at least `min_improvement` (accuracy as a fraction: 0.01 = one point); in round 0 there is nothing
  to beat, so the top_k are promoted;
- the committee is the promoted members plus the `keep_best_earlier` best earlier members (AFM keeps
  "the best models from previous rounds" in the committee, afm-spec §3); if no candidate is promoted, the
  previous committee stays as it was (plus the best earlier members), so it never shrinks to nothing.
It returns (promoted, committee, reason), reason being one sentence for the manifest and the report.
`best_member(entries, before_round)` is the previous best the win rates are measured against, and
`mark_promoted(run_dir, round_n, promoted)` records the decision in the round's leaderboard.json.

Dev only, by construction: promotion reads `leaderboard.json`, which holds dev scores; test scores are
written by `committee.report_eval` into other files after this stage, and this module never imports it.
`promote` and `best_member` refuse entries that carry any test field (`dev_view`), so passing them test
numbers by mistake is an error, not a silent leak.

What it simplifies: one headline number (dev mean) decides; AFM does not say how its committee is
picked beyond "latest promising / best performing" (afm-spec §3).

Run: `python -m pytest tests/committee/test_promotion.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

from afm_align.errors import UserError
from afm_align.store import write_json_atomic
from committee.evaluation import LEADERBOARD_FILE, as_run, read_leaderboard


@dataclass
class PromotionRule:
    """How a round's candidates are promoted into the next committee."""

    top_k: int = 2  # at most this many candidates of the round are promoted
    min_improvement: float = 0.0  # dev mean a candidate must gain over the best earlier member
    keep_best_earlier: int = 1  # best members of earlier rounds always kept in the committee

    def __post_init__(self):
        if self.top_k < 1 or self.keep_best_earlier < 0:
            raise UserError(f"promotion needs top_k >= 1 and keep_best_earlier >= 0 "
                             f"(got {self.top_k}, {self.keep_best_earlier}).")


def dev_view(entries: list[dict]) -> list[dict]:
    """`entries` themselves, after checking that none carries a test score (promotion reads dev only)."""
    for e in entries:
        leaked = sorted(k for k in e if k.startswith("test") or k == "vs_baseline")
        if leaked:
            raise ValueError(f"promotion reads dev scores only; entry '{e.get('member')}' carries {leaked[0]}")
    return entries


def _mean(entry: dict) -> float | None:
    return (entry.get("dev") or {}).get("mean")


def rank_key(entry: dict) -> tuple:
    """The one ranking rule of afm-align, used by promotion, `afm-align leaderboard`, report.md and the app's
    compare tab: best dev mean first; ties by higher Elo, then by member name. A member without a dev mean
    (or without an Elo) ranks below every member that has one."""
    mean, elo = _mean(entry), entry.get("elo")
    return (mean is None, -(mean or 0.0), elo is None, -(elo or 0.0), str(entry.get("member")))


def _ranked(entries: list[dict]) -> list[dict]:
    """Entries with a dev mean, best first (`rank_key`)."""
    scored = [e for e in dev_view(entries) if _mean(e) is not None]
    return sorted(scored, key=rank_key)


def best_member(entries: list[dict], before_round: int | None = None) -> str | None:
    """The member with the best dev mean (among rounds below `before_round` when given)."""
    pool = [e for e in entries if before_round is None or e["round"] < before_round]
    ranked = _ranked(pool)
    return ranked[0]["member"] if ranked else None


def promote(entries: list[dict], rule: PromotionRule,
            previous_committee: list[str] = ()) -> tuple[list[str], list[str], str]:
    """(promoted members, next committee, one-sentence reason) for the latest round in `entries`."""
    if not entries:
        raise UserError("promotion needs at least one leaderboard entry.")
    dev_view(entries)
    latest = max(e["round"] for e in entries)
    candidates = _ranked([e for e in entries if e["round"] == latest])
    earlier = _ranked([e for e in entries if e["round"] < latest])
    bar = _mean(earlier[0]) + rule.min_improvement if earlier else None
    promoted = [e["member"] for e in candidates[:rule.top_k] if bar is None or _mean(e) >= bar]
    kept = [e["member"] for e in earlier[:rule.keep_best_earlier]]
    base = promoted if promoted else list(previous_committee)
    committee = list(dict.fromkeys(base + kept))
    means = {e["member"]: _mean(e) for e in entries}
    shown = ", ".join(f"{m} ({means[m]:.3f})" for m in promoted)
    if not earlier:
        reason = f"round {latest}: promoted the top {rule.top_k} by dev mean: {shown or 'none'}."
    elif promoted:
        reason = (f"round {latest}: promoted {shown}, each at least {rule.min_improvement:.3f} above the best "
                  f"earlier member {earlier[0]['member']} ({means[earlier[0]['member']]:.3f}); kept "
                  f"{', '.join(kept) or 'no earlier member'}.")
    else:
        best = f"{candidates[0]['member']} ({_mean(candidates[0]):.3f})" if candidates else "no candidate"
        reason = (f"round {latest}: no candidate beat {earlier[0]['member']} ({_mean(earlier[0]):.3f}) by "
                  f"{rule.min_improvement:.3f} (best was {best}); the committee is unchanged.")
    return promoted, committee, reason


def mark_promoted(run_dir, round_n: int, promoted: list[str]) -> list[dict]:
    """Set `promoted` on round N's members in `round_<N>/eval/leaderboard.json` (atomically); returns the entries."""
    run = as_run(run_dir)
    entries = read_leaderboard(run, round_n)
    unknown = set(promoted) - {e["member"] for e in entries if e["round"] == round_n}
    if unknown:
        raise ValueError(f"cannot promote {sorted(unknown)}: not members of round {round_n}.")
    for e in entries:
        if e["round"] == round_n:
            e["promoted"] = e["member"] in promoted
    write_json_atomic(run.round(round_n) / "eval" / LEADERBOARD_FILE, entries)
    return entries
