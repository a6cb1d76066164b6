"""The long-running `nons` subcommands: `up`, `coordinator`, `actor` and `server`.

Each serves until SIGINT or SIGTERM, then drains: the coordinator stops taking
requests and finishes the executions in flight, the actors finish their calls, the
connection is drained (so the last replies leave) and only then does the process exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors

from nons.actors.host import ActorHost, ActorSettings
from nons.cli._common import EXIT_FAILED, EXIT_OK, connect, describe_provider, emit, stop_event
from nons.cli._common import telemetry as process_telemetry
from nons.cli._loading import load_targets
from nons.coordinator.service import Coordinator, CoordinatorSettings
from nons.core.errors import ConfigurationError
from nons.core.names import EVENTS_PREFIX, exec_subject
from nons.core.node import Node
from nons.runtime.connection import JetStreamUnavailableError, disconnect, redact_url
from nons.runtime.durability import DurabilitySettings
from nons.runtime.server import EmbeddedServer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from nats.aio.client import Client

    from nons.cli._common import CliContext
    from nons.core.network import NoN

__all__ = ("run_actor", "run_coordinator", "run_server", "run_up")

_SERVER_POLL_S = 0.5
"""How often `nons server` checks that its nats-server is still alive."""


async def run_up(
    context: CliContext, targets: Sequence[str], *, concurrency: int, events: bool
) -> int:
    """Coordinator and actors for `targets` in this process, on an embedded server if needed."""
    networks = load_targets(targets)
    server: EmbeddedServer | None = None
    url = context.nats_url
    if url is None:
        server = EmbeddedServer(binary=context.server_binary)
        await server.astart()
        url = server.url
    try:
        with process_telemetry(context, "nons", actors=True):

            def banner() -> None:
                emit(f"nons up: serving {', '.join(n.name for n in networks)}")
                where = f" (embedded nats-server, pid {server.pid})" if server is not None else ""
                emit(f"  nats:     {redact_url(url)}{where}")
                _print_subjects(networks)
                emit(f"  provider: {describe_provider(context.providers)}")
                first = networks[0].name
                emit(f'  try:      nons exec --nats-url {redact_url(url)} {first} "some text"')

            return await _serve(
                context,
                networks,
                url,
                label="up",
                coordinator=CoordinatorSettings(
                    events=events, pricing=context.pricing(runs_actors=True)
                ),
                actors=ActorSettings(concurrency=concurrency),
                banner=banner,
            )
    finally:
        if server is not None:
            await server.astop()


async def run_coordinator(
    context: CliContext, targets: Sequence[str], *, lease_s: float = 5.0
) -> int:
    """A coordinator process for `targets`."""
    networks = load_targets(targets)
    with process_telemetry(context, "nons-coordinator", actors=False):
        return await _serve(
            context,
            networks,
            context.url_or_default,
            label="coordinator",
            coordinator=CoordinatorSettings(
                pricing=context.pricing(runs_actors=False),
                durability=DurabilitySettings(lease_s=lease_s),
            ),
            banner=lambda: _print_subjects(networks),
        )


async def run_actor(
    context: CliContext, targets: Sequence[str], *, node_ids: Sequence[str], concurrency: int
) -> int:
    """An actor process serving the nodes of `targets` (or only `node_ids`)."""
    networks = load_targets(targets)
    _check_node_ids(networks, node_ids)
    with process_telemetry(context, "nons-actor", actors=True):
        settings = ActorSettings(concurrency=concurrency, node_ids=tuple(node_ids))
        return await _serve(
            context,
            networks,
            context.url_or_default,
            label="actor",
            actors=settings,
            banner=lambda: emit(f"  provider: {describe_provider(context.providers)}"),
        )


async def run_server(context: CliContext, *, port: int, max_payload: int | None) -> int:
    """The embedded nats-server in the foreground until SIGINT or SIGTERM."""
    server = EmbeddedServer(port=port, max_payload=max_payload, binary=context.server_binary)
    stop = stop_event()
    await server.astart()
    try:
        emit(f"nons server: nats-server running at {server.url} (pid {server.pid})")
        emit(f"  use it with: export NONS_NATS_URL={server.url}")
        emit("nons server ready: Ctrl-C to stop")
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_SERVER_POLL_S)
            if not server.running:
                emit("nons server: nats-server exited on its own")
                return EXIT_FAILED
        return EXIT_OK
    finally:
        await server.astop()


async def _serve(
    context: CliContext,
    networks: list[NoN],
    url: str,
    *,
    label: str,
    coordinator: CoordinatorSettings | None = None,
    actors: ActorSettings | None = None,
    banner: Callable[[], None],
) -> int:
    """Serve until SIGINT/SIGTERM; `banner` prints once everything started.

    Printed after startup, not before, so that a startup failure (no JetStream, a
    bad spec) is the one line the user sees.
    """
    from nons.providers.registry import aclose_clients

    stop = stop_event()
    nc = await connect(context, f"nons-{label}", url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            parts: list[str] = []
            if actors is not None:
                await _require_jetstream_for_caches(nc, networks)
                host = await stack.enter_async_context(ActorHost(nc, networks, actors))
                parts.append(f"{len(host.slots)} nodes")
            if coordinator is not None:
                await stack.enter_async_context(Coordinator(nc, networks, coordinator))
                parts.append("coordinator")
            if actors is not None and coordinator is None:
                what = f"{parts[0]} of"
            else:
                what = " and ".join(reversed(parts)) + " for"
            banner()
            names = ", ".join(network.name for network in networks)
            emit(f"nons {label} ready: {what} {names} on {redact_url(url)}")
            await stop.wait()
            emit(f"nons {label}: stopping, draining work in flight")
        # Leaving the stack stopped the coordinator first, then the actors.
    finally:
        await disconnect(nc)
        await aclose_clients()
    emit(f"nons {label}: stopped")
    return EXIT_OK


async def _require_jetstream_for_caches(nc: Client, networks: list[NoN]) -> None:
    """Say in one line, before serving, that a network's jetstream cache has no JetStream.

    Raises:
        JetStreamUnavailableError: a network caches in JetStream and the server has none.
    """
    cached = sorted(
        {
            member.name
            for network in networks
            for member in network.networks()
            if (cache := member.network_config.cache) is not None
            and cache.enabled
            and cache.backend == "jetstream"
        }
    )
    if not cached:
        return
    try:
        await nc.jetstream().account_info()
    except (
        nats.js.errors.ServiceUnavailableError,
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
    ):
        needed_for = f"the jetstream cache of {', '.join(cached)}"
        raise JetStreamUnavailableError.at(nc, needed_for) from None


def _print_subjects(networks: list[NoN]) -> None:
    for network in networks:
        for member in network.networks():
            emit(f"  exec:     {exec_subject(member.name)}")
            emit(f"  events:   {EVENTS_PREFIX}.{member.name}.>")


def _check_node_ids(networks: list[NoN], node_ids: Sequence[str]) -> None:
    known = {
        node.node_id
        for network in networks
        for member in network.networks()
        for _, node in member.nodes()
        if isinstance(node, Node)
    }
    unknown = sorted(set(node_ids) - known)
    if unknown:
        raise ConfigurationError(
            f"--node {', '.join(unknown)}: no such node in the loaded networks; "
            f"nodes are: {', '.join(sorted(known))}"
        )
