"""The Admin tab: labelling progress, agreement per dimension and per-annotator statistics.

Shown only to users with the admin role, and every handler checks the role again on the server (a
hidden tab is not a permission). Figures come from `ui/agreement.py` over the current labels:
Krippendorff's alpha per dimension, Cohen's kappa per annotator pair and dimension, and per annotator
the label count, median seconds per label, agreement with the others' majority and gold accuracy.

Run: inside the app (`afm-align annotate --run NAME`), log in as an admin, open "Admin".
"""
from __future__ import annotations

import gradio as gr

from afm_align.label_store import LabelStore
from ui.agreement import agreement_report, annotator_stats
from ui.security import PRIVATE, md_escape, require_admin

STAT_COLUMNS = ["annotator", "labels", "median_seconds", "majority_agreement", "majority_n", "gold_accuracy",
                "gold_n", "quota", "skipped", "open"]


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def admin_figures(store: LabelStore, user: str) -> tuple[str, list, list, list]:
    """(summary markdown, alpha rows, kappa rows, annotator rows) for an admin `user`."""
    store_user = store.user(user)
    if not store_user["admin"]:
        raise PermissionError(f"'{user}' does not have the admin role")
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
        row.update(quota=account["quota"], skipped=progress["skipped"], open=progress["open"])
        table.append([row.get(c) for c in STAT_COLUMNS])
    complete = sum(1 for p in pairs.values()
                   if sum(label["pair_id"] == p["pair_id"] for label in labels) >= p["k"])
    summary = (f"**{len(pairs)}** pairs queued · **{store.count_labelled()}** labelled at least once · "
               f"**{complete}** with all their annotators · **{len(labels)}** current labels")
    return summary, alpha, kappa, table


def visibility(store: LabelStore):
    """A load handler: the admin-only tabs become visible for admins (the server checks again)."""
    def show(request: gr.Request):
        user = getattr(request, "username", None)
        allowed = bool(user) and store.user(user)["admin"]
        return gr.update(visible=allowed), gr.update(visible=allowed)
    return show


def build(store: LabelStore) -> gr.Tab:
    """The Admin tab (hidden until the load handler finds an admin)."""
    with gr.Tab("Admin", visible=False) as tab:
        refresh = gr.Button("Refresh figures", elem_id="admin-refresh")
        summary = gr.Markdown()
        alpha = gr.Dataframe(headers=["dimension", "Krippendorff alpha", "units rated twice+"],
                             label="Agreement overall", interactive=False)
        kappa = gr.Dataframe(headers=["dimension", "annotators", "Cohen kappa"],
                             label="Agreement per annotator pair", interactive=False)
        stats = gr.Dataframe(headers=STAT_COLUMNS, label="Annotators", interactive=False)

        def figures(request: gr.Request):
            try:
                return admin_figures(store, require_admin(store, request))
            except PermissionError as err:
                return f"**Refused:** {md_escape(err)}", [], [], []

        refresh.click(figures, None, [summary, alpha, kappa, stats], **PRIVATE)
    return tab
