"""Inter-annotator agreement: Cohen's kappa per annotator pair, Krippendorff's alpha overall, per dimension.

Pure functions over the label store's rows (`LabelStore.labels()`), used by the admin page and `labels
status`: agreement figures, per-annotator statistics (gold accuracy included), the queue of pairs whose
annotators disagree (`disagreements`) and the gold items with who got them right (`gold_items`).

Dimensions: `choice` (which response of the pair is better: nominal), `level` (0..3: ordinal) and one
`grade:<dimension>` per single-sided grade (0..2: ordinal), where the unit is one response of one pair.
Krippendorff's alpha uses the coincidence-matrix form (Krippendorff 2011, "Computing Krippendorff's
alpha-reliability"): alpha = 1 - (n - 1) * sum_ck o_ck d2_ck / sum_ck n_c n_k d2_ck. Cohen's kappa is
the unweighted (po - pe) / (1 - pe) on the units both annotators rated.

Simplifies: kappa is unweighted even for ordinal dimensions; a statistic that is undefined (no
variation, or fewer than two pairable values) is None rather than a number.
Run: `python -c "from ui.agreement import cohen_kappa; print(cohen_kappa('aabb', 'abbb'))"`.
"""
from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict

from afm_align.errors import UserError
from afm_align.schema import GRADE_DIMENSIONS

METRICS = {"choice": "nominal", "level": "ordinal", **{f"grade:{d}": "ordinal" for d in GRADE_DIMENSIONS}}


def cohen_kappa(rater_a, rater_b) -> float | None:
    """Cohen's kappa of two equally long rating sequences; None when chance agreement is total."""
    rater_a, rater_b = list(rater_a), list(rater_b)
    if len(rater_a) != len(rater_b):
        raise ValueError("both raters must rate the same units")
    n = len(rater_a)
    if n == 0:
        return None
    po = sum(x == y for x, y in zip(rater_a, rater_b)) / n
    ca, cb = Counter(rater_a), Counter(rater_b)
    pe = sum(ca[c] * cb[c] for c in ca) / (n * n)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def _delta2(level: str, values: list, totals: Counter):
    """The squared distance between two categories under the nominal or ordinal metric."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    order = {v: i for i, v in enumerate(values)}

    def ordinal(c, k):
        lo, hi = sorted((order[c], order[k]))
        between = sum(totals[values[g]] for g in range(lo, hi + 1))
        return (between - (totals[c] + totals[k]) / 2.0) ** 2
    return ordinal


def krippendorff_alpha(units, level: str = "nominal") -> float | None:
    """Krippendorff's alpha of `units` (each a list of the values its raters gave; None = missing)."""
    if level not in ("nominal", "ordinal"):
        raise UserError(f"level must be 'nominal' or 'ordinal' (got {level!r})")
    coincidence: Counter = Counter()
    for unit in units:
        vals = [v for v in unit if v is not None]
        m = len(vals)
        if m < 2:
            continue   # a unit rated once cannot be paired
        for i, j in itertools.permutations(range(m), 2):
            coincidence[(vals[i], vals[j])] += 1.0 / (m - 1)
    totals: Counter = Counter()
    for (c, _k), w in coincidence.items():
        totals[c] += w
    n = sum(totals.values())
    values = sorted(totals)
    if n <= 1 or len(values) < 2:
        return None
    d2 = _delta2(level, values, totals)
    observed = sum(w * d2(c, k) for (c, k), w in coincidence.items())
    expected = sum(totals[c] * totals[k] * d2(c, k) for c in values for k in values)
    return None if expected == 0 else 1.0 - (n - 1) * observed / expected


def ratings(labels: list[dict]) -> dict[str, dict[tuple, dict[str, object]]]:
    """dimension -> unit -> {annotator: value}, from current label rows (pair orientation)."""
    out: dict[str, dict] = {dim: defaultdict(dict) for dim in METRICS}
    for label in labels:
        pair, user = label["pair_id"], label["user"]
        out["choice"][(pair,)][user] = label["better"]
        out["level"][(pair,)][user] = label["level"]
        for side in ("a", "b"):
            for dim, grade in (label[f"grades_{side}"] or {}).items():
                out[f"grade:{dim}"][(pair, side)][user] = grade
    return out


def agreement_report(labels: list[dict]) -> dict:
    """{'alpha': {dim: value}, 'kappa': {dim: {'u1|u2': value}}, 'units': {dim: count of multi-rated}}."""
    report = {"alpha": {}, "kappa": {}, "units": {}}
    for dim, units in ratings(labels).items():
        report["alpha"][dim] = krippendorff_alpha([list(r.values()) for r in units.values()], METRICS[dim])
        report["units"][dim] = sum(len([v for v in r.values() if v is not None]) >= 2 for r in units.values())
        users = sorted({u for r in units.values() for u in r})
        report["kappa"][dim] = {}
        for u1, u2 in itertools.combinations(users, 2):
            shared = [(r[u1], r[u2]) for r in units.values()
                      if r.get(u1) is not None and r.get(u2) is not None]
            if shared:
                report["kappa"][dim][f"{u1}|{u2}"] = cohen_kappa(*zip(*shared))
    return report


def annotator_stats(labels: list[dict], pairs: dict[str, dict] | None = None) -> list[dict]:
    """Per annotator: labels, median seconds per label, agreement with the others' majority, gold accuracy."""
    by_pair: dict[str, dict[str, str]] = defaultdict(dict)
    for label in labels:
        by_pair[label["pair_id"]][label["user"]] = label["better"]
    rows = []
    for user in sorted({label["user"] for label in labels}):
        mine = [label for label in labels if label["user"] == user]
        agree, judged, gold_hits, gold_n = 0, 0, 0, 0
        for label in mine:
            others = Counter(v for u, v in by_pair[label["pair_id"]].items() if u != user)
            top = others.most_common(2)
            if top and (len(top) == 1 or top[0][1] > top[1][1]):   # a strict majority of the others
                judged += 1
                agree += top[0][0] == label["better"]
            gold = (pairs or {}).get(label["pair_id"], {}).get("gold")
            if gold:
                gold_n += 1
                gold_hits += gold == label["better"]
        seconds = [label["seconds"] for label in mine if label.get("seconds") is not None]
        rows.append({"annotator": user, "labels": len(mine),
                     "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
                     "majority_agreement": round(agree / judged, 3) if judged else None,
                     "majority_n": judged,
                     "gold_accuracy": round(gold_hits / gold_n, 3) if gold_n else None, "gold_n": gold_n})
    return rows


def disagreements(labels: list[dict], pairs: dict[str, dict] | None = None) -> list[dict]:
    """The pairs whose annotators disagree, most contested first: on the better response ('choice'), or
    on the same side by two levels or more ('level'). Orientation is the pair's (response_a / response_b)."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for label in labels:
        by_pair[label["pair_id"]].append(label)
    rows = []
    for pair_id, group in by_pair.items():
        if len(group) < 2:
            continue
        sides = Counter(label["better"] for label in group)
        levels = [label["level"] for label in group if label["level"] is not None]
        kind = "choice" if len(sides) > 1 else ("level" if levels and max(levels) - min(levels) >= 2 else None)
        if kind is None:
            continue
        votes = {side: [f"{label['user']} ({label['level'] + 1})" for label in group if label["better"] == side]
                 for side in ("a", "b")}
        rows.append({"pair_id": pair_id, "round": (pairs or {}).get(pair_id, {}).get("round", group[0].get("round")),
                     "disagree_on": kind, "items": ", ".join(str(label["assignment_id"]) for label in group),
                     "response_a": ", ".join(votes["a"]), "response_b": ", ".join(votes["b"]),
                     "justifications": " | ".join(f"{label['user']}: {label['justification']}" for label in group
                                                  if label.get("justification")),
                     "_split": min(sides.values()) / len(group) if kind == "choice" else 0.0})
    rows.sort(key=lambda r: (r["disagree_on"] != "choice", -r["_split"], str(r["pair_id"])))
    return [{k: v for k, v in r.items() if k != "_split"} for r in rows]


def gold_items(labels: list[dict], pairs: dict[str, dict]) -> list[dict]:
    """Every gold (honeypot) pair: its known answer and each annotator's answer, right or wrong."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for label in labels:
        by_pair[label["pair_id"]].append(label)
    rows = []
    for pair_id, pair in sorted(pairs.items(), key=lambda kv: (kv[1]["round"], kv[0])):
        if not pair.get("gold"):
            continue
        answers = sorted(by_pair.get(pair_id, []), key=lambda label: label["user"])
        right = [label["user"] for label in answers if label["better"] == pair["gold"]]
        rows.append({"pair_id": pair_id, "round": pair["round"], "gold": f"response_{pair['gold']}",
                     "labels": len(answers), "right": ", ".join(right),
                     "wrong": ", ".join(label["user"] for label in answers if label["user"] not in right)})
    return rows
