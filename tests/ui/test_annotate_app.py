"""The annotation app's handlers (no browser) and the served app's login wall and request bound."""
import http.client
import http.cookiejar
import socket
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest

from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir

from ui import annotate_app
from ui.admin_tab import admin_figures

N_GRADES = 8
MESSAGE = -2          # index of the message in the handlers' outputs


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
    assert view[1] and "Pair p" in view[2] and "Logged in as **ann1**" in view[-1]
    first_pair = view[2].split("<strong>Pair ")[1].split("</strong>")[0]
    out = h.submit(_req("ann1"), *_form(view, choice=None))
    assert "Please choose the better response" in out[MESSAGE] and store.labels() == []
    out = h.submit(_req("ann1"), *_form(view)[:1], "999", *_form(view)[2:])
    assert "another pair" in out[MESSAGE] and store.labels() == []
    nxt = h.submit(_req("ann1"), *_form(view, level=3, why="clear"))
    assert nxt[MESSAGE].startswith("Saved label #") and nxt[1] != view[1]
    [label] = store.labels()
    assert (label["pair_id"], label["level"], label["justification"], label["guideline_version"]) == (
        first_pair, 3, "clear", "gv-test")
    back = h.undo(_req("ann1"))
    assert back[1] == view[1] and back[5] == "A" and back[6] == 3 and "withdrawn" in back[MESSAGE]
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
        if not view[1] or not view[2].startswith("<p><strong>Pair ") or "round -" not in view[2]:
            break
        for html_out in view[2:5]:
            assert_inert(html_out, view[2][:80])
        h.skip(view[0], view[1], "payload seen", request=_req("ann1"))
        seen += 1
    assert seen == len(markup_payloads)


def test_edit_from_my_labels_and_no_cross_user_edit(app):
    store, h = app
    view = h.load(_req("ann1"))
    h.submit(_req("ann1"), *_form(view, choice="B", level=1))
    [label] = store.labels()
    refused = h.edit_label(label["id"], request=_req("ann2"))
    assert "recent labels" in refused[MESSAGE]
    choices, table = h.recent_choices(_req("ann1"))
    assert [c[1] for c in choices["choices"]] == [label["id"]] and table[0][0] == label["id"]
    editing = h.edit_label(label["id"], request=_req("ann1"))
    assert editing[5] == "B" and editing[0]["edit_label"] == label["id"]
    h.submit(_req("ann1"), *_form(editing, choice="A", level=0))
    current = store.labels()
    assert len(current) == 1 and current[0]["level"] == 0 and current[0]["supersedes"] == label["id"]


def test_skip_needs_a_reason(app):
    store, h = app
    view = h.load(_req("ann1"))
    assert "Not skipped" in h.skip(view[0], view[1], "", request=_req("ann1"))[MESSAGE]
    out = h.skip(view[0], view[1], "cannot judge code", request=_req("ann1"))
    assert out[MESSAGE] == "Skipped." and store.assignments("ann1")[0]["state"] == "skipped"


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
