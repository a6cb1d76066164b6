"""`nons ui`: a live web view of networks, executions, costs and traces.

With no URL it attaches to the embedded nats-server of a `nons up` on this machine,
or starts one as `nons up` does (and says how to serve networks on it). The page is
served on loopback unless `--host` says otherwise, with a warning: it has no login.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers
    from nons.ui.settings import UiSettings

__all__ = ("register", "run_ui")


def register(commands: Subparsers) -> None:
    """Add `ui` to the parser."""
    from nons.cli._types import port
    from nons.ui.settings import DEFAULT_PORT, JAEGER_URL_ENV_VAR

    parser = commands.add_parser(
        "ui", help="a live web view of networks, executions, costs and traces"
    )
    parser.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"web port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to serve on (default 127.0.0.1; any other is reachable from "
        "other machines, with no login)",
    )
    parser.add_argument(
        "--jaeger-url",
        metavar="URL",
        help=f"Jaeger's web UI, to link trace ids (default: ${JAEGER_URL_ENV_VAR})",
    )
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.ui.settings import JAEGER_URL_ENV_VAR, UiSettings

    jaeger = (args.jaeger_url or os.environ.get(JAEGER_URL_ENV_VAR, "")).strip() or None
    settings = UiSettings(host=args.host, port=args.port, jaeger_url=jaeger)
    return run_ui(context, settings)


async def run_ui(context: CliContext, settings: UiSettings) -> int:
    """Serve the page until SIGINT or SIGTERM."""
    from nons.cli._common import EXIT_OK, connect, emit, stop_event
    from nons.runtime.connection import disconnect, redact_url
    from nons.runtime.server import EmbeddedServer
    from nons.ui.locate import find_embedded_servers
    from nons.ui.server import bind, page_url, serve_ui

    stop = stop_event()
    sock = bind(settings.host, settings.port)  # first: a port in use is the only line
    server: EmbeddedServer | None = None
    url, where = context.nats_url, ""
    try:
        if url is None:
            found = find_embedded_servers()
            if found:
                url = found[0].url
                where = f" (embedded nats-server of pid {found[0].pid}"
                where += f"; {len(found)} found, --nats-url picks another)" if found[1:] else ")"
            else:
                server = EmbeddedServer(binary=context.server_binary)
                await server.astart()
                url, where = server.url, f" (embedded nats-server started, pid {server.pid})"
        nc = await connect(context, "nons-ui", url)
        try:

            def ready() -> None:
                emit(f"nons ui: {page_url(sock)}")
                emit(f"  nats:     {redact_url(url)}{where}")
                if server is not None:
                    emit(f"  serve:    nons up --nats-url {server.url} TARGET...")
                if settings.trace_base:
                    emit(f"  traces:   {settings.trace_base}/trace/<trace id>")
                if not settings.loopback:
                    emit(
                        f"nons ui: warning: serving on {settings.host}, reachable from other "
                        "machines: the page has no login, shows every input and output, and "
                        "can start executions",
                        sys.stderr,
                    )
                emit(f"nons ui ready: {page_url(sock)} (Ctrl-C to stop)")

            await serve_ui(nc, settings, sock, nats_url=redact_url(url), stop=stop, ready=ready)
        finally:
            await disconnect(nc)
    finally:
        sock.close()
        if server is not None:
            await server.astop()
    emit("nons ui: stopped")
    return EXIT_OK
