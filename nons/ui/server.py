"""Serve the UI with uvicorn on a socket we bind, until told to stop.

The socket is bound here, before uvicorn starts, so a port in use is one clear error
and `--port 0` can say which port it got. uvicorn's own signal handling is left out:
the `nons` process owns SIGINT/SIGTERM (and its exit code), and stops the server by
setting an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from typing import TYPE_CHECKING

import uvicorn

from nons.core.errors import ConfigurationError
from nons.ui.app import build_app, loopback_hosts
from nons.ui.feed import Feed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from nats.aio.client import Client

    from nons.ui.settings import UiSettings

__all__ = ("bind", "page_url", "serve_ui")

_GRACEFUL_S = 2.0
"""Bound on finishing open requests when stopping."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (`host`, `port`).

    Raises:
        ConfigurationError: the port is in use or the address is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is in use: stop what holds it, or choose another "
                "with --port (0 picks a free one)"
            ) from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def page_url(sock: socket.socket) -> str:
    """The page's address for a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve_ui(
    nc: Client,
    settings: UiSettings,
    sock: socket.socket,
    *,
    nats_url: str,
    stop: asyncio.Event,
    ready: Callable[[], None],
) -> None:
    """Serve the page on `sock` until `stop` is set; `ready` runs once it accepts requests."""
    closing = asyncio.Event()
    async with Feed(nc, settings, url=nats_url) as feed:
        app = build_app(
            feed, closing=closing, allowed_hosts=loopback_hosts() if settings.loopback else None
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(_GRACEFUL_S),
        )
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not server.started and not serving.done():
                await asyncio.wait([serving], timeout=0.02)
            if serving.done():
                serving.result()  # raises why uvicorn did not start
                return
            ready()
            await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            closing.set()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(serving, timeout=_GRACEFUL_S + 3)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the caller decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
