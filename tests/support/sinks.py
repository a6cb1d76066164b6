"""What the sink tests share: a network that completes, fails or retries on demand."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.errors import ProviderOverloadedError
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.operators.registry import operator
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.event_store import read_execution_events
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client as NatsClient

    from nons.core.results import ExecutionResult

__all__ = (
    "TERMINAL",
    "recorded_event_count",
    "run_inputs",
    "serving",
    "sink_network",
    "unique",
)

TERMINAL = frozenset({"execution.completed", "execution.failed"})
"""The event types that end an execution."""

_FLAKY_SEEN: set[str] = set()


@operator(description="Upper-case text; fails for `fail...`, fails once for `flaky...`.")
async def sink_step(text: str) -> str:
    """A step whose outcome the input chooses."""
    if text.startswith("fail"):
        raise ValueError("asked to fail")
    if text.startswith("flaky") and text not in _FLAKY_SEEN:
        _FLAKY_SEEN.add(text)
        raise ProviderOverloadedError("overloaded once, on purpose")
    return text.upper()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sink_network(name: str) -> NoN:
    """Two layers: the chosen outcome, then a mock model call (tokens, `is_mock`)."""
    return NoN.from_operators(
        [Node(sink_step), Node("generate", ModelConfig(provider=ModelProvider.MOCK))], name=name
    )


@contextlib.asynccontextmanager
async def serving(url: str, network: NoN) -> AsyncIterator[Client]:
    """Coordinator and actors for `network` on a connection of their own, and a client."""
    nc = await connect_nats(ConnectionSettings(url=url, name="nons-sink-test-serve"))
    try:
        async with ActorHost(nc, [network]), Coordinator(nc, [network]):
            client = Client(nc)
            try:
                yield client
            finally:
                await client.close()
    finally:
        await nc.close()


async def run_inputs(
    client: Client, network: str, inputs: list[str], *, metadata: dict[str, str] | None = None
) -> list[ExecutionResult]:
    """One execution per input, in order; failed ones are returned, not raised."""
    return [await client.execute(network, text, metadata=metadata, timeout_s=20) for text in inputs]


async def recorded_event_count(nc: NatsClient, network: str, results: list[ExecutionResult]) -> int:
    """Events the stream holds for these executions, once each one's last event is in."""
    return sum([await _recorded(nc, network, result.execution_id) for result in results])


async def _recorded(nc: NatsClient, network: str, execution_id: str) -> int:
    counted: list[int] = [0]

    async def complete() -> bool:
        events = await read_execution_events(nc, execution_id, network=network, timeout_s=1)
        counted[0] = len(events)
        return bool(events) and events[-1].type in TERMINAL

    await wait_until(complete, timeout=10, message=f"events of {execution_id}")
    return counted[0]
