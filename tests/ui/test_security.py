"""Safe rendering of model text, the store-backed login check, the request-size bound."""
import asyncio

from afm_align.label_store import LabelStore
from ui.security import BodyLimit, auth_callable, messages_markdown, safe_markdown


def test_html_outside_code_is_escaped():
    text = "Hi <script>alert(1)</script> `<b>kept</b>`\n\n```html\n<script>x()</script>\n```\nthen ![t](http://e/x.png)"
    out = safe_markdown(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "`<b>kept</b>`" in out and "```html\n<script>x()</script>\n```" in out   # code stays literal
    assert "!\\[t]" in out                                                           # no image fetch
    assert "&lt;img" in messages_markdown([{"role": "user", "content": "<img src=x>"}])


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
