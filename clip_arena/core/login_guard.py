"""Sign-in attempts that can neither stall the app nor tell names apart.

On main a password check (600,000 rounds of PBKDF2) ran in Gradio's async /login handler, on the
event loop: six loops of wrong passwords took other annotators' votes from 190 ms to 14.6 s. And a
wrong password took about 400 ms for a known name, 70 ms for an unknown one. Here:
- the check runs in a low-priority worker thread, one at a time for the whole app, and a bounded
  number waiting (past that an attempt fails at once, and counts against no name): sign-ins take at most one core, and yield
  it to annotators, never the event loop;
- every attempt does the same work, known name or not, clear or hashed password;
- failures are limited per name and per client (FailureLimiter, in the LoginGuard middleware): past
  the limit, attempts are answered 429 at once, without a check, for the rest of the window. A
  name's limit also means anyone can keep that name out for a window by failing for it: the
  price of slowing a guesser down, as with any lockout.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from urllib.parse import parse_qs

from clip_arena.core import background

MAX_FAILURES = 8  # per name, and per client, in one window
WINDOW_S = 300.0
# Attempts queued for the checking thread (about 0.35 s each on one core): a team of 32 signing in
# at once all get through; past this, a flood's attempts fail at once.
MAX_WAITING = 64


class FailureLimiter:
    """Failures per key in a sliding window; a key with MAX_FAILURES of them is blocked until the
    oldest leaves the window. Keys are forgotten when their window is empty (bounded memory)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S, clock=time.monotonic):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times


class CheckQueue:
    """One password check at a time, off the event loop, on a low-priority thread (core.background);
    at most MAX_WAITING waiting."""

    def __init__(self, max_waiting: int = MAX_WAITING):
        self.max_waiting = max_waiting
        self.waiting = 0

    async def run(self, check, *args) -> bool | None:
        """check(*args), or None when too many are waiting (nothing was checked)."""
        if self.waiting >= self.max_waiting:
            return None  # a flood: refuse at once rather than queue without end
        self.waiting += 1
        try:
            return await asyncio.wrap_future(background.submit("sign-in", 1, check, *args))
        finally:
            self.waiting -= 1


def client_key(scope, behind_proxy: bool) -> str:
    """Who is signing in: behind a proxy (core.hosting.behind_proxy: a Space, or said so), the
    address the proxy appended last to X-Forwarded-For; else the connection's own address (a header
    a client sends itself is not believed where no proxy stands in front)."""
    if behind_proxy:
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").split(",")[-1].strip()
                if last:
                    return last
    client = scope.get("client")
    return client[0] if client else "?"


MAX_FORM_BYTES = 64 * 1024  # a sign-in form is a name and a password


class LoginGuard:
    """ASGI middleware on Gradio's POST /login. A client, or a name, past its failures is answered
    429 (with Retry-After and a sentence saying which) without a check; each 400 (wrong name or
    password) counts against both. The form is read here (bounded) and handed on unchanged."""

    def __init__(self, app, clients: FailureLimiter | None = None, names: FailureLimiter | None = None,
                 behind_proxy: bool = False):
        self.app = app
        self.clients = clients or CLIENTS
        self.names = names or NAMES
        self.behind_proxy = behind_proxy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        client = client_key(scope, self.behind_proxy)
        body, more = b"", True
        while more and len(body) <= MAX_FORM_BYTES:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > MAX_FORM_BYTES:
            return await _answer(send, 413, "A sign-in form is a name and a password.")
        name = parse_qs(body.decode("latin-1")).get("username", [""])[0].strip()
        for wait, who in ((self.clients.blocked_for(client), "from here"),
                          (self.names.blocked_for(name), "for this name")):
            if wait > 0:
                return await _answer(send, 429, f"Too many failed sign-ins {who}; try again in {int(wait) + 1} s.",
                                     retry_after=int(wait) + 1)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] == 400:
                self.clients.failed(client)
                self.names.failed(name)
            await send(message)

        return await self.app(scope, replay, watch)


async def _answer(send, status: int, detail: str, retry_after: int | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})


# One of each per process, shared by the middleware Gradio builds.
CLIENTS = FailureLimiter()
NAMES = FailureLimiter()
