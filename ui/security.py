"""What keeps the apps safe: login backed by the label store, roles, bounded requests, inert model text.

- `auth_callable(store)`: Gradio's `auth=` callable; only a stored user with the right password logs in
  (Gradio then guards every route, /config and the queue included, behind its session cookie).
- `current_user(request)` / `require_admin(store, request)`: the user comes from the session cookie
  (never from an input the browser sends), and the admin pages check the role on the server.
- `BodyLimit`: a pure ASGI middleware answering 413 to a request body over `max_bytes`.
- `safe_markdown(text)`: model text shown as text: HTML outside code blocks is escaped (so `<script>`
  is displayed, not run); code blocks and spans are left to the markdown renderer, which shows them
  literally; images are neutralised (no request to a URL a model wrote). Gradio's own sanitiser
  (`sanitize_html=True`) stays on as a second layer.

Run: `python -c "from ui.security import safe_markdown; print(safe_markdown('<b>hi</b> `<i>`'))"`.
"""
from __future__ import annotations

import html
import re

from afm_align.errors import UserError

MAX_BODY_BYTES = 1_000_000
# Event listeners are not exposed as API endpoints (no API docs, not callable by Gradio clients).
PRIVATE = {"api_visibility": "private"}
_CODE = re.compile(r"(^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)|^[ \t]*~~~.*?(?:^[ \t]*~~~[^\n]*$|\Z)|`[^`\n]+`)",
                   re.S | re.M)


def safe_markdown(text: str) -> str:
    """Markdown whose HTML outside code shows as text and whose images become plain links."""
    parts = _CODE.split(text or "")
    out = []
    for i, part in enumerate(parts):
        if i % 2:        # a code block or span: markdown renders its content literally
            out.append(part)
        else:
            out.append(html.escape(part, quote=False).replace("![", "!\\["))
    return "".join(out)


def messages_markdown(messages) -> str:
    """A chat prompt as markdown: one bold role line and the safe content per message."""
    if isinstance(messages, str):
        return safe_markdown(messages)
    return "\n\n".join(f"**{html.escape(str(m.get('role', '?')))}:**\n\n{safe_markdown(m.get('content', ''))}"
                       for m in messages)


def auth_callable(store):
    """Gradio's `auth=` callable checking name and password against the label store."""
    def check(username: str, password: str) -> bool:
        if not username or not password or len(username) > 64 or len(password) > 256:
            return False
        return store.check_password(username, password)
    return check


def current_user(request) -> str:
    """The logged-in user of a Gradio request; a request without one is refused."""
    user = getattr(request, "username", None)
    if not user:
        raise PermissionError("not logged in")
    return user


def require_admin(store, request) -> str:
    """The logged-in user if they have the admin role; anyone else is refused."""
    user = current_user(request)
    if not store.user(user)["admin"]:
        raise PermissionError(f"'{user}' does not have the admin role")
    return user


class BodyLimit:
    """ASGI middleware: requests whose body exceeds `max_bytes` get 413 and never reach the app."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _too_large(send)
        seen = 0

        async def bounded_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise UserError("request body too large")
            return message
        return await self.app(scope, bounded_receive, send)


async def _too_large(send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"request body too large"})
