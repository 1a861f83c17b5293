"""The researchers' Compare tab: two committee members side by side on the same dev prompts.

It reads round files only and loads no model (the module imports neither torch nor transformers;
Gradio is imported inside `build`). The files, written by the committee's evaluation stage:

- `runs/<run>/round_<N>/eval/leaderboard.json`: dev scores (what promotion used), a list of entries
  `{"member": str, "round": int, "recipe": str, "promoted": bool,
    "dev": {"<domain>": accuracy, ..., "mean": accuracy}, "dev_ci95": [low, high], "elo": float}`
- `runs/<run>/round_<N>/eval/test_leaderboard.json`: test scores (reports only) of the members scored on
  test, `{"member": str, "test": {..., "mean": accuracy}, "test_ci95": [low, high], ...}`
- `runs/<run>/round_<N>/eval/samples.jsonl`: one JSON object a line,
  `{"prompt_id": str, "prompt": chat messages or str, "domain": str, "member": str, "completion": str,
    "rm_score": float | null, "verifier_score": float | null}`
- `runs/<run>/round_<N>/plots/*.png`: the round's plots, shown in a gallery.

Model text (prompts, completions) and every value shown beside it (prompt ids, domains, member names,
scores) go through `safe_html`/`esc` (ui/security.py) and are shown with `gr.HTML`, which does not parse
them again; the tables show their cells as plain text.
Missing files make empty tables, not errors. The tab is shown to admins (researchers log in with an
admin account): RM scores beside responses would bias an annotator.
Run: inside the app (`afm-align annotate --run NAME`), log in as an admin, open "Compare".
"""
import json
import re
from pathlib import Path

from afm_align.rundir import RunDir
from committee.promotion import rank_key
from ui.security import esc, messages_html, safe_html, sanitize

LEADERBOARD_COLUMNS = ["member", "round", "recipe", "promoted", "dev mean (promotion)", "dev ci95",
                       "test mean (report only)", "test ci95", "elo (verifier-judged)"]


def rounds(run: RunDir) -> list[int]:
    """Round numbers that have an eval/ folder, ascending."""
    found = []
    for path in run.root.glob("round_*"):
        match = re.fullmatch(r"round_(\d+)", path.name)
        if match and (path / "eval").is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def leaderboard(run: RunDir, n: int) -> list[dict]:
    file = run.round(n) / "eval" / "leaderboard.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else []


def test_scores(run: RunDir, n: int) -> dict[str, dict]:
    file = run.round(n) / "eval" / "test_leaderboard.json"
    return {e["member"]: e for e in json.loads(file.read_text(encoding="utf-8"))} if file.is_file() else {}


def samples(run: RunDir, n: int) -> list[dict]:
    file = run.round(n) / "eval" / "samples.jsonl"
    if not file.is_file():
        return []
    with open(file, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def members(run: RunDir, n: int) -> list[str]:
    """Members of round n: the leaderboard's order, then any others that have samples."""
    names = [entry["member"] for entry in leaderboard(run, n)]
    return names + sorted({s["member"] for s in samples(run, n)} - set(names))


def leaderboard_rows(run: RunDir, n: int) -> tuple[list[str], list[list]]:
    """(headers, rows) of the leaderboard table (dev order, as promotion ranks), one column per dev domain."""
    entries, tests = leaderboard(run, n), test_scores(run, n)
    domains = sorted({d for e in entries for d in (e.get("dev") or {}) if d != "mean"})
    rows = []
    for e in sorted(entries, key=rank_key):
        dev, t = e.get("dev") or {}, tests.get(e.get("member"), {})
        rows.append([e.get("member"), e.get("round"), e.get("recipe"), bool(e.get("promoted")),
                     _num(dev.get("mean")), _ci_text(e.get("dev_ci95")), _num((t.get("test") or {}).get("mean")),
                     _ci_text(t.get("test_ci95")), _num(e.get("elo"), 1)]
                    + [_num(dev.get(d)) for d in domains])
    return LEADERBOARD_COLUMNS + [f"dev {d}" for d in domains], rows


def _ci_text(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else str(ci or "")


def _num(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def side_by_side(run: RunDir, n: int, first: str, second: str) -> list[dict]:
    """The prompts both members answered in round n, with each one's completion, RM and verifier scores."""
    by_member: dict[str, dict[str, dict]] = {first: {}, second: {}}
    order: list[str] = []
    for s in samples(run, n):
        if s["member"] in by_member and s["prompt_id"] not in by_member[s["member"]]:
            by_member[s["member"]][s["prompt_id"]] = s
            if s["member"] == first:
                order.append(s["prompt_id"])
    rows = []
    for pid in order:
        if pid in by_member[second]:
            one, two = by_member[first][pid], by_member[second][pid]
            rows.append({"prompt_id": pid, "domain": one.get("domain"), "prompt": one.get("prompt"),
                         "completion_1": one.get("completion"), "rm_1": one.get("rm_score"),
                         "verifier_1": one.get("verifier_score"), "completion_2": two.get("completion"),
                         "rm_2": two.get("rm_score"), "verifier_2": two.get("verifier_score")})
    return rows


def plots(run: RunDir, n: int) -> list[Path]:
    return sorted((run.round(n) / "plots").glob("*.png"))


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return " / ".join(str(m.get("content", "")) for m in prompt if m.get("role") == "user")
    return str(prompt or "")


def _member_html(member: str, rm, verifier, completion: str) -> str:
    return sanitize(f"<h3>{esc(member)}</h3>\n<p>RM {esc(rm)} · verifier {esc(verifier)}</p>\n"
                    + safe_html(completion))


def shown_html(rows: list[dict], i, m1, m2) -> tuple[str, str, str]:
    """(prompt, member 1, member 2) HTML of row `i` of `side_by_side`: every value escaped or made inert."""
    if not rows:
        return "<p><em>No prompt answered by both members.</em></p>", "", ""
    r = rows[min(max(int(i or 0), 0), len(rows) - 1)]
    return (sanitize(f"<p><strong>{esc(r['prompt_id'])}</strong> ({esc(r['domain'])})</p>\n"
                     + messages_html(r["prompt"])),
            _member_html(m1, r["rm_1"], r["verifier_1"], r["completion_1"]),
            _member_html(m2, r["rm_2"], r["verifier_2"], r["completion_2"]))


def build(run: RunDir, store):
    """The Compare tab (hidden until the load handler finds an admin)."""
    import gradio as gr
    from PIL import Image

    from ui.security import PRIVATE, require_admin

    with gr.Tab("Compare", visible=False) as tab:
        with gr.Row():
            round_box = gr.Dropdown(label="Round", choices=[])
            first = gr.Dropdown(label="Member 1", choices=[])
            second = gr.Dropdown(label="Member 2", choices=[])
            load = gr.Button("Load rounds", elem_id="compare-load")
        board = gr.Dataframe(label="Leaderboard", interactive=False)
        table = gr.Dataframe(headers=["prompt", "domain", "member 1", "rm 1", "verifier 1", "member 2", "rm 2",
                                      "verifier 2"], label="Held-out prompts", interactive=False, wrap=True)
        index = gr.Number(value=0, precision=0, minimum=0, label="Prompt shown below (index)")
        shown_prompt = gr.HTML(js_on_load=None)
        with gr.Row():
            left = gr.HTML(container=True, padding=True, js_on_load=None)
            right = gr.HTML(container=True, padding=True, js_on_load=None)
        gallery = gr.Gallery(label="Round plots", columns=3, height="auto", object_fit="contain", preview=False,
                             elem_id="round-plots")
        pairs_state = gr.State([])

        def list_rounds(request: gr.Request):
            require_admin(store, request)
            found = rounds(run)
            return gr.update(choices=found, value=found[-1] if found else None)

        def pick_round(n, request: gr.Request):
            require_admin(store, request)
            if n is None:
                return gr.update(choices=[]), gr.update(choices=[]), None, []
            names = members(run, int(n))
            headers, rows = leaderboard_rows(run, int(n))
            images = [Image.open(p).copy() for p in plots(run, int(n))]
            return (gr.update(choices=names, value=names[0] if names else None),
                    gr.update(choices=names, value=names[1] if len(names) > 1 else None),
                    gr.update(value=rows, headers=headers), images)

        def compare(n, m1, m2, request: gr.Request):
            require_admin(store, request)
            rows = side_by_side(run, int(n), m1, m2) if n is not None and m1 and m2 else []
            table_rows = [[_prompt_text(r["prompt"])[:200], r["domain"], r["completion_1"], r["rm_1"], r["verifier_1"],
                           r["completion_2"], r["rm_2"], r["verifier_2"]] for r in rows]
            return rows, table_rows, gr.update(maximum=max(len(rows) - 1, 0), value=0), *shown_html(rows, 0, m1, m2)


        load.click(list_rounds, None, round_box, **PRIVATE)
        tab.select(list_rounds, None, round_box, **PRIVATE)
        round_box.change(pick_round, round_box, [first, second, board, gallery], **PRIVATE)
        for box in (first, second):
            box.change(compare, [round_box, first, second],
                       [pairs_state, table, index, shown_prompt, left, right], **PRIVATE)
        index.change(shown_html, [pairs_state, index, first, second], [shown_prompt, left, right], **PRIVATE)
    return tab
