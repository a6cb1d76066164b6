"""One execution is one trace: client, coordinator, layers, node calls, actor, LLM call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.observability.genai import install_genai_tracing
from nons.providers import registry
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.spans import capturing_provider, span_tree
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

MOCK = ModelConfig(provider=ModelProvider.MOCK)


@pytest.fixture
async def traced(
    nats_url: str,
) -> AsyncIterator[tuple[Client, InMemorySpanExporter, InMemorySpanExporter, TracerProvider]]:
    coordinator_provider, coordinator_spans = capturing_provider("nons-coordinator")
    actor_provider, actor_spans = capturing_provider("nons-actor")
    client_provider, _ = capturing_provider("client")
    install_genai_tracing(tracer_provider=actor_provider)
    net = NoN.from_operators([Node("transform", MOCK), Node("generate", MOCK) * 2], name="traced")
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="trace-test"))
    try:
        async with (
            ActorHost(nc, [net], tracer_provider=actor_provider),
            Coordinator(nc, [net], tracer_provider=coordinator_provider),
        ):
            client = Client(nc)
            client.tracer = client_provider.get_tracer("test-client")
            yield client, coordinator_spans, actor_spans, client_provider
            await client.close()
    finally:
        registry.set_client_wrapper(None)
        registry.reset_providers()
        await nc.close()


async def test_execution_spans_nest_across_coordinator_and_actor(
    traced: tuple[Client, InMemorySpanExporter, InMemorySpanExporter, TracerProvider],
) -> None:
    client, coordinator_spans, actor_spans, client_provider = traced
    tracer = client_provider.get_tracer("caller")
    with tracer.start_as_current_span("caller") as caller:
        result = await client.execute("traced", "hello")
    assert result.status == "completed"
    expected_trace = format(caller.get_span_context().trace_id, "032x")
    assert result.metadata.trace_id == expected_trace

    await wait_until(
        lambda: len(actor_spans.get_finished_spans()) >= 6, timeout=5, message="actor spans"
    )
    spans = [*coordinator_spans.get_finished_spans(), *actor_spans.get_finished_spans()]
    assert {format(span.context.trace_id, "032x") for span in spans} == {expected_trace}
    rendered = span_tree(spans)
    assert rendered == "\n".join(
        [
            "process nons.exec.traced",
            "  layer 0",
            "    send nons.node.traced.l0-transform",
            "      process nons.node.traced.l0-transform",
            "        chat mock-1",
            "  layer 1",
            "    send nons.node.traced.l1-generate-0",
            "      process nons.node.traced.l1-generate-0",
            "        chat mock-1",
            "    send nons.node.traced.l1-generate-1",
            "      process nons.node.traced.l1-generate-1",
            "        chat mock-1",
        ]
    ), rendered

    process = next(
        s for s in coordinator_spans.get_finished_spans() if s.name.startswith("process")
    )
    assert process.parent is not None
    assert process.parent.is_remote
    assert process.resource.attributes["service.name"] == "nons-coordinator"
    chat = next(s for s in actor_spans.get_finished_spans() if s.name.startswith("chat"))
    assert chat.kind is trace.SpanKind.CLIENT
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    input_tokens = chat.attributes["gen_ai.usage.input_tokens"]
    assert isinstance(input_tokens, int)
    assert input_tokens > 0
    assert chat.resource.attributes["service.name"] == "nons-actor"
    send = next(s for s in coordinator_spans.get_finished_spans() if s.name.startswith("send"))
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "nats"


async def test_a_request_without_traceparent_gets_a_new_trace_id(
    traced: tuple[Client, InMemorySpanExporter, InMemorySpanExporter, TracerProvider],
) -> None:
    client, coordinator_spans, _, _ = traced
    first = await client.execute("traced", "one")
    second = await client.execute("traced", "two")
    assert first.metadata.trace_id
    assert second.metadata.trace_id
    assert first.metadata.trace_id != second.metadata.trace_id
    assert len(first.metadata.trace_id) == 32
