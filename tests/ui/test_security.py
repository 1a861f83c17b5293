"""Inert rendering of model text, the store-backed login check, login throttling, session revocation,
the anonymous route allow-list, the request-size bound."""
import asyncio
import http.cookiejar
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir
from ui.security import BodyLimit, LoginThrottle, auth_callable, esc, md_escape, messages_html, safe_html

def test_every_payload_renders_inert(markup_payloads, assert_inert):
    assert len(markup_payloads) >= 33
    for name, payload in markup_payloads.items():
        assert_inert(safe_html(payload), name)
        assert_inert(messages_html([{"role": payload, "content": payload}, {"role": "assistant", "content": name}]),
                     f"{name} (chat prompt)")
        assert_inert(messages_html(payload), f"{name} (string prompt)")


def test_the_issue_payloads_show_as_text(markup_payloads):
    out = safe_html(markup_payloads["fence with a backtick in its info string"])
    assert "&lt;form" in out and "log in again" in out                  # visible, as text
    out = safe_html(markup_payloads["escaped backtick read as a code span"])
    assert "&lt;img" in out and "http://evil.example/beacon.png" in out
    out = safe_html(markup_payloads["fenced block followed by a tag"])
    assert "<pre><code>code" in out and "&lt;div" in out


def test_markdown_still_renders_and_html_shows_as_text():
    text = ("Hi <script>alert(1)</script> `<b>kept</b>` **bold** *it*\n\n```html\n<script>x()</script>\n```\n"
            "then ![t](http://e/x.png) and [a link](http://e/) \n\n| a | b |\n|--:|---|\n| 1 | 2 |\n\n3. three")
    out = safe_html(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<code>&lt;b&gt;kept&lt;/b&gt;</code>" in out and "<strong>bold</strong>" in out and "<em>it</em>" in out
    assert "<pre><code>&lt;script&gt;x()&lt;/script&gt;\n</code></pre>" in out          # code stays literal
    assert "![t](http://e/x.png)" in out and "[a link](http://e/)" in out               # shown, not fetched/linked
    assert "<table>" in out and "<td>1</td>" in out and '<ol start="3">' in out
    assert "&lt;img" in messages_html([{"role": "user", "content": "<img src=x>"}])
    assert safe_html(None) == "" and "42" in safe_html(42)


def test_interpolated_values_are_escaped():
    assert esc('<img src="x">') == "&lt;img src=&quot;x&quot;&gt;"
    assert md_escape("[x](javascript:alert(1)) <b>") == r"\[x\]\(javascript:alert\(1\)\) &lt;b&gt;"


def test_auth_callable_checks_the_store(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite")
    store.add_user("ann", "ann-password")
    check = auth_callable(store)
    assert check("ann", "ann-password")
    assert not check("ann", "wrong-password") and not check("nobody", "ann-password") and not check("ann", "")


def test_body_limit_answers_413():
    sent, reached = [], []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    limited = BodyLimit(app, max_bytes=10)
    asyncio.run(limited({"type": "http", "path": "/big", "headers": [(b"content-length", b"11")]}, receive, send))
    asyncio.run(limited({"type": "http", "path": "/small", "headers": [(b"content-length", b"10")]}, receive, send))
    assert sent[0]["status"] == 413 and reached == ["/small"]


def test_throttle_locks_then_doubles_then_resets():
    now = [1000.0]
    throttle = LoginThrottle(max_failures=5, lock_seconds=30, clock=lambda: now[0])
    for _ in range(4):
        assert throttle.failure("ann", "10.0.0.1") == 0
    assert throttle.wait("ann", "10.0.0.1") == 0
    assert throttle.failure("ann", "10.0.0.1") == 30                  # the fifth failure locks
    assert throttle.wait("ann", "10.0.0.9") == 30                     # the user, from any address
    assert throttle.wait("bob", "10.0.0.1") == 30                     # the address, for any user
    assert throttle.wait("bob", "10.0.0.9") == 0
    now[0] += 29.5
    assert throttle.wait("ann", "10.0.0.1") == pytest.approx(0.5)
    now[0] += 1
    assert throttle.wait("ann", "10.0.0.1") == 0
    for _ in range(4):
        throttle.failure("ann", "10.0.0.1")
    assert throttle.failure("ann", "10.0.0.1") == 60                  # the next lockout doubles
    now[0] += 61
    throttle.success("ann", "10.0.0.1")                               # a success clears both keys
    for _ in range(4):
        assert throttle.failure("ann", "10.0.0.1") == 0
    assert throttle.failure("ann", "10.0.0.1") == 30                  # back to the first lockout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(opener, url, data=None, headers=None):
    try:
        return opener.open(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def _opener():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _login(opener, url, user, password):
    return _status(opener, url + "login", urllib.parse.urlencode({"username": user, "password": password}).encode())


@pytest.fixture
def served_app(tmp_path):
    """The served annotation app (in this process) with a login throttle on a fake clock."""
    from ui import annotate_app

    run = RunDir(tmp_path / "runs" / "sec").ensure()
    store = LabelStore(run.labels)
    store.add_user("ann1", "ann1-password")
    store.add_user("ann2", "ann2-password")
    now = [1000.0]
    throttle = LoginThrottle(max_failures=5, lock_seconds=30, clock=lambda: now[0])
    demo, url = annotate_app.serve(run, port=_free_port(), block=False, throttle=throttle)
    try:
        yield url, store, now
    finally:
        demo.close()


def test_served_login_is_throttled_and_reset_by_a_success(served_app):
    url, store, now = served_app
    op = _opener()
    assert [_login(op, url, "ann1", f"wrong-{i}") for i in range(5)] == [400] * 5
    assert _login(op, url, "ann1", "ann1-password") == 429            # even the right password, while locked
    assert _status(op, url + "config") == 401
    now[0] += 31
    assert _login(op, url, "ann1", "ann1-password") == 200            # the back-off passed
    assert _status(op, url + "config") == 200
    assert [_login(_opener(), url, "ann1", f"wrong-{i}") for i in range(4)] == [400] * 4   # counting restarted
    assert _login(_opener(), url, "ann1", "ann1-password") == 200


def test_password_change_revokes_sessions(served_app):
    url, store, _ = served_app
    first, second, other = _opener(), _opener(), _opener()
    assert _login(first, url, "ann1", "ann1-password") == 200 and _login(second, url, "ann1", "ann1-password") == 200
    assert _login(other, url, "ann2", "ann2-password") == 200
    assert _status(first, url + "config") == 200
    store.set_user("ann1", password="ann1-new-password")              # what `annotators passwd` does
    assert _status(first, url + "config") == 401 and _status(second, url + "config") == 401
    assert _status(other, url + "config") == 200                      # other users keep their session
    assert _login(first, url, "ann1", "ann1-password") == 400
    assert _login(first, url, "ann1", "ann1-new-password") == 200 and _status(first, url + "config") == 200


def test_routes_the_app_does_not_need_are_closed_without_login(served_app):
    url, _, _ = served_app
    anon = _opener()
    json_headers = {"Content-Type": "application/json"}
    assert _status(anon, url + "openapi.json") in (401, 404)
    assert _status(anon, url + "gradio_api/openapi.json") in (401, 404)
    assert _status(anon, url + "gradio_api/reset", b'{"event_id": "x"}', json_headers) in (401, 404)
    assert _status(anon, url + "gradio_api/cancel", b'{"event_id": "x", "session_hash": "y", "fn_index": 0}',
                   json_headers) in (401, 404)
    for path in ("gradio_api/info", "gradio_api/queue/join", "gradio_api/upload", "gradio_api/heartbeat/x",
                 "gradio_api/file=/etc/passwd", "monitoring", "config"):
        assert _status(anon, url + path) in (401, 404), path
    assert _status(anon, url) == 200                                   # the login page itself
    user = _opener()
    assert _login(user, url, "ann1", "ann1-password") == 200
    assert _status(user, url + "openapi.json") == 404                  # not used by the app, even logged in
    assert _status(user, url + "gradio_api/info") == 200
