"""The Gradio annotation app: one pair at a time, keyboard first, every label committed before the next.

Tabs: Annotate (prompt, responses A and B side by side as inert HTML, preferred response, level,
four grades per response, justification, submit / skip with a reason / undo; guidelines panel and
the table of shortcuts), My labels (one's own recent labels, any of which can be loaded and edited:
a new version supersedes the old), Admin (agreement and annotator statistics; admin role, checked on
the server) and Compare (researchers: members side by side from the round files, `ui/compare_tab.py`).

Login is Gradio's, backed by the label store, throttled and revoked on a password change, and every
route the login page does not need is closed to anonymous requests (`ui/security.py`); the user of
every handler comes from the session cookie, and the store itself refuses an assignment or label that
is not the user's. Model text (prompt, responses) and every value interpolated next to it (pair id)
go through `safe_html`/`esc` and are shown with `gr.HTML`, which does not parse them again.
Handlers run on Gradio's worker threads; the store opens a connection per call.

Run: `afm-align annotators add alice --admin --run demo` then `afm-align annotate --run demo`.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from afm_align.errors import UserError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from afm_align.label_store import MAX_TEXT, LabelStore  # noqa: E402
from afm_align.rundir import RunDir  # noqa: E402
from afm_align.schema import GRADE_DIMENSIONS, LEVEL_NAMES  # noqa: E402
from ui import admin_tab, compare_tab  # noqa: E402
from ui.security import (PRIVATE, BodyLimit, GuardMiddleware, LoginGuard, LoginThrottle,  # noqa: E402
                         auth_callable, current_user, esc, md_escape, messages_html, safe_html, sanitize)

GUIDELINES = """**Guidelines (builtin-v1)**

1. Read the prompt, then both responses in full. Pick the response a careful expert would rather send.
2. Level: *negligibly* (a coin flip), *slightly*, *better*, *significantly better* (the other fails the task).
3. Grade each response on its own, 0 poor / 1 acceptable / 2 good: **instruction following** (does what
   was asked, all constraints), **verbosity** (2 = the right length), **truthfulness** (no false claims,
   correct maths and code), **harmlessness** (no unsafe help; a justified refusal is harmless).
4. Skip only if you cannot judge (say why: language, expertise, broken pair). Write a justification
   when the choice is close or surprising.
"""
SHORTCUTS = """| keys | action |
|---|---|
| `a` / `b` | response A / B is better |
| `1` `2` `3` `4` | negligibly / slightly / better / significantly better |
| `q` `w` `e` `r` then `0` `1` `2` | grade of A: instruction following, verbosity, truthfulness, harmlessness: poor / acceptable / good |
| `u` `i` `o` `p` then `0` `1` `2` | the same grades of B |
| `n` | write a justification (`Esc` leaves the box) |
| `Enter` (`Ctrl+Enter` in a box) | submit |
| `s`, type a reason, `Enter` | skip |
| `z` | undo your last label (it comes back to be edited) |
| `g` | show / hide the guidelines |
| `Shift+L` | log out |
"""
GRADE_CHOICES = [("poor", 0), ("acceptable", 1), ("good", 2)]
LEVEL_CHOICES = [(name.replace("_", " "), i) for i, name in enumerate(LEVEL_NAMES)]
CSS = ".slot-active { outline: 3px solid #f59e0b; border-radius: 6px; }"
AUTH_MESSAGE = ("afm-align annotation: log in. After 5 failed logins, logins of that name or address pause "
                "for 30 s (then 60 s, 120 s, ...).")


def load_guidelines(path: str | None) -> tuple[str, str]:
    """(markdown, version): the builtin text, or a file whose version is its stem and content hash."""
    if not path:
        return GUIDELINES, "builtin-v1"
    file = Path(path)
    if not file.is_file():
        raise UserError(f"guidelines file {path} does not exist")
    text = file.read_text(encoding="utf-8")
    return text, f"{file.stem}@{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _progress_line(store: LabelStore, user: str) -> str:
    p = store.progress(user)
    quota = f" of your quota {p['quota']}" if p["quota"] else ""
    return (f"Logged in as **{md_escape(user)}** · labelled **{p['done']}**{quota} · skipped {p['skipped']} · "
            f"{p['remaining']} more pairs available · [log out](logout)")


class Handlers:
    """The event handlers of the Annotate and My labels tabs (state: assignment id and label in edit)."""

    def __init__(self, store: LabelStore, guideline_version: str):
        self.store, self.guideline_version = store, guideline_version

    def view(self, user: str, assignment, message: str, edit_label: int | None = None) -> tuple:
        """Every output of the annotation form for `assignment` (None: nothing left to label)."""
        state = {"assignment_id": assignment.id if assignment else None, "edit_label": edit_label}
        if assignment is None:
            blank = (None,) * (2 + 2 * len(GRADE_DIMENSIONS))
            return (state, "", "<p><em>Nothing left to label for you. Thank you!</em></p>", "", "", *blank, "", "",
                    message, _progress_line(self.store, user))
        pre = assignment.prefill or {}
        grades = [(pre.get("grades_a") or {}).get(d) for d in GRADE_DIMENSIONS] + \
                 [(pre.get("grades_b") or {}).get(d) for d in GRADE_DIMENSIONS]
        header = f"<p><strong>Pair {esc(assignment.pair_id)}</strong> (round {esc(assignment.round)})" + (
            f" · editing label #{esc(edit_label)}" if edit_label else "") + "</p>"
        return (state, str(assignment.id), sanitize(header + "\n" + messages_html(assignment.prompt)),
                safe_html(assignment.shown_a), safe_html(assignment.shown_b),
                pre.get("choice"), pre.get("level"), *grades, pre.get("justification", ""), "",
                message, _progress_line(self.store, user))

    def load(self, request: gr.Request):
        user = current_user(request)
        return self.view(user, self.store.next_pair(user), "")

    def submit(self, request: gr.Request, state, shown_id, choice, level, *rest):
        # `request` comes first: Gradio injects gr.Request only among positional parameters.
        user = current_user(request)
        grades, justification = rest[:-1], rest[-1]
        if not state or state.get("assignment_id") is None or str(state["assignment_id"]) != str(shown_id):
            return self._message("This submission belongs to another pair; nothing was saved.")
        missing = [what for what, v in (("the better response (a/b)", choice), ("the level (1-4)", level)) if v is None]
        if any(g is None for g in grades):
            missing.append("all eight grades (q w e r / u i o p, then 0 1 2)")
        if missing:
            return self._message("Please choose " + ", ".join(missing) + ".")
        n = len(GRADE_DIMENSIONS)
        ga, gb = dict(zip(GRADE_DIMENSIONS, grades[:n])), dict(zip(GRADE_DIMENSIONS, grades[n:]))
        try:
            if state.get("edit_label"):
                label_id = self.store.edit(user, state["edit_label"], choice, int(level), ga, gb,
                                           justification, self.guideline_version)
            else:
                label_id = self.store.submit(user, state["assignment_id"], choice, int(level), ga, gb,
                                             justification, self.guideline_version)
        except ValueError as err:
            return self._message(f"Not saved: {md_escape(err)}")
        return self.view(user, self.store.next_pair(user), f"Saved label #{label_id}.")

    def skip(self, state, shown_id, reason, request: gr.Request):
        user = current_user(request)
        if not state or str(state.get("assignment_id")) != str(shown_id) or state.get("edit_label"):
            return self._message("Nothing to skip here.")
        try:
            self.store.skip(user, state["assignment_id"], reason)
        except ValueError as err:
            return self._message(f"Not skipped: {md_escape(err)}")
        return self.view(user, self.store.next_pair(user), "Skipped.")

    def undo(self, request: gr.Request):
        user = current_user(request)
        try:
            assignment = self.store.undo(user)
        except ValueError as err:
            return self._message(f"Nothing undone: {md_escape(err)}")
        return self.view(user, assignment, "Your last label was withdrawn: change it and submit again.")

    def recent_choices(self, request: gr.Request):
        user = current_user(request)
        rows = self.store.recent(user)
        choices = [(f"#{r['id']} · pair {r['pair_id']} · {r['choice']} "
                    f"{LEVEL_NAMES[r['level']].replace('_', ' ')}", r["id"]) for r in rows]
        table = [[r["id"], r["pair_id"], r["choice"], r["level"], r["guideline_version"]] for r in rows]
        return gr.update(choices=choices, value=None), table

    def edit_label(self, label_id, request: gr.Request):
        user = current_user(request)
        mine = {r["id"]: r for r in self.store.recent(user)}
        if label_id not in mine:
            return self._message("Choose one of your recent labels to edit.")
        assignment = self.store.assignment(user, mine[label_id]["assignment_id"])
        assignment.prefill = mine[label_id]
        return self.view(user, assignment, f"Editing label #{label_id}: change it and submit.", label_id)

    @staticmethod
    def _message(text: str) -> tuple:
        return (gr.skip(),) * (9 + 2 * len(GRADE_DIMENSIONS)) + (text, gr.skip())


def build_app(store: LabelStore, run: RunDir, guidelines: str | None = None) -> gr.Blocks:
    """The Blocks of the whole app (annotate, my labels, admin, compare)."""
    text, version = load_guidelines(guidelines)
    h = Handlers(store, version)
    with gr.Blocks(title="afm-align annotation", analytics_enabled=False) as demo:
        state = gr.State({"assignment_id": None, "edit_label": None})
        progress = gr.Markdown(elem_id="progress")
        with gr.Tab("Annotate"):
            with gr.Accordion("Guidelines (g)", open=False, elem_id="guidelines"):
                gr.Markdown(text)
                gr.Markdown(f"Guideline version: `{version}`")
            prompt = gr.HTML(elem_id="prompt", js_on_load=None)
            grades = []
            with gr.Row(equal_height=False):
                responses = []
                for side in ("a", "b"):
                    with gr.Column():
                        gr.Markdown(f"### Response {side.upper()}")
                        responses.append(gr.HTML(elem_id=f"response-{side}", container=True, padding=True,
                                                 js_on_load=None))
                        for j, dim in enumerate(GRADE_DIMENSIONS):
                            keys = "qwer" if side == "a" else "uiop"
                            grades.append(gr.Radio(GRADE_CHOICES, label=f"{dim.replace('_', ' ')} ({keys[j]})",
                                                   elem_id=f"grade-{side}-{j}"))
            with gr.Row():
                choice = gr.Radio(["A", "B"], label="Better response (a / b)", elem_id="choice")
                level = gr.Radio(LEVEL_CHOICES, label="By how much (1-4)", elem_id="level")
            justification = gr.Textbox(label="Justification (n; optional)", lines=2, max_length=MAX_TEXT,
                                       elem_id="justification")
            with gr.Row():
                submit = gr.Button("Submit (Enter)", variant="primary", elem_id="submit-btn")
                undo = gr.Button("Undo last (z)", elem_id="undo-btn")
                skip_reason = gr.Textbox(label="Skip reason (s, then Enter)", max_length=MAX_TEXT,
                                         elem_id="skip-reason", scale=2)
                skip = gr.Button("Skip", elem_id="skip-btn")
            shown_id = gr.Textbox(visible=False)
            message = gr.Markdown(elem_id="message")
            gr.Markdown(SHORTCUTS)
        outputs = [state, shown_id, prompt, *responses, choice, level, *grades, justification, skip_reason,
                   message, progress]
        with gr.Tab("My labels"):
            refresh = gr.Button("Refresh my labels")
            picked = gr.Dropdown(label="Edit one of your recent labels (it opens in Annotate)", choices=[])
            mine = gr.Dataframe(headers=["label", "pair", "choice", "level", "guidelines"], interactive=False)
        admin = admin_tab.build(store)
        compare = compare_tab.build(run, store)

        demo.load(h.load, None, outputs, **PRIVATE)
        demo.load(admin_tab.visibility(store), None, [admin, compare], **PRIVATE)
        form = [state, shown_id, choice, level, *grades, justification]
        submit.click(h.submit, form, outputs, concurrency_limit=None, **PRIVATE)
        for event in (skip.click, skip_reason.submit):
            event(h.skip, [state, shown_id, skip_reason], outputs, concurrency_limit=None, **PRIVATE)
        undo.click(h.undo, None, outputs, concurrency_limit=None, **PRIVATE)
        refresh.click(h.recent_choices, None, [picked, mine], **PRIVATE)
        picked.input(h.edit_label, picked, outputs, **PRIVATE)
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
