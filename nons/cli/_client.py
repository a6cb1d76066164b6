"""The client `nons` subcommands: `exec`, `events`, `ls` and `run`.

`exec` subscribes to its own execution's events before sending the request (with an
execution id it chose), so progress shows layer by layer while the network runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from nons.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    MOCK_NOTICE,
    connect,
    emit,
    stop_event,
    telemetry,
)
from nons.cli._discovery import discover, print_services
from nons.cli._format import describe_event, event_line, format_output, reply_json, summary
from nons.cli._loading import load_targets
from nons.client import Client
from nons.client.local import LocalRuntime
from nons.core.errors import (
    ConfigurationError,
    CoordinatorLostError,
    NetworkUnavailableError,
    NodeTimeoutError,
)
from nons.core.events import NodeDelta, decode_event
from nons.core.names import events_filter
from nons.runtime.connection import disconnect
from nons.runtime.server import EmbeddedServer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.msg import Msg

    from nons.cli._common import CliContext
    from nons.core.network import NoN
    from nons.core.results import ExecutionResult

__all__ = ("run_events", "run_exec", "run_ls", "run_network")

_TERMINAL = frozenset({"execution.completed", "execution.failed"})
_PROGRESS_GRACE_S = 1.0
"""How long `exec` waits, after the reply, for the last progress events."""


class _Progress:
    """Prints one execution's events to stderr as they arrive.

    The text deltas of streaming nodes (`node.delta`) are printed inline as they come,
    after a `[node_id]` prefix, so the answer shows while it is being generated.
    """

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self._streaming: str | None = None
        """The node whose deltas are being printed on the current line."""

    async def on_message(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        if isinstance(event, NodeDelta):
            self._delta(event)
        elif event.type != "node.started":  # completions say enough per node
            self._end_line()
            emit(describe_event(event), sys.stderr)
        if event.type in _TERMINAL:
            self.done.set()

    def _delta(self, event: NodeDelta) -> None:
        key = f"{event.node_id}#{event.attempt}"
        if key != self._streaming:
            self._end_line()
            sys.stderr.write(f"[{event.node_id}] ")
            self._streaming = key
        sys.stderr.write(event.text)
        sys.stderr.flush()

    def _end_line(self) -> None:
        if self._streaming is not None:
            sys.stderr.write("\n")
            self._streaming = None


async def run_exec(
    context: CliContext,
    network: str,
    value: Any,
    *,
    as_json: bool,
    timeout_s: float | None,
    budget_usd: float | None,
) -> int:
    """One execution through a coordinator, its progress on stderr, its output on stdout."""
    with telemetry(context, "nons", actors=False):
        nc = await connect(context, "nons-exec")
        client = Client(nc, owns_connection=True)
        try:
            execution_id = uuid.uuid4().hex
            progress = _Progress()
            if not as_json:
                await nc.subscribe(events_filter(network, execution_id), cb=progress.on_message)
                await nc.flush()
            try:
                result = await client.execute(
                    network,
                    value,
                    execution_id=execution_id,
                    timeout_s=timeout_s,
                    budget_usd=budget_usd,
                )
            except (NetworkUnavailableError, NodeTimeoutError, CoordinatorLostError) as exc:
                emit(f"nons exec: {exc.type}: {exc.message}", sys.stderr)
                return EXIT_UNAVAILABLE
            if not as_json:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.done.wait(), timeout=_PROGRESS_GRACE_S)
            return show_result(result, as_json=as_json, command="exec")
        finally:
            await client.close()


async def run_network(
    context: CliContext, targets: Sequence[str], value: Any, *, network: str | None, as_json: bool
) -> int:
    """Serve a loaded network in this process (embedded server unless a URL is given), run it."""
    networks = load_targets(targets)
    chosen = _choose(networks, network)
    server: EmbeddedServer | None = None
    url = context.nats_url
    if url is None:
        server = EmbeddedServer(binary=context.server_binary)
        await server.astart()
        url = server.url
    try:
        with telemetry(context, "nons", actors=True):
            from nons.providers.registry import aclose_clients

            try:
                async with LocalRuntime(url) as runtime:
                    result = await runtime.run_network(chosen, value)
            finally:
                await aclose_clients()
            return show_result(result, as_json=as_json, command="run")
    finally:
        if server is not None:
            await server.astop()


async def run_events(
    context: CliContext,
    network: str | None,
    execution_id: str | None,
    *,
    as_json: bool,
    count: int | None,
    timeout_s: float | None,
) -> int:
    """Print events as they happen until Ctrl-C, `count` events or `timeout_s` seconds."""
    stop = stop_event()
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_event(msg: Msg) -> None:
        await queue.put(msg)

    nc = await connect(context, "nons-events")
    try:
        subject = events_filter(network, execution_id)
        await nc.subscribe(subject, cb=on_event)
        await nc.flush()
        emit(f"nons events: listening on {subject} (Ctrl-C to stop)", sys.stderr)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen = 0
        while count is None or seen < count:
            msg = await _next(queue, stop, deadline)
            if msg is None:
                break
            try:
                event = decode_event(msg.data)
            except (msgspec.ValidationError, msgspec.DecodeError):
                emit(f"nons events: skipping a malformed event on {msg.subject}", sys.stderr)
                continue
            emit(msg.data.decode() if as_json else event_line(event))
            seen += 1
        return EXIT_OK
    finally:
        await disconnect(nc)


async def run_ls(context: CliContext, *, timeout_s: float, as_json: bool) -> int:
    """List the coordinators and actors that answer `$SRV.INFO`, with their `$SRV.STATS`."""
    nc = await connect(context, "nons-ls")
    try:
        services = await discover(nc, timeout_s)
    finally:
        await disconnect(nc)
    print_services(services, as_json=as_json, url=context.url_or_default)
    return EXIT_OK


async def _next(
    queue: asyncio.Queue[Msg], stop: asyncio.Event, deadline: float | None
) -> Msg | None:
    """The next message, or `None` once stopped or past the deadline."""
    if stop.is_set():
        return None
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stop.wait())
    timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        done, _ = await asyncio.wait(
            {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (getter, stopper):
            if not task.done():
                task.cancel()
    if getter in done:
        return getter.result()
    return None


def show_result(result: ExecutionResult, *, as_json: bool, command: str) -> int:
    """Print a result as `nons exec` does; the exit code its status calls for."""
    if as_json:
        emit(reply_json(result))
    elif result.status != "failed":
        emit(format_output(result.output))
        emit(summary(result), sys.stderr)
    if result.is_mock:
        emit(MOCK_NOTICE, sys.stderr)
    if result.status == "failed":
        error = result.error
        what = f"{error.type}: {error.message}" if error else "failed"
        emit(f"nons {command}: execution {result.execution_id} failed: {what}", sys.stderr)
        return EXIT_FAILED
    if result.status == "partial":
        why = f": {result.error.type}: {result.error.message}" if result.error else ""
        emit(f"nons {command}: warning: partial result, some nodes failed{why}", sys.stderr)
    return EXIT_OK


def _choose(networks: list[NoN], name: str | None) -> NoN:
    if name is None:
        if len(networks) > 1:
            names = ", ".join(n.name for n in networks)
            raise ConfigurationError(f"the targets hold several networks ({names}): pick --network")
        return networks[0]
    for network in networks:
        for member in network.networks():
            if member.name == name:
                return member
    raise ConfigurationError(f"--network {name}: not among the loaded networks")
