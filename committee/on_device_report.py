"""The on-device track's tables and AFM's claims, computed from `results.json` (nothing re-measured here).

What it does:
- `quant_rows(results)`: one row per (scheme, adapter): measured bits per weight and size on disk of the saved
  palettised model, held-out LM loss and test accuracy per domain (adapters: mean over seeds, with the
  per-seed spread);
- `student_rows(results)`: teacher, pruned (before training), pruned + distilled and from-scratch students;
- `claims(results)`: AFM's three quantisation claims, each stated as reproduced or not with its numbers:
  1. rank 16 recovers most of the loss: in every scheme whose cost is measurable at least half of the
     held-out-loss cost of palettisation is gone once the palettised model and the unquantised one both get a
     rank-16 adapter trained the same way (`recovered_share`, means over seeds); a scheme whose cost is within
     the adapters' seed spread has no share (not measurable), and with none measurable the claim is not either;
  2. the more a scheme loses, the larger the share an adapter recovers: ordering the measurable schemes by
     their gap, the rank-16 recovered share never decreases (needs two measurable schemes);
  3. with recovery adapters large blocks cost little: one look-up table per whole tensor costs at most a
     quarter of its no-adapter extra loss (over 16-row tables) once both have a rank-16 adapter;
- `write(root, results)`: `report.md` with the tables (markdown), beside results.json.

What it simplifies: seed spread is shown as [min, max] over the seeds (3 by default), not a parametric interval.

Run: `python -c "import json; from committee.on_device_report import markdown; print(markdown(json.load(open('runs/x/on_device/results.json'))))"`.
"""
from __future__ import annotations

import statistics
from pathlib import Path

DOMAINS = ("math", "tool", "code", "if", "safety")


def spread(values: list[float]) -> dict:
    """Mean and [min, max] of per-seed values."""
    return {"mean": round(statistics.mean(values), 4), "range": [round(min(values), 4), round(max(values), 4)],
            "n": len(values)} if values else {"mean": None, "range": None, "n": 0}


def accuracy_of(evaluation: dict) -> dict:
    test = evaluation.get("test") or {}
    return {**{d: (test.get("per_domain", {}).get(d) or {}).get("accuracy") for d in DOMAINS}, "mean": test.get("mean")}


def recovery_group(results: dict, scheme: str, rank: int, kd: bool = False) -> list[dict]:
    suffix = "-kd" if kd else ""
    return [v for k, v in sorted(results.get("recovery", {}).items())
            if k.startswith(f"ara-{scheme}-r{rank}-s") and k.endswith(suffix) and (kd or not k.endswith("-kd"))]


def quant_rows(results: dict) -> list[dict]:
    """Rows of the quantisation table (see the module doc)."""
    fp = results["full_precision"]
    fp_size = round(fp.get("size_bytes", 0) / 1024, 1) or None
    rows = [{"scheme": "full precision", "adapter": "none", "bpw": 32.0, "bpw_proj": 32.0, "size_kb": fp_size,
             "loss": spread([fp["heldout_loss"]]), **accuracy_of(fp)}]
    full16 = recovery_group(results, "full", 16)
    if full16:
        rows.append({**rows[0], "adapter": "rank 16", "loss": spread([g["heldout_loss"] for g in full16]),
                     **mean_accuracy(full16)})
    for scheme, q in results.get("quantised", {}).items():
        bits = q.get("bits", {})
        common = {"scheme": scheme, "bpw": bits.get("bits_per_weight"), "bpw_proj": bits.get("bits_per_weight_projections"),
                  "size_kb": round(bits.get("size_bytes", 0) / 1024, 1)}
        rows.append({**common, "adapter": "none", "loss": spread([q["heldout_loss"]]), **accuracy_of(q)})
        for rank, kd in ((8, False), (16, False), (32, False), (16, True)):
            group = recovery_group(results, scheme, rank, kd)
            if group:
                rows.append({**common, "adapter": f"rank {rank}" + (" (KD target)" if kd else ""),
                             "loss": spread([g["heldout_loss"] for g in group]), **mean_accuracy(group)})
    return rows


def mean_accuracy(group: list[dict]) -> dict:
    """Per-domain and mean test accuracy, averaged over the seeds of a group of evaluations."""
    acc = [accuracy_of(g) for g in group]
    return {d: round(statistics.mean(a[d] for a in acc), 4) if acc[0][d] is not None else None
            for d in (*DOMAINS, "mean")}


def student_rows(results: dict) -> list[dict]:
    """Teacher, pruned, distilled and scratch students: held-out loss and test accuracy (seed means)."""
    s = results.get("students", {})
    rows = []
    for label, keys in (("teacher", ["teacher"]), ("pruned, before training", ["student-pruned"]),
                        ("pruned + distilled", [k for k in s if k.startswith("student-distilled-")]),
                        ("same student from scratch", [k for k in s if k.startswith("student-scratch-")])):
        if not keys:
            continue
        acc = [accuracy_of(s[k]) for k in keys]
        rows.append({"model": label, "seeds": len(keys), "loss": spread([s[k]["heldout_loss"] for k in keys]),
                     "mean_accuracy": spread([a["mean"] for a in acc]),
                     **{d: round(statistics.mean(a[d] for a in acc), 4) for d in DOMAINS}})
    return rows


def seed_spread(group: list[dict]) -> float:
    """max - min of the held-out losses of a group of seeds (0 for one seed)."""
    losses = [g["heldout_loss"] for g in group]
    return max(losses) - min(losses) if losses else 0.0


def recovered_share(results: dict, scheme: str, rank: int = 16) -> float | None:
    """Share of the quantisation loss a rank-`rank` recovery adapter takes away, seed means:
    1 - (palettised + adapter - full precision + adapter) / (palettised - full precision).
    Both sides get the same adapter training (rank 16 on the unquantised member is the reference), because the
    adapter's data alone also lowers the loss. None when the cost of palettisation is not larger than the
    seed-to-seed spread of the adapters (then the share is noise: at the tiny scale 4-bit costs ~0.01)."""
    fp = results["full_precision"]["heldout_loss"]
    q = results.get("quantised", {}).get(scheme, {}).get("heldout_loss")
    group, ceiling = recovery_group(results, scheme, rank), recovery_group(results, "full", 16)
    if q is None or not group or not ceiling:
        return None
    if q - fp <= max(seed_spread(group), seed_spread(ceiling)):
        return None
    after = statistics.mean(g["heldout_loss"] for g in group) - statistics.mean(g["heldout_loss"] for g in ceiling)
    return round(1 - after / (q - fp), 4)


def claims(results: dict) -> dict:
    """AFM's claims on this track's numbers: each {claim, reproduced (True / False / None: not measurable), numbers}."""
    fp = results["full_precision"]["heldout_loss"]
    schemes = [s for s in results.get("quantised", {}) if s != "4bit-whole"]
    gaps = {s: round(results["quantised"][s]["heldout_loss"] - fp, 4) for s in schemes}
    spread = {s: round(seed_spread(recovery_group(results, s, 16)), 4) for s in schemes}
    shares = {s: recovered_share(results, s) for s in schemes}
    ordered = [s for s in sorted(schemes, key=lambda s: gaps[s]) if shares[s] is not None]
    known = [shares[s] for s in ordered]
    out = [{"claim": "rank 16 recovers most of the quantisation loss",
            "reproduced": all(v >= 0.5 for v in known) if known else None,
            "numbers": {"loss_gap": gaps, "rank16_seed_spread": spread, "rank16_recovered_share": shares,
                        "rank8_recovered_share_vs_rank16_reference": {s: recovered_share(results, s, 8) for s in schemes},
                        "rank32_recovered_share_vs_rank16_reference": {s: recovered_share(results, s, 32) for s in schemes},
                        "note": "share None: the scheme's loss gap is within the adapters' seed spread"}},
           {"claim": "the more a scheme loses, the larger the share an adapter recovers",
            "reproduced": all(a <= b for a, b in zip(known, known[1:])) if len(known) >= 2 else None,
            "numbers": {"measurable_schemes_by_gap": ordered, "rank16_recovered_share": known}}]
    q = results.get("quantised", {})
    if "4bit-whole" in q and "4bit" in q:
        no_adapter = q["4bit-whole"]["heldout_loss"] - q["4bit"]["heldout_loss"]
        whole, small = recovery_group(results, "4bit-whole", 16), recovery_group(results, "4bit", 16)
        with_adapter = (statistics.mean(g["heldout_loss"] for g in whole) - statistics.mean(g["heldout_loss"] for g in small)
                        if whole and small else None)
        out.append({"claim": "with recovery adapters, large blocks (one table per tensor) cost little",
                    "reproduced": with_adapter is not None and no_adapter > 0 and with_adapter <= 0.25 * no_adapter,
                    "numbers": {"extra_loss_whole_vs_16_rows_no_adapter": round(no_adapter, 4),
                                "extra_loss_whole_vs_16_rows_rank16": None if with_adapter is None else round(with_adapter, 4),
                                "rank16_seed_spread": round(max(seed_spread(whole), seed_spread(small)), 4)}})
    return {"claims": out}


def _fmt(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _loss(s: dict) -> str:
    if s["n"] <= 1:
        return _fmt(s["mean"])
    return f"{s['mean']:.3f} [{s['range'][0]:.3f}, {s['range'][1]:.3f}]"


def task_rows(results: dict) -> list[dict]:
    """Per task: the recovery-adapted base against the task adapter on its own measure, seed means."""
    t = results.get("tasks", {})
    seeds = sorted(k.split("-s")[1] for k in t if k.startswith("summarize-s"))
    if not seeds:
        return []
    scheme = t["scheme"]
    summ_base = [t[f"recovery-s{s}"]["summarize"] for s in seeds]
    summ_task = [t[f"summarize-s{s}"] for s in seeds]
    deltas = [statistics.mean(a - b for a, b in zip(x["scores"], y["scores"])) for x, y in zip(summ_task, summ_base)]
    math_base = [accuracy_of(results["recovery"][f"ara-{scheme}-r16-s{s}"])["math"] for s in seeds]
    math_task = [accuracy_of(t[f"math-s{s}"])["math"] for s in seeds]
    return [{"task": "summarize (hidden gold score, test documents)", "base": spread([x["gold"] for x in summ_base]),
             "adapter": spread([x["gold"] for x in summ_task]), "delta": spread(deltas),
             "n": summ_task[0]["n"], "ci95_seed0": paired_ci(summ_task[0]["scores"], summ_base[0]["scores"])},
            {"task": "math (test accuracy)", "base": spread(math_base), "adapter": spread(math_task),
             "delta": spread([a - b for a, b in zip(math_task, math_base)]), "n": None, "ci95_seed0": None}]


def paired_ci(a: list[float], b: list[float]) -> list[float]:
    """A paired bootstrap interval of mean(a - b) over the same documents."""
    from committee.on_device_eval import bootstrap_mean

    return bootstrap_mean([x - y for x, y in zip(a, b)])


def markdown(results: dict) -> str:
    """The track's tables and claims as markdown."""
    lines = ["| scheme | adapter | bits/weight (all) | bits/weight (projections) | size KB | held-out loss | "
             + " | ".join(DOMAINS) + " | mean |", "|---|---|---|---|---|---|" + "---|" * (len(DOMAINS) + 1)]
    for r in quant_rows(results):
        lines.append(f"| {r['scheme']} | {r['adapter']} | {_fmt(r['bpw'], 2)} | {_fmt(r['bpw_proj'], 2)} | "
                     f"{_fmt(r['size_kb'], 1)} | {_loss(r['loss'])} | " + " | ".join(_fmt(r[d], 2) for d in DOMAINS)
                     + f" | {_fmt(r['mean'], 3)} |")
    lines += ["", "| student | seeds | held-out loss | test accuracy (mean) | " + " | ".join(DOMAINS) + " |",
              "|---|---|---|---|" + "---|" * len(DOMAINS)]
    for r in student_rows(results):
        lines.append(f"| {r['model']} | {r['seeds']} | {_loss(r['loss'])} | {_loss(r['mean_accuracy'])} | "
                     + " | ".join(_fmt(r[d], 2) for d in DOMAINS) + " |")
    lines += ["", "| task | recovery adapter alone | + task adapter | difference (seed mean [min, max]) |",
              "|---|---|---|---|"]
    for r in task_rows(results):
        ci = f"; seed 0 paired 95% CI {r['ci95_seed0']}" if r["ci95_seed0"] else ""
        lines.append(f"| {r['task']} | {_loss(r['base'])} | {_loss(r['adapter'])} | {_loss(r['delta'])}{ci} |")
    writer = results.get("writer_dev")
    if writer:
        lines += ["", f"The summarize adapter's training summaries are the larger model's (the teacher fine-tuned on "
                  f"reference summaries): its gold score on the dev documents is {writer['gold']:.3f} "
                  f"(95% CI {writer['ci95']}, n={writer['n']}); "
                  f"{results.get('summarize_task_rows', {}).get('kept', '?')} of its summaries passed the rule filter."]
    serving = results.get("serving")
    if serving:
        lines += ["", f"Serving: {serving['responses']}/{serving['requests']} requests answered ({serving['errors']} errors) "
                  f"by one process holding one palettised base and {serving['adapters']} adapters; adapter switch "
                  f"median {serving['switch_ms_median']:.3f} ms (max {serving['switch_ms_max']:.3f} ms) over "
                  f"{serving['switches']} switches; answers equal to the adapter loaded alone: "
                  f"{serving['agreement_with_alone']}; weights held {serving['shared_bytes'] / 1024:.0f} KB against "
                  f"{serving['merged_16bit_bytes'] / 1024:.0f} KB for {serving['adapters']} merged 16-bit models "
                  f"({serving['saved_share']:.0%} saved)."]
    lines += ["", "| AFM claim | reproduced here | numbers |", "|---|---|---|"]
    for c in claims(results)["claims"]:
        verdict = {True: "yes", False: "no", None: "not measurable at this scale"}[c["reproduced"]]
        lines.append(f"| {c['claim']} | {verdict} | `{c['numbers']}` |")
    return "\n".join(lines) + "\n"


def write(root: Path, results: dict) -> Path:
    """Write `report.md` beside results.json."""
    path = Path(root) / "report.md"
    path.write_text("# On-device track\n\n" + markdown(results), encoding="utf-8")
    return path
