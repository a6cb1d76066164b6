"""Events are recorded in JetStream and `render_trace` shows an execution as a tree."""

from __future__ import annotations

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.observability.trace_view import render_trace
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.event_store import read_execution_events

MOCK = ModelConfig(provider=ModelProvider.MOCK)


async def test_recorded_events_render_as_a_tree(nats_url: str) -> None:
    net = NoN.from_operators([Node("condense", MOCK), Node("generate", MOCK) * 2], name="viewed")
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="trace-view-test"))
    try:
        async with ActorHost(nc, [net]), Coordinator(nc, [net]):
            client = Client(nc)
            result = await client.execute("viewed", "a long text to condense")
            await client.close()
        events = await read_execution_events(nc, result.execution_id)
    finally:
        await nc.close()
    types = [event.type for event in events]
    assert types[0] == "execution.started"
    assert types[-1] == "execution.completed"
    assert types.count("node.completed") == 3
    assert {event.trace_id for event in events} == {result.metadata.trace_id}
    text = render_trace(events)
    lines = text.splitlines()
    assert lines[0].startswith(f"execution {result.execution_id} of viewed")
    assert any(line.startswith("  layer 0 completed") for line in lines)
    assert any("l1-generate-1" in line and "[mock]" in line for line in lines)
    assert lines[-1].startswith("  completed in")
