"""The Gradio annotation app: one pair at a time, keyboard first, every label committed before the next.

Tabs: Annotate (prompt, responses A and B side by side as inert HTML, preferred response, level,
four grades per response, justification, submit / skip with a reason / undo; guidelines panel and
the table of shortcuts), My labels (one's own recent labels, loaded with the page and after every
save; any of them opens in Annotate to be edited: a new version supersedes the old), Admin (agreement,
disagreements, gold items, export; admin role, checked on the server, `ui/admin_tab.py`) and Compare
(researchers: members side by side from the round files, `ui/compare_tab.py`).

What an annotator sees is built by `ui/annotate_view.py`: an opaque item number (never the pair id),
a progress bar, levels numbered as their keys. The project settings (`LabelStore.settings()`, read at
start) decide whether grades are required, optional (default) or off, and how long an open pair is
held for its annotator (`lease_minutes`). A reply about a pair that is no longer open (a stale second
tab, an expired lease) says so and moves on to the next open pair. `ui/keyboard.js` keeps the
half-filled form in localStorage across a reload and replays the keys typed while a submit is in flight.

Login is Gradio's, backed by the label store, throttled and revoked on a password change, and every
route the login page does not need is closed to anonymous requests (`ui/security.py`); the user of
every handler comes from the session cookie, and the store itself refuses an assignment or label that
is not the user's. Model text goes through `safe_html`/`messages_html` and every interpolated value
through `esc`; both are shown with `gr.HTML`, which does not parse them again.

Run: `afm-align annotators add alice --admin --run demo` then `afm-align annotate --run demo`.
"""
from __future__ import annotations

import os
from pathlib import Path

from afm_align.errors import UserError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from afm_align.label_store import MAX_TEXT, LabelStore  # noqa: E402
from afm_align.rundir import RunDir  # noqa: E402
from afm_align.schema import GRADE_DIMENSIONS  # noqa: E402
from ui import admin_tab, compare_tab  # noqa: E402
from ui.annotate_view import (GRADE_CHOICES, GRADE_NOTE, LEVEL_CHOICES, RECENT_HEADERS, STALE,  # noqa: E402
                              empty_text, form_key, item_header, load_guidelines, message_html, progress_html,
                              recent_rows, shortcuts)
from ui.security import (PRIVATE, BodyLimit, GuardMiddleware, LoginGuard, LoginThrottle,  # noqa: E402
                         auth_callable, current_user, messages_html, safe_html, sanitize)

CSS = ".slot-active { outline: 3px solid #f59e0b; border-radius: 6px; } #afm-progress-bar { width: 12em; }"
AUTH_MESSAGE = ("afm-align annotation: log in. After 5 failed logins, logins of that name or address pause "
                "for 30 s (then 60 s, 120 s, ...).")
N_GRADES = 2 * len(GRADE_DIMENSIONS)
# Outputs of every form handler, in order: state, shown id, prompt, response A, response B, choice, level,
# the eight grades, justification, skip reason, the form's visibility, message, progress.
N_OUTPUTS = 12 + N_GRADES
FORM, MESSAGE, PROGRESS = -3, -2, -1


class Handlers:
    """The event handlers of the Annotate and My labels tabs (state: assignment id and label in edit)."""

    def __init__(self, store: LabelStore, guideline_version: str, grades_mode: str | None = None):
        self.store, self.guideline_version = store, guideline_version
        self.grades_mode = grades_mode or store.settings()["grades"]

    def view(self, user: str, assignment, message: str, edit_label: int | None = None, closed: str = "") -> tuple:
        """Every output of the annotation form for `assignment` (None: nothing to show, the form hidden)."""
        state = {"assignment_id": assignment.id if assignment else None, "edit_label": edit_label}
        progress = self.store.progress(user)
        key = form_key(user, assignment.id if assignment else None, edit_label)
        if assignment is None:
            empty = f"<p><em>{empty_text(progress)}</em></p>"
            return (state, "", empty, "", "", *(None,) * (2 + N_GRADES), "", "", gr.update(visible=False),
                    message_html(message, closed), progress_html(user, progress, key))
        pre = assignment.prefill or {}
        grades = [(pre.get("grades_a") or {}).get(d) for d in GRADE_DIMENSIONS] + \
                 [(pre.get("grades_b") or {}).get(d) for d in GRADE_DIMENSIONS]
        prompt = sanitize(item_header(assignment, edit_label) + "\n" + messages_html(assignment.prompt))
        return (state, str(assignment.id), prompt, safe_html(assignment.shown_a), safe_html(assignment.shown_b),
                pre.get("choice"), pre.get("level"), *grades, pre.get("justification", ""), "",
                gr.update(visible=True), message_html(message, closed), progress_html(user, progress, key))

    def load(self, request: gr.Request):
        user = current_user(request)
        return self.view(user, self.store.next_pair(user), "")

    def _moved_on(self, user: str, assignment_id, verb: str) -> tuple | None:
        """When the assignment is no longer open (another tab, an expired lease): say so, show the next."""
        try:
            state = self.store.assignment(user, int(assignment_id)).state
        except (UserError, ValueError, TypeError):
            return None
        if state == "open":
            return None
        return self.view(user, self.store.next_pair(user),
                         f"Not {verb}: item {assignment_id} {STALE.get(state, 'is ' + state)}. Here is your next item.",
                         closed=form_key(user, assignment_id))

    def submit(self, request: gr.Request, state, shown_id, choice, level, *rest):
        # `request` comes first: Gradio injects gr.Request only among positional parameters.
        user = current_user(request)
        grades, justification = list(rest[:-1]), rest[-1]
        if not state or state.get("assignment_id") is None or str(state["assignment_id"]) != str(shown_id):
            return self._message("This submission belongs to another item; nothing was saved.")
        missing = [what for what, v in (("the better response (a/b)", choice), ("the level (1-4)", level)) if v is None]
        if self.grades_mode == "off":
            grades = [None] * N_GRADES
        elif self.grades_mode == "required" and any(g is None for g in grades):
            missing.append("all eight grades (q w e r / u i o p, then 0 1 2)")
        if missing:
            return self._message("Please choose " + ", ".join(missing) + ".")
        n = len(GRADE_DIMENSIONS)
        ga, gb = dict(zip(GRADE_DIMENSIONS, grades[:n])), dict(zip(GRADE_DIMENSIONS, grades[n:]))
        edit = state.get("edit_label")
        try:
            if edit:
                label_id = self.store.edit(user, edit, choice, int(level), ga, gb, justification,
                                           self.guideline_version)
            else:
                label_id = self.store.submit(user, state["assignment_id"], choice, int(level), ga, gb,
                                             justification, self.guideline_version)
        except UserError as err:
            moved = None if edit else self._moved_on(user, state["assignment_id"], "saved")
            return moved or self._message(f"Not saved: {err}")
        closed = form_key(user, state["assignment_id"], edit)
        return self.view(user, self.store.next_pair(user), f"Saved label #{label_id}.", closed=closed)

    def skip(self, state, shown_id, reason, request: gr.Request):
        user = current_user(request)
        if not state or str(state.get("assignment_id")) != str(shown_id) or state.get("edit_label"):
            return self._message("Nothing to skip here.")
        try:
            self.store.skip(user, state["assignment_id"], reason)
        except UserError as err:
            return self._moved_on(user, state["assignment_id"], "skipped") or self._message(f"Not skipped: {err}")
        return self.view(user, self.store.next_pair(user), "Skipped.",
                         closed=form_key(user, state["assignment_id"]))

    def undo(self, request: gr.Request):
        user = current_user(request)
        try:
            assignment = self.store.undo(user)
        except UserError as err:
            return self._message(f"Nothing undone: {err}")
        return self.view(user, assignment, "Your last label was withdrawn: change it and submit again.")

    def recent_choices(self, request: gr.Request):
        """My labels: the dropdown of editable labels and the table, by item number."""
        choices, table = recent_rows(self.store.recent(current_user(request)))
        return gr.update(choices=choices, value=None), table

    def edit_label(self, label_id, request: gr.Request):
        """Open one of the user's recent labels in the Annotate tab (and switch to it)."""
        user = current_user(request)
        mine = {r["id"]: r for r in self.store.recent(user)}
        if label_id not in mine:
            return self._message("Choose one of your recent labels to edit.") + (gr.skip(),)
        assignment = self.store.assignment(user, mine[label_id]["assignment_id"])
        assignment.prefill = mine[label_id]
        return self.view(user, assignment, f"Editing label #{label_id} (item {assignment.id}): change it and "
                                           f"submit.", label_id) + (gr.Tabs(selected="annotate"),)

    @staticmethod
    def _message(text: str) -> tuple:
        return (gr.skip(),) * (N_OUTPUTS - 2) + (message_html(text), gr.skip())


def _form(h: Handlers, text: str, version: str):
    """The Annotate tab's components, by name (the form, its buttons and boxes, the message)."""
    with gr.Accordion("Guidelines (g)", open=False, elem_id="guidelines"):
        gr.Markdown(text)
        gr.Markdown(f"Guideline version: `{version}` · {GRADE_NOTE[h.grades_mode]}")
    prompt = gr.HTML(elem_id="prompt", js_on_load=None)
    grades, responses = [], []
    with gr.Column(elem_id="afm-form") as form:
        with gr.Row(equal_height=False):
            for side in ("a", "b"):
                with gr.Column():
                    gr.Markdown(f"### Response {side.upper()}")
                    responses.append(gr.HTML(elem_id=f"response-{side}", container=True, padding=True,
                                             js_on_load=None))
                    for j, dim in enumerate(GRADE_DIMENSIONS):
                        keys = "qwer" if side == "a" else "uiop"
                        grades.append(gr.Radio(GRADE_CHOICES, label=f"{dim.replace('_', ' ')} ({keys[j]})",
                                               elem_id=f"grade-{side}-{j}", visible=h.grades_mode != "off"))
        with gr.Row():
            choice = gr.Radio(["A", "B"], label="Better response (a / b)", elem_id="choice")
            level = gr.Radio(LEVEL_CHOICES, label="By how much (keys 1-4)", elem_id="level")
        justification = gr.Textbox(label="Justification (n; optional)", lines=2, max_length=MAX_TEXT,
                                   elem_id="justification")
        with gr.Row():
            submit = gr.Button("Submit (Enter)", variant="primary", elem_id="submit-btn")
            skip_reason = gr.Textbox(label="Skip reason (s, then Enter)", max_length=MAX_TEXT,
                                     elem_id="skip-reason", scale=2)
            skip = gr.Button("Skip", elem_id="skip-btn")
    undo = gr.Button("Undo last (z)", elem_id="undo-btn", size="sm")
    shown_id = gr.Textbox(visible=False)
    message = gr.HTML(elem_id="message", js_on_load=None)
    gr.Markdown(shortcuts(h.grades_mode))
    return {"prompt": prompt, "responses": responses, "choice": choice, "level": level, "grades": grades,
            "justification": justification, "skip_reason": skip_reason, "form": form, "message": message,
            "shown_id": shown_id, "submit": submit, "skip": skip, "undo": undo}


def build_app(store: LabelStore, run: RunDir, guidelines: str | None = None) -> gr.Blocks:
    """The Blocks of the whole app (annotate, my labels, admin, compare)."""
    text, version = load_guidelines(guidelines)
    h = Handlers(store, version)
    hidden = {"show_progress": "hidden", **PRIVATE}
    with gr.Blocks(title="afm-align annotation", analytics_enabled=False) as demo:
        state = gr.State({"assignment_id": None, "edit_label": None})
        progress = gr.HTML(elem_id="progress", js_on_load=None)
        with gr.Tabs() as tabs:
            with gr.Tab("Annotate", id="annotate"):
                f = _form(h, text, version)
            with gr.Tab("My labels", id="mine"):
                refresh = gr.Button("Refresh my labels")
                picked = gr.Dropdown(label="Edit one of your recent labels (it opens in Annotate)", choices=[],
                                     elem_id="edit-picker")
                mine = gr.Dataframe(headers=RECENT_HEADERS, interactive=False, elem_id="my-labels")
            admin = admin_tab.build(store, run)
            compare = compare_tab.build(run, store)
        outputs = [state, f["shown_id"], f["prompt"], *f["responses"], f["choice"], f["level"], *f["grades"],
                   f["justification"], f["skip_reason"], f["form"], f["message"], progress]
        assert len(outputs) == N_OUTPUTS
        recent = [picked, mine]

        demo.load(h.load, None, outputs, **hidden)
        demo.load(h.recent_choices, None, recent, **hidden)
        demo.load(admin_tab.visibility(store), None, [admin, compare], **PRIVATE)
        form = [state, f["shown_id"], f["choice"], f["level"], *f["grades"], f["justification"]]
        f["submit"].click(h.submit, form, outputs, concurrency_limit=None, **hidden).then(
            h.recent_choices, None, recent, **hidden)
        for event in (f["skip"].click, f["skip_reason"].submit):
            event(h.skip, [state, f["shown_id"], f["skip_reason"]], outputs, concurrency_limit=None, **hidden)
        f["undo"].click(h.undo, None, outputs, concurrency_limit=None, **hidden).then(
            h.recent_choices, None, recent, **hidden)
        refresh.click(h.recent_choices, None, recent, **PRIVATE)
        picked.input(h.edit_label, picked, [*outputs, tabs], **PRIVATE)
    return demo


def serve(run: RunDir, host: str = "127.0.0.1", port: int = 7860, guidelines: str | None = None,
          block: bool = True, throttle: LoginThrottle | None = None):
    """Launch the app on host:port with login required; returns (demo, url) when not blocking.

    `throttle`: the login throttle (default `LoginThrottle()`: 5 failures lock 30 s, doubling)."""
    from starlette.middleware import Middleware

    store = LabelStore(run.labels)
    if store.readonly:
        raise UserError(f"cannot write the label store {run.labels}: it is read-only here ({store.readonly})")
    guard = LoginGuard(store, throttle)
    demo = build_app(store, run, guidelines)
    demo.queue(max_size=256, default_concurrency_limit=8)
    keyboard = (Path(__file__).with_name("keyboard.js")).read_text(encoding="utf-8")
    _, url, _ = demo.launch(
        server_name=host, server_port=port, auth=auth_callable(store), auth_message=AUTH_MESSAGE,
        prevent_thread_lock=True, quiet=True, share=False, show_error=False, footer_links=[],
        max_file_size="1mb", enable_monitoring=False, run_history=False, mcp_server=False, ssr_mode=False,
        app_kwargs={"middleware": [Middleware(BodyLimit), Middleware(GuardMiddleware, guard=guard)],
                    "docs_url": None, "redoc_url": None, "openapi_url": None},
        css=CSS, head=f"<script>{keyboard}</script>")
    print(f"annotation app of {run.root} on {url} (Ctrl+C stops it)", flush=True)
    if not block:
        return demo, url
    try:
        demo.block_thread()
    finally:
        demo.close()
    return demo, url
