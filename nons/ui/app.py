"""The web side of `nons ui`: a Starlette app serving the page, its JSON API and its event stream.

The page is static (HTML, CSS and one script shipped in the package, no build step);
everything live reaches it as server-sent events, which the browser reconnects by
itself. The app only serialises what the board folded: the browser renders every
value as text. Defence in depth for that untrusted text (model outputs, error
messages): a Content-Security-Policy that allows no inline script, and, when served on
loopback, only loopback host names (so a rebinding DNS name cannot reach it). A run
from the page must be a JSON POST from the page's own origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nons.core.names import validate_token
from nons.ui.settings import LOOPBACK_NAMES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from nons.ui.feed import Feed
    from nons.ui.hub import Watcher

__all__ = ("SECURITY_HEADERS", "STATIC_DIR", "build_app", "loopback_hosts")

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The page's files, shipped as package data."""

SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
"""Sent with every response: no inline script may run, whatever a page shows."""

_COALESCE_S = 0.05
"""A page's stream waits this long after a change, so a burst of events is one push."""
_PING_S = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""
_MAX_INPUT_BYTES = 1024 * 1024

_encoder = msgspec.json.Encoder()


def build_app(feed: Feed, *, closing: asyncio.Event, allowed_hosts: list[str] | None) -> Starlette:
    """The app; `closing` ends every open stream (set it before stopping the server).

    Args:
        feed: where the data comes from.
        closing: set on shutdown, so open event streams end and the server can stop.
        allowed_hosts: `Host` names accepted (`None`: any, for a non-loopback bind).
    """

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def state(request: Request) -> Response:
        return _json(feed.snapshot())

    async def execution(request: Request) -> Response:
        execution_id = str(request.path_params["execution_id"])
        detail = await feed.lookup(execution_id) if _is_token(execution_id) else None
        if detail is None:
            return _json({"error": "not found", "execution_id": execution_id}, status=404)
        return _json(detail)

    async def stream(request: Request) -> Response:
        watched = request.query_params.get("execution") or None
        watcher = feed.hub.add(watched if watched and _is_token(watched) else None)
        return StreamingResponse(
            _events(feed, watcher, closing),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def run(request: Request) -> Response:
        refused = _refuse_run(request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > _MAX_INPUT_BYTES:
            return _json({"error": "the input is larger than 1 MiB"}, status=413)
        try:
            document = msgspec.json.decode(body)
            network = validate_token(str(document["network"]), "network")
            value = document.get("input", "")
            timeout_s = float(document.get("timeout_s") or feed.settings.run_timeout_s)
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            return _json({"error": f"bad run request: {exc!s:.200}"}, status=400)
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            return _json({"error": "timeout_s must be a positive number"}, status=400)
        execution_id = feed.start_run(network, value, timeout_s=timeout_s)
        return _json({"execution_id": execution_id, "network": network}, status=202)

    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", state),
            Route("/api/executions/{execution_id}", execution),
            Route("/api/stream", stream),
            Route("/api/run", run, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=middleware,
    )


def loopback_hosts() -> list[str]:
    """The `Host` names a loopback page answers to."""
    return [name for name in LOOPBACK_NAMES if name != "::1"] + ["[::1]"]


async def _events(feed: Feed, watcher: Watcher, closing: asyncio.Event) -> AsyncIterator[bytes]:
    """One page's stream: a snapshot, then what changed, coalesced."""
    try:
        first = feed.snapshot()
        if watcher.execution_id is not None:
            first["detail"] = await feed.lookup(watcher.execution_id)
        yield _sse("snapshot", first)
        while not closing.is_set():
            if not await _wait(watcher.wake, closing, _PING_S):
                yield b": ping\n\n"
                continue
            await asyncio.sleep(_COALESCE_S)
            watcher.wake.clear()
            for name, data in _changes(feed, watcher):
                yield _sse(name, data)
    finally:
        feed.hub.remove(watcher)


def _changes(feed: Feed, watcher: Watcher) -> list[tuple[str, Any]]:
    changes: list[tuple[str, Any]] = []
    if watcher.status_changed:
        watcher.status_changed = False
        changes.append(("status", feed.status()))
    if watcher.networks_changed:
        watcher.networks_changed = False
        changes.append(("networks", feed.networks))
    dirty, watcher.dirty = watcher.dirty, set()
    views = [feed.board.executions[key] for key in dirty if key in feed.board.executions]
    if views:
        summaries = [view.summary() for view in views]
        changes.append(("executions", {"changed": summaries, "totals": feed.board.totals()}))
    if watcher.execution_id in dirty:
        view = feed.board.executions.get(watcher.execution_id)
        if view is not None:
            changes.append(("detail", view.detail()))
    return changes


async def _wait(bell: asyncio.Event, closing: asyncio.Event, timeout_s: float) -> bool:
    """Whether `bell` rang within `timeout_s` (False also when closing)."""
    waiters = [asyncio.ensure_future(bell.wait()), asyncio.ensure_future(closing.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return bell.is_set() and not closing.is_set()


def _refuse_run(request: Request) -> Response | None:
    """A run must be JSON from the page's own origin (no cross-site form posts)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _json({"error": "send the run as application/json"}, status=415)
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return _json({"error": "runs are accepted only from this page"}, status=403)
    return None


def _sse(name: str, data: Any) -> bytes:
    # msgspec escapes newlines inside strings, so the JSON is one `data:` line.
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


def _json(data: Any, *, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


def _is_token(value: str) -> bool:
    try:
        validate_token(value, "execution id")
    except ValueError:
        return False
    return True


class _SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response (plain ASGI: streams pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
