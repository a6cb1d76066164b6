"""Entry point of the suite's child processes: raw floor processes and the NoN runtime.

`python -m benchmarks._serve KIND URL ...` where KIND is `responder` (echoes each
request), `relay` (forwards each request to another subject and relays the reply),
`coordinator`, `actor` (the runtime, used directly so the suite does not depend on the
CLI) or `sink` (an OTLP/HTTP endpoint that accepts and drops spans). Each prints
`ready` once it serves and stops cleanly on SIGTERM. This is a process edge, so it
reads the environment (`NONS_MOCK_LATENCY_S`, `OTEL_*`) once, here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import msgspec
import nats

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ("main",)

RELAY_TIMEOUT_S = 30.0
"""Bound on the relay's own request."""


def main(argv: list[str] | None = None) -> int:
    """Run one child until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._serve")
    parser.add_argument("kind", choices=("responder", "relay", "coordinator", "actor", "sink"))
    parser.add_argument("address", help="NATS URL, or the port of the sink")
    parser.add_argument("targets", nargs="*", help="subjects (raw) or MODULE:ATTR (runtime)")
    parser.add_argument("--no-events", action="store_true")
    parser.add_argument("--no-liveness", action="store_true")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backlog", type=int, default=256)
    args = parser.parse_args(argv)
    if args.kind == "sink":
        return _sink(int(args.address))
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.kind in ("responder", "relay"):
        await _raw(args, stop)
    else:
        await _runtime(args, stop)
    return 0


async def _raw(args: argparse.Namespace, stop: asyncio.Event) -> None:
    nc = await nats.connect(args.address, name=f"bench-{args.kind}")
    subject = args.targets[0]
    tasks: set[asyncio.Task[None]] = set()

    async def echo(msg: Msg) -> None:
        await nc.publish(msg.reply, msg.data)

    async def forward(msg: Msg) -> None:
        reply = await nc.request(args.targets[1], msg.data, timeout=RELAY_TIMEOUT_S)
        await nc.publish(msg.reply, reply.data)

    async def relay(msg: Msg) -> None:
        # A task per message, as any relay serving concurrent callers must do.
        task = asyncio.get_running_loop().create_task(forward(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await nc.subscribe(subject, queue=subject, cb=echo if args.kind == "responder" else relay)
    await nc.flush()
    _ready()
    await stop.wait()
    await nc.drain()


async def _runtime(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from nons.actors.host import ActorHost, ActorSettings
    from nons.cli._loading import load_targets
    from nons.coordinator.service import Coordinator, CoordinatorSettings
    from nons.observability.setup import configure_telemetry
    from nons.providers.mock import MockBehaviour
    from nons.providers.registry import configure_providers
    from nons.providers.settings import ProviderSettings
    from nons.runtime.connection import ConnectionSettings, connect_nats

    environ = dict(os.environ)
    configure_providers(ProviderSettings(), MockBehaviour.from_env(environ))
    telemetry = configure_telemetry(f"nons-{args.kind}", environ)
    networks = load_targets(args.targets)
    nc = await connect_nats(ConnectionSettings(url=args.address, name=f"bench-{args.kind}"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            if args.kind == "coordinator":
                settings = CoordinatorSettings(events=not args.no_events)
                if args.no_liveness:
                    settings = msgspec.structs.replace(settings, node_liveness_s=None)
                await stack.enter_async_context(Coordinator(nc, networks, settings))
            else:
                host = ActorSettings(concurrency=args.concurrency, backlog=args.backlog)
                await stack.enter_async_context(ActorHost(nc, networks, host))
            _ready()
            await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await nc.drain()
        telemetry.shutdown()


class _SinkHandler(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP posts and drops them (an empty protobuf answer means success)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


def _sink(port: int) -> int:
    server = ThreadingHTTPServer(("127.0.0.1", port), _SinkHandler)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ready()
    while not done.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
