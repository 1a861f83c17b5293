"""The Admin tab: progress, agreement, the disagreement queue, gold items, and the labels' export.

Shown only to users with the admin role, and every handler checks the role again on the server (a
hidden tab is not a permission). Figures come from `ui/agreement.py` over the current labels:
Krippendorff's alpha per dimension, Cohen's kappa per annotator pair and dimension, per annotator the
label count, median seconds per label, agreement with the others' majority and gold accuracy; the
pairs whose annotators disagree (choice, or level by two or more), most contested first, with their
item numbers (what annotators see) and justifications; and every gold (honeypot) pair with who got it
right. "Export labels" writes what `afm-align labels export` writes (the preference dataset with its
annotations.jsonl of justifications and skip reasons, `afm_align/label_export.py`) as one zip to download.

Admins see pair ids (they are not shown to annotators, `ui/annotate_view.py`).
Run: inside the app (`afm-align annotate --run NAME`), log in as an admin, open "Admin".
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from afm_align.errors import UserError
from afm_align.label_export import write_export
from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir
from ui.agreement import agreement_report, annotator_stats, disagreements, gold_items
from ui.security import PRIVATE, md_escape, require_admin

STAT_COLUMNS = ["annotator", "labels", "median_seconds", "majority_agreement", "majority_n", "gold_accuracy",
                "gold_n", "quota", "skipped", "expired", "open"]
DISAGREE_COLUMNS = ["pair_id", "round", "disagree_on", "items", "response_a", "response_b", "justifications"]
GOLD_COLUMNS = ["pair_id", "round", "gold", "labels", "right", "wrong"]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _check_admin(store: LabelStore, user: str) -> None:
    if not store.user(user)["admin"]:
        raise PermissionError(f"'{user}' does not have the admin role")


def admin_figures(store: LabelStore, user: str) -> tuple[str, list, list, list]:
    """(summary markdown, alpha rows, kappa rows, annotator rows) for an admin `user`."""
    _check_admin(store, user)
    labels, pairs = store.labels(), store.pairs()
    report = agreement_report(labels)
    alpha = [[dim, _fmt(value), report["units"][dim]] for dim, value in report["alpha"].items()]
    kappa = [[dim, users, _fmt(value)] for dim, by_pair in report["kappa"].items()
             for users, value in by_pair.items()]
    stats = {row["annotator"]: row for row in annotator_stats(labels, pairs)}
    table = []
    for account in store.users():
        progress = store.progress(account["name"])
        row = stats.get(account["name"], {"annotator": account["name"], "labels": 0})
        row.update(quota=account["quota"], skipped=progress["skipped"], expired=progress["expired"],
                   open=progress["open"])
        table.append([row.get(c) for c in STAT_COLUMNS])
    complete = sum(1 for p in pairs.values()
                   if sum(label["pair_id"] == p["pair_id"] for label in labels) >= p["k"])
    settings = store.settings()
    summary = (f"**{len(pairs)}** pairs queued · **{store.count_labelled()}** labelled at least once · "
               f"**{complete}** with all their annotators · **{len(labels)}** current labels · "
               f"grades {settings['grades']} · lease {settings['lease_minutes']:g} min")
    return summary, alpha, kappa, table


def review_tables(store: LabelStore, user: str) -> tuple[list, list]:
    """(disagreement rows, gold item rows) for an admin `user`, as table rows."""
    _check_admin(store, user)
    labels, pairs = store.labels(), store.pairs()
    disagree = [[row[c] for c in DISAGREE_COLUMNS] for row in disagreements(labels, pairs)]
    gold = [[row[c] for c in GOLD_COLUMNS] for row in gold_items(labels, pairs)]
    return disagree, gold


def export_zip(store: LabelStore, user: str, run: RunDir, soft: bool = False, folder: Path | None = None) -> Path:
    """The export of `labels export` as one zip (a dataset folder inside) for an admin `user`."""
    _check_admin(store, user)
    folder = Path(folder or tempfile.mkdtemp(prefix="afm-export-"))
    name = f"labels-{run.root.name}-{'soft' if soft else 'hard'}-{time.strftime('%Y%m%d-%H%M%S')}"
    for old in folder.glob("labels-*"):        # one export at a time is kept on the server
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    write_export(store, folder / name, soft=soft, producer="afm-align annotate (admin export)")
    return Path(shutil.make_archive(str(folder / name), "zip", root_dir=folder, base_dir=name))


def visibility(store: LabelStore):
    """A load handler: the admin-only tabs become visible for admins (the server checks again)."""
    def show(request: gr.Request):
        user = getattr(request, "username", None)
        allowed = bool(user) and store.user(user)["admin"]
        return gr.update(visible=allowed), gr.update(visible=allowed)
    return show


def build(store: LabelStore, run: RunDir) -> gr.Tab:
    """The Admin tab (hidden until the load handler finds an admin)."""
    folder: list[Path] = []         # made at the first export: a private (0700) temporary folder
    with gr.Tab("Admin", visible=False, id="admin") as tab:
        refresh = gr.Button("Refresh figures", elem_id="admin-refresh")
        summary = gr.Markdown()
        alpha = gr.Dataframe(headers=["dimension", "Krippendorff alpha", "units rated twice+"],
                             label="Agreement overall", interactive=False)
        kappa = gr.Dataframe(headers=["dimension", "annotators", "Cohen kappa"],
                             label="Agreement per annotator pair", interactive=False)
        stats = gr.Dataframe(headers=STAT_COLUMNS, label="Annotators (gold_accuracy: share of gold items right)",
                             interactive=False)
        disagree = gr.Dataframe(headers=DISAGREE_COLUMNS, interactive=False, elem_id="admin-disagreements",
                                label="Disagreements: pairs whose annotators disagree (levels as keys 1-4)")
        gold = gr.Dataframe(headers=GOLD_COLUMNS, interactive=False, elem_id="admin-gold",
                            label="Gold items: the known answer and who got it right")
        with gr.Row():
            soft = gr.Checkbox(label="soft (one row per pair with target_prob)", value=False)
            export = gr.Button("Export labels (zip)", elem_id="admin-export")
            download = gr.File(label="export", interactive=False, elem_id="admin-export-file")
        export_note = gr.Markdown()

        def figures(request: gr.Request):
            try:
                user = require_admin(store, request)
                return (*admin_figures(store, user), *review_tables(store, user))
            except PermissionError as err:
                return f"**Refused:** {md_escape(err)}", [], [], [], [], []

        def make_export(soft_rows: bool, request: gr.Request):
            try:
                user = require_admin(store, request)
                folder[:] = folder or [Path(tempfile.mkdtemp(prefix="afm-export-"))]
                path = export_zip(store, user, run, bool(soft_rows), folder[0])
            except (PermissionError, UserError) as err:
                return None, f"**Not exported:** {md_escape(err)}"
            except OSError as err:
                where = err.filename or "the export"
                return None, f"**Not exported:** cannot write {md_escape(where)}: {md_escape(err.strerror or err)}"
            return str(path), f"Exported {md_escape(path.name)}."

        refresh.click(figures, None, [summary, alpha, kappa, stats, disagree, gold], **PRIVATE)
        export.click(make_export, soft, [download, export_note], **PRIVATE)
    return tab
