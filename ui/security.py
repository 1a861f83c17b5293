"""What keeps the apps safe: login backed by the label store, throttled and revocable; roles; bounded
requests; model text that cannot act.

- `safe_html(text)`: model text (prompts, responses, completions) as HTML that cannot act. It is parsed
  by markdown-it-py with raw HTML off (every `<`, `>`, `&` of the text comes out escaped) and with
  images, links, autolinks and link references off (a URL a model wrote is shown as text: nothing is
  fetched and there is nothing to click), then cleaned by nh3 with an allow-list of text tags only
  (`ALLOWED_TAGS`: paragraphs, emphasis, code, lists, headings, tables) and no attribute but `<ol start>`:
  no forms, inputs, images, frames, SVG, styles, classes, ids or event handlers can survive either step.
  The apps show it with `gr.HTML`, which inserts the string as it is (Gradio's Markdown component would
  parse it again). `messages_html(messages)` does the same for a chat prompt; `esc` escapes any value
  interpolated into our own HTML (pair ids, member names, ...); `md_escape` escapes a value interpolated
  into markdown that Gradio renders (the admin tab's notes).
- `auth_callable(store)`: Gradio's `auth=` callable; only a stored user with the right password logs in
  (Gradio then guards /config and the queue behind its session cookie).
- `LoginGuard` + `GuardMiddleware` (ASGI, in front of Gradio):
  * throttles logins per user name and per client address (`LoginThrottle`: after 5 failures a key is
    locked for 30 s, doubling with each further lockout up to an hour; a success clears it; a locked
    login is answered 429 without checking the password; every lockout is logged);
  * revokes sessions: a session is tied to the credential stamp of its user at login
    (`LabelStore.credential_stamp`, which changes with every password change); a request whose
    session's stamp is stale, or whose user is gone, has every such session of that user deleted and
    is treated as anonymous (so `afm-align annotators passwd` in another process logs everyone out);
  * allows an anonymous request only to the routes the login page needs (`ANONYMOUS_PATHS` and
    `ANONYMOUS_PREFIXES`); anything else is 401 without a login, and routes the app never uses
    (`BLOCKED_PATHS`/`BLOCKED_PREFIXES`: OpenAPI schema, monitoring, dev reload, proxy, vibe editing)
    are 404 for everyone.
  The client address is the socket's peer (`scope["client"]`): behind a reverse proxy all users share
  the proxy's address, so throttling then acts per user name (and per proxy address).
- `current_user(request)` / `require_admin(store, request)`: the user comes from the session cookie
  (never from an input the browser sends), and the admin pages check the role on the server.
- `BodyLimit`: a pure ASGI middleware answering 413 to a request body over `max_bytes`.

Run: `python -c "from ui.security import safe_html; print(safe_html('<b>hi</b> `<i>`'))"`.
"""
from __future__ import annotations

import html
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable

import nh3
from markdown_it import MarkdownIt

from afm_align.errors import UserError

MAX_BODY_BYTES = 1_000_000
# Event listeners are not exposed as API endpoints (no API docs, not callable by Gradio clients).
PRIVATE = {"api_visibility": "private"}
log = logging.getLogger("afm_align.ui.login")

# ---- model text ---------------------------------------------------------------------------------
ALLOWED_TAGS = {"p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote", "ul", "ol", "li",
                "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td"}
ALLOWED_ATTRIBUTES = {"ol": {"start"}}
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.enable(["table", "strikethrough"])
_MD.disable(["image", "link", "autolink", "html_inline", "html_block", "reference"])
_CLEAN = {"tags": ALLOWED_TAGS, "attributes": ALLOWED_ATTRIBUTES, "url_schemes": set(), "strip_comments": True,
          "link_rel": None}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def sanitize(fragment: str) -> str:
    """An HTML fragment reduced to the text tags of `ALLOWED_TAGS` (every attribute but <ol start> dropped)."""
    return nh3.clean(fragment or "", **_CLEAN)


def safe_html(text) -> str:
    """Model text as inert HTML: markdown without raw HTML, images or links, then the nh3 allow-list."""
    return sanitize(_MD.render("" if text is None else str(text)))


def messages_html(messages) -> str:
    """A chat prompt as inert HTML: one bold role line and the content per message."""
    if not isinstance(messages, list):
        return safe_html(messages)
    parts = []
    for m in messages:
        m = m if isinstance(m, dict) else {"role": "?", "content": m}
        parts.append(f"<p><strong>{esc(m.get('role', '?'))}:</strong></p>\n{safe_html(m.get('content', ''))}")
    return sanitize("\n".join(parts))


def esc(value) -> str:
    """A value interpolated into our own HTML, escaped (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def md_escape(value) -> str:
    """A value interpolated into markdown that Gradio renders: HTML-escaped and markdown-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape("" if value is None else str(value), quote=True))


# ---- login --------------------------------------------------------------------------------------
def auth_callable(store):
    """Gradio's `auth=` callable checking name and password against the label store."""
    def check(username: str, password: str) -> bool:
        if not username or not password or len(username) > 64 or len(password) > 256:
            return False
        return store.check_password(username, password)
    return check


class LoginThrottle:
    """Failed-login counting per user name and per client address, with doubling lockouts.

    After `max_failures` failures of a key (within `window_seconds` of each other) the key is locked
    for `lock_seconds`, then twice as long after the next `max_failures`, and so on up to
    `max_lock_seconds`; a key quiet for `window_seconds` and not locked is forgotten. `success` clears
    both keys of a login. `clock` is injectable (tests).
    """

    def __init__(self, max_failures: int = 5, lock_seconds: float = 30.0, max_lock_seconds: float = 3600.0,
                 window_seconds: float = 900.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        self.max_failures, self.lock_seconds, self.max_lock_seconds = max_failures, lock_seconds, max_lock_seconds
        self.window_seconds, self.clock, self.max_keys = window_seconds, clock, max_keys
        self._state: dict[tuple[str, str], dict] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, address: str) -> list[tuple[str, str]]:
        return [("user", (user or "")[:64]), ("address", address or "?")]

    def wait(self, user: str, address: str) -> float:
        """Seconds until a login of `user` from `address` may be tried (0: now)."""
        now = self.clock()
        with self._lock:
            return max([s["locked_until"] - now for k in self._keys(user, address)
                        if (s := self._state.get(k))] + [0.0])

    def failure(self, user: str, address: str) -> float:
        """Count a failed login; returns the lock (seconds) it started, 0 if none."""
        now, started = self.clock(), 0.0
        with self._lock:
            if len(self._state) >= self.max_keys:
                self._forget(now)
            for key in self._keys(user, address):
                s = self._state.get(key)
                if s is None or (now - s["last"] > self.window_seconds and now >= s["locked_until"]):
                    s = self._state[key] = {"failures": 0, "lockouts": 0, "locked_until": 0.0, "last": now}
                s["failures"] += 1
                s["last"] = now
                if s["failures"] >= self.max_failures:
                    s["lockouts"] += 1
                    s["failures"] = 0
                    seconds = min(self.lock_seconds * 2 ** (s["lockouts"] - 1), self.max_lock_seconds)
                    s["locked_until"] = now + seconds
                    started = max(started, seconds)
                    log.warning("login throttled: %d failed logins for %s %r; locked for %.0f s (lockout %d)",
                                self.max_failures, key[0], key[1], seconds, s["lockouts"])
        return started

    def success(self, user: str, address: str) -> None:
        with self._lock:
            for key in self._keys(user, address):
                self._state.pop(key, None)

    def _forget(self, now: float) -> None:
        for key, s in list(self._state.items()):
            if now >= s["locked_until"] and now - s["last"] > self.window_seconds:
                del self._state[key]
        while len(self._state) >= self.max_keys:       # still full: drop the oldest
            del self._state[min(self._state, key=lambda k: self._state[k]["last"])]


ANONYMOUS_PATHS = {"/", "/login", "/login/", "/logout", "/config", "/config/", "/favicon.ico", "/theme.css",
                   "/robots.txt", "/manifest.json", "/pwa_icon", "/gradio_api/theme.css",
                   "/gradio_api/login_check", "/gradio_api/login_check/",
                   "/gradio_api/startup-events"}   # launch() calls it once, anonymously; then a no-op
ANONYMOUS_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/")
BLOCKED_PATHS = {"/openapi.json", "/gradio_api/openapi.json", "/docs", "/redoc", "/gradio_api/dev/reload",
                 "/gradio_api/undo-vibe-edit", "/gradio_api/undo-vibe-edit/", "/gradio_api/process_recording"}
BLOCKED_PREFIXES = ("/monitoring", "/gradio_api/vibe-", "/gradio_api/proxy=", "/docs/", "/redoc/")
_TOKEN_COOKIE = "access-token-"


def _cookies(scope) -> dict[str, str]:
    out = {}
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key:
                    out[key] = val
    return out


class LoginGuard:
    """The state behind `GuardMiddleware`: the throttle and the credential stamp of every session."""

    def __init__(self, store, throttle: LoginThrottle | None = None):
        self.store, self.throttle = store, throttle or LoginThrottle()
        self.sessions: dict[str, tuple[str, str | None]] = {}     # token -> (user, stamp at login)
        self._lock = threading.Lock()

    def user(self, scope) -> str | None:
        """The user of the request's session, or None; stale sessions of that user are deleted first."""
        tokens = getattr(scope.get("app"), "tokens", None)
        if tokens is None:
            return None
        for name, token in _cookies(scope).items():
            if not name.startswith(_TOKEN_COOKIE) or token not in tokens:
                continue
            user = tokens.get(token)
            current = self.store.credential_stamp(user) if user else None
            with self._lock:
                record = self.sessions.get(token)
                if user and current is not None and record == (user, current):
                    return user
                self._revoke(tokens, user, current)
        return None

    def _revoke(self, tokens: dict, user, current) -> None:
        """Delete every session of `user` that does not carry its current stamp (all of them if gone)."""
        for token, owner in list(tokens.items()):
            if owner == user and (current is None or self.sessions.get(token) != (user, current)):
                tokens.pop(token, None)
                self.sessions.pop(token, None)
                log.warning("session of %r revoked (password changed, account gone or unknown session)", user)

    def logged_in(self, token: str, user: str, stamp: str | None, tokens: dict | None = None) -> None:
        with self._lock:
            if tokens is not None:          # forget sessions Gradio has dropped (log-outs)
                for old in [t for t in self.sessions if t not in tokens]:
                    del self.sessions[old]
            self.sessions[token] = (user, stamp)


class GuardMiddleware:
    """ASGI middleware: route allow-list, session revocation and login throttling (see the docstring)."""

    def __init__(self, app, guard: LoginGuard):
        self.app, self.guard = app, guard

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in BLOCKED_PATHS or path.startswith(BLOCKED_PREFIXES):
            return await _refuse(scope, send, 404, "not found")
        if scope["type"] == "http" and scope.get("method") == "POST" and path in ("/login", "/login/"):
            return await self._login(scope, receive, send)
        user = self.guard.user(scope)
        if user is None and not (path in ANONYMOUS_PATHS or path.startswith(ANONYMOUS_PREFIXES)):
            return await _refuse(scope, send, 401, "not logged in")
        return await self.app(scope, receive, send)

    async def _login(self, scope, receive, send):
        from starlette.requests import Request

        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        try:
            form = await Request(dict(scope), replay).form()
            user = str(form.get("username") or "").strip()
        except Exception:       # a malformed form: Gradio answers it (422), it still counts as a failure
            user = ""
        sent = False
        address = (scope.get("client") or ("?",))[0]
        wait = self.guard.throttle.wait(user, address)
        if wait > 0:
            log.warning("login of %r from %s refused: throttled for %.0f more s", user, address, wait)
            return await _refuse(scope, send, 429, f"Too many failed logins: try again in {math.ceil(wait)} s.",
                                 [(b"retry-after", str(math.ceil(wait)).encode())])
        stamp = self.guard.store.credential_stamp(user) if user else None
        succeeded = False

        async def watch(message):
            nonlocal succeeded
            if message["type"] == "http.response.start" and message["status"] == 200:
                for name, value in message.get("headers") or []:
                    if name.lower() == b"set-cookie" and value.startswith(_TOKEN_COOKIE.encode()):
                        token = value.split(b";", 1)[0].split(b"=", 1)[1].decode("latin-1")
                        # Recorded before the client hears of the token, so its next request finds it.
                        self.guard.logged_in(token, user, stamp, getattr(scope.get("app"), "tokens", None))
                        succeeded = True
                if succeeded:
                    self.guard.throttle.success(user, address)
            await send(message)
        try:
            await self.app(scope, replay, watch)
        finally:
            if not succeeded:
                self.guard.throttle.failure(user, address)


async def _refuse(scope, send, status: int, text: str, headers: list | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


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
