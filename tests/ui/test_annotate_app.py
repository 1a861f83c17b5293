"""The annotation app's handlers (no browser) and the served app's login wall and request bound."""
import html
import http.client
import http.cookiejar
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest

from afm_align import label_store
from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir

from ui import annotate_app
from ui.admin_tab import admin_figures
from ui.annotate_app import FORM, MESSAGE, N_GRADES, PROGRESS


def _text(value) -> str:
    """An HTML output as the page shows it (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(value)))


def _msg(out) -> str:
    return _text(out[MESSAGE])


@pytest.fixture
def app(tmp_path, pairs):
    store = LabelStore(tmp_path / "labels.sqlite", seed=1)
    store.add_user("ann1", "ann1-password")
    store.add_user("ann2", "ann2-password")
    store.add_user("boss", "boss-password", admin=True)
    store.add_pairs(pairs(3), round=1, k=2)
    return store, annotate_app.Handlers(store, "gv-test")


def _req(user):
    return SimpleNamespace(username=user)


def _form(view, choice="A", level=2, grade=1, why=""):
    """The submit handler's inputs for what `view` shows."""
    return (view[0], view[1], choice, level, *([grade] * N_GRADES), why)


def test_load_submit_undo_flow(app):
    store, h = app
    view = h.load(_req("ann1"))
    assert view[1] and f"Item {view[1]}" in view[2] and "Logged in as ann1" in _text(view[PROGRESS])
    first_pair = store.assignments("ann1")[0]["pair_id"]
    out = h.submit(_req("ann1"), *_form(view, choice=None))
    assert "Please choose the better response" in _msg(out) and store.labels() == []
    out = h.submit(_req("ann1"), *_form(view)[:1], "999", *_form(view)[2:])
    assert "another item" in _msg(out) and store.labels() == []
    nxt = h.submit(_req("ann1"), *_form(view, level=3, why="clear"))
    assert _msg(nxt).startswith("Saved label #") and nxt[1] != view[1]
    [label] = store.labels()
    assert (label["pair_id"], label["level"], label["justification"], label["guideline_version"]) == (
        first_pair, 3, "clear", "gv-test")
    back = h.undo(_req("ann1"))
    assert back[1] == view[1] and back[5] == "A" and back[6] == 3 and "withdrawn" in _msg(back)
    assert store.labels() == []                                  # retracted, history kept
    assert len(store.labels(current_only=False)) == 2


def test_model_html_is_inert(app):
    store, h = app
    store.add_pairs([{"pair_id": "x", "prompt": "<script>alert(1)</script>", "response_a": "<b>a</b> `<i>`",
                      "response_b": "<img src=x onerror=alert(1)>"}], round=0, k=1)
    view = h.load(_req("ann2"))     # round 0 comes first
    text = "".join(view[2:5])
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    assert "<code>&lt;i&gt;</code>" in text     # code spans stay literal


def test_pair_id_role_and_payload_texts_are_inert(app, markup_payloads, assert_inert):
    store, h = app
    for i, (name, payload) in enumerate(markup_payloads.items()):
        store.add_pairs([{"pair_id": f"{payload}#{i}", "prompt": [{"role": payload, "content": payload}],
                          "response_a": payload, "response_b": payload}], round=-1 - i, k=1)
    seen = 0
    while True:
        view = h.load(_req("ann1"))
        if not view[1] or not view[2].startswith("<p><strong>Item ") or "round -" not in view[2]:
            break
        for html_out in view[2:5]:
            assert_inert(html_out, view[2][:80])
        assert "#" not in _text(view[2]).split("\n")[0]          # the pair id (payload#i) is never shown
        h.skip(view[0], view[1], "payload seen", request=_req("ann1"))
        seen += 1
    assert seen == len(markup_payloads)


def test_edit_from_my_labels_and_no_cross_user_edit(app):
    store, h = app
    view = h.load(_req("ann1"))
    h.submit(_req("ann1"), *_form(view, choice="B", level=1))
    [label] = store.labels()
    refused = h.edit_label(label["id"], request=_req("ann2"))
    assert "recent labels" in _text(refused[MESSAGE - 1])
    choices, table = h.recent_choices(_req("ann1"))
    assert [c[1] for c in choices["choices"]] == [label["id"]] and table[0][0] == label["id"]
    assert table[0][3] == "2 · slightly better" and "2 · slightly better" in choices["choices"][0][0]  # keys 1-4
    editing = h.edit_label(label["id"], request=_req("ann1"))
    assert editing[5] == "B" and editing[0]["edit_label"] == label["id"]
    assert editing[-1].selected == "annotate"                   # edit switches to the Annotate tab
    editing = editing[:-1]
    h.submit(_req("ann1"), *_form(editing, choice="A", level=0))
    current = store.labels()
    assert len(current) == 1 and current[0]["level"] == 0 and current[0]["supersedes"] == label["id"]


def test_skip_needs_a_reason(app):
    store, h = app
    view = h.load(_req("ann1"))
    assert "Not skipped" in _msg(h.skip(view[0], view[1], "", request=_req("ann1")))
    out = h.skip(view[0], view[1], "cannot judge code", request=_req("ann1"))
    assert _msg(out) == "Skipped." and store.assignments("ann1")[0]["state"] == "skipped"


def test_admin_figures_need_the_admin_role(app):
    store, h = app
    with pytest.raises(PermissionError):
        admin_figures(store, "ann1")
    summary, alpha, kappa, stats = admin_figures(store, "boss")
    assert "**3** pairs queued" in summary and len(alpha) == 6 and len(stats) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_app_needs_login_and_bounds_requests(tmp_path):
    run = RunDir(tmp_path / "runs" / "served").ensure()
    LabelStore(run.labels).add_user("ann1", "ann1-password")
    demo, url = annotate_app.serve(run, port=_free_port(), block=False)
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        for path in ("config", "gradio_api/info"):
            with pytest.raises(urllib.error.HTTPError, match="401"):
                opener.open(url + path)

        def login(password):
            data = urllib.parse.urlencode({"username": "ann1", "password": password}).encode()
            return opener.open(url + "login", data=data)
        with pytest.raises(urllib.error.HTTPError, match="400"):
            login("wrong-password")
        assert login("ann1-password").status == 200
        assert opener.open(url + "config").status == 200
        conn = http.client.HTTPConnection("127.0.0.1", int(url.rstrip("/").rsplit(":", 1)[1]), timeout=10)
        conn.putrequest("POST", "/gradio_api/queue/join")
        conn.putheader("Content-Length", "2000000")
        conn.endheaders()           # the body is never sent: the bound answers from the header alone
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        demo.close()


# ---- issue 20: opaque ids, progress, quota, grades setting, stale tabs, leases ----------------------
REVEALING = ["r1-q7-violate_ends_with-50", "r1-q8-wrong_operator-40", "r1-q9-truncated-30"]


def _outputs_text(*outs) -> str:
    return " ".join(_text(v) if not isinstance(v, dict) else str(v) for out in outs for v in out)


def test_annotators_never_see_a_pair_id(tmp_path, pairs):
    store = LabelStore(tmp_path / "labels.sqlite", seed=3)
    store.add_user("ann", "ann-password")
    store.add_pairs([dict(p, pair_id=pid) for p, pid in zip(pairs(3), REVEALING)], round=1, k=1)
    h = annotate_app.Handlers(store, "gv")
    first = h.load(_req("ann"))
    saved = h.submit(_req("ann"), *_form(first, why="fine"))
    stale = h.submit(_req("ann"), *_form(first))                       # a second tab of the same item
    skipped = h.skip(saved[0], saved[1], "cannot judge", request=_req("ann"))
    recent = h.recent_choices(_req("ann"))
    label = store.labels()[0]["id"]
    edit = h.edit_label(label, request=_req("ann"))[:-1]
    undone = h.undo(_req("ann"))
    shown = _outputs_text(first, saved, stale, skipped, edit, undone) + str(recent[0]) + str(recent[1])
    for pair_id in REVEALING:
        for part in (pair_id, pair_id.split("-", 2)[-1], "violate", "wrong_operator"):
            assert part not in shown, part
    assert f"Item {first[1]}" in _text(first[2])                      # the opaque number is what is shown


def test_progress_bar_counts_done_of_the_quota_or_of_what_is_available(app):
    store, h = app
    view = h.load(_req("ann1"))
    assert 'value="0" max="3"' in view[PROGRESS] and "labelled 0 / 3" in _text(view[PROGRESS])
    view = h.submit(_req("ann1"), *_form(view))
    assert 'value="1" max="3"' in view[PROGRESS]
    store.set_user("ann2", quota=2)
    view = h.load(_req("ann2"))
    assert 'value="0" max="2"' in view[PROGRESS] and "0 / 2 (your quota)" in _text(view[PROGRESS])


def test_at_quota_the_page_says_so_and_hides_the_form(app):
    store, h = app
    store.set_user("ann1", quota=1)
    view = h.submit(_req("ann1"), *_form(h.load(_req("ann1"))))
    assert view[1] == "" and "reached your quota of 1" in _text(view[2])
    assert "Nothing left" not in _text(view[2]) and view[FORM]["visible"] is False
    assert "quota reached" in _text(view[PROGRESS]) and "more pairs available" not in _text(view[PROGRESS])
    store.set_user("ann1", quota=0)                                    # no quota: the form comes back
    view = h.load(_req("ann1"))
    assert view[1] and view[FORM]["visible"] is True
    for _ in range(2):
        view = h.submit(_req("ann1"), *_form(view))
    assert "Nothing left to label" in _text(view[2]) and "0 more pairs available" in _text(view[PROGRESS])


@pytest.mark.parametrize("mode", ["required", "optional", "off"])
def test_grades_follow_the_project_setting(app, mode):
    store, _ = app
    store.set_settings(grades=mode)
    h = annotate_app.Handlers(store, "gv")
    view = h.load(_req("ann1"))
    out = h.submit(_req("ann1"), *_form(view, grade=None))
    if mode == "required":
        assert "all eight grades" in _msg(out) and store.labels() == []
        return
    assert _msg(out).startswith("Saved label")
    assert store.labels()[0]["grades_a"] == dict.fromkeys(store.labels()[0]["grades_a"])   # all None
    out = h.submit(_req("ann1"), *_form(out, grade=2))
    assert set(store.labels()[1]["grades_a"].values()) == ({None} if mode == "off" else {2})


def test_a_stale_second_tab_says_so_and_moves_on(app):
    store, h = app
    tab1 = h.load(_req("ann1"))
    tab2 = h.load(_req("ann1"))                                          # the same open item, another tab
    assert tab1[1] == tab2[1]
    nxt = h.submit(_req("ann1"), *_form(tab1))
    out = h.submit(_req("ann1"), *_form(tab2, choice="B"))
    assert f"Not saved: item {tab1[1]} was already labelled" in _msg(out)
    assert out[1] == nxt[1] and out[FORM]["visible"] is True             # on to the next open item
    assert f'data-closed="ann1/{tab1[1]}"' in out[MESSAGE]              # its draft is dropped
    assert [label["better"] for label in store.labels()] == ["a" if not store.assignments("ann1")[0]["swapped"]
                                                            else "b"]
    again = h.skip(tab2[0], tab2[1], "stale", request=_req("ann1"))
    assert "Not skipped" in _msg(again) and again[1] == nxt[1]


def test_an_expired_lease_gives_the_pair_to_another_annotator(app, monkeypatch):
    store, h = app
    store.set_settings(lease_minutes=1)
    for user in ("ann1", "ann2"):
        store.set_user(user, quota=None)
    clock = [1000.0]
    monkeypatch.setattr(label_store, "time", SimpleNamespace(time=lambda: clock[0]))
    store.add_pairs([{"pair_id": "solo", "prompt": "q", "response_a": "x", "response_b": "y"}], round=0, k=1)
    view = h.load(_req("ann1"))
    assert store.assignments("ann1")[0]["pair_id"] == "solo"
    assert h.load(_req("boss"))[1] != view[1] and store.assignments("boss")[0]["pair_id"] != "solo"
    clock[0] += 61                                                       # ann1 walked away
    taken = store.next_pair("ann2")
    assert taken.pair_id == "solo" and store.assignments("ann1")[0]["state"] == "expired"
    out = h.submit(_req("ann1"), *_form(view))
    assert "went to another annotator after its lease ran out" in _msg(out) and out[1] != view[1]
    assert store.progress("ann1")["expired"] == 1


def test_the_page_loads_my_labels_and_shortcuts_follow_the_setting(app):
    store, _ = app
    store.set_settings(grades="off")
    demo = annotate_app.build_app(store, RunDir(store.path.parent))
    fns = [getattr(dep.fn, "__name__", "") for dep in demo.fns.values()]
    loads = [getattr(dep.fn, "__name__", "") for dep in demo.fns.values()
             if any(t[1] == "load" for t in dep.targets)]
    assert "recent_choices" in loads and "load" in loads                 # My labels filled on page load
    assert fns.count("recent_choices") >= 3                               # ... and after save and undo
    config = str(demo.config)
    assert "then `0` `1` `2`" not in config and "grades are not asked" in config
