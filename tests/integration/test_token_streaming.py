"""Token streaming: `node.delta` events from the actor, on the mock and on the fake API's SSE."""

from __future__ import annotations

import contextlib
import math
import uuid
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider

from nons import Node, NoN
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.names import events_filter
from nons.core.types import CacheConfig, ModelConfig, ModelProvider, NetworkConfig
from nons.observability.events import NodeDelta, decode_event
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.fake_anthropic import FakeAnthropic, message_response
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

    from nons.core.results import ExecutionResult

API_KEY = "sk-ant-stream-test-SECRET"
LONG_TEXT = "Streaming lets a reader see the answer while the model is still writing it."


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Deltas:
    """Collects one execution's `node.delta` events with their NATS headers."""

    def __init__(self) -> None:
        self.events: list[NodeDelta] = []
        self.headers: list[dict[str, str]] = []
        self.subjects: list[str] = []

    async def on_message(self, msg: Msg) -> None:
        event = decode_event(msg.data)
        if isinstance(event, NodeDelta):
            self.events.append(event)
            self.headers.append(dict(msg.headers or {}))
            self.subjects.append(msg.subject)

    @property
    def text(self) -> str:
        return "".join(event.text for event in self.events)


@contextlib.asynccontextmanager
async def streamed_run(
    url: str, nc: NatsClient, net: NoN, value: str, runs: int = 1
) -> AsyncIterator[tuple[list[ExecutionResult], list[Deltas]]]:
    """Serve `net` with tracing on, run it `runs` times, collecting each run's deltas."""
    tracer_provider = TracerProvider()
    serve_nc = await connect_nats(ConnectionSettings(url=url, name=unique("nons-stream")))
    results: list[ExecutionResult] = []
    collected: list[Deltas] = []
    client = Client(nc)
    try:
        async with (
            ActorHost(serve_nc, [net], tracer_provider=tracer_provider),
            Coordinator(serve_nc, [net], tracer_provider=tracer_provider),
        ):
            for _ in range(runs):
                execution_id = uuid.uuid4().hex
                deltas = Deltas()
                subscription = await nc.subscribe(
                    events_filter(net.name, execution_id), cb=deltas.on_message
                )
                await nc.flush()
                try:
                    result = await client.execute(
                        net.name, value, execution_id=execution_id, timeout_s=20
                    )
                    assert result.status == "completed", result.error
                    output = result.output
                    await wait_until(
                        lambda d=deltas, o=output: d.text == o,  # type: ignore[misc]
                        timeout=5,
                        message=lambda d=deltas: f"deltas so far: {d.text!r}",  # type: ignore[misc]
                    )
                finally:
                    await subscription.unsubscribe()
                results.append(result)
                collected.append(deltas)
            yield results, collected
    finally:
        await client.bus.close()
        await serve_nc.close()


def assert_ordered(deltas: Deltas, result: ExecutionResult, node_id: str) -> None:
    assert [event.index for event in deltas.events] == list(range(len(deltas.events)))
    assert deltas.text == result.output
    assert {(e.node_id, e.layer_index, e.attempt) for e in deltas.events} == {(node_id, 0, 1)}
    assert {e.execution_id for e in deltas.events} == {result.execution_id}
    assert {e.trace_id for e in deltas.events} == {result.metadata.trace_id}
    assert all(
        h.get("traceparent", "").split("-")[1] == result.metadata.trace_id for h in deltas.headers
    )
    assert all(s.endswith(f".{result.execution_id}.node.delta") for s in deltas.subjects)


@pytest.fixture
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@pytest.mark.usefixtures("mock_provider")
async def test_mock_node_streams_deltas_in_order(nats_url: str, nc: NatsClient) -> None:
    net = NoN.from_operators([Node("transform", stream=True, node_id="writer")], name=unique("st"))
    async with streamed_run(nats_url, nc, net, "please   tidy this rather long text up") as (
        (result,),
        (deltas,),
    ):
        assert len(deltas.events) > 3
        assert_ordered(deltas, result, "writer")
        assert result.is_mock


@pytest.mark.usefixtures("mock_provider")
async def test_a_node_that_does_not_stream_publishes_no_delta(
    nats_url: str, nc: NatsClient
) -> None:
    name = unique("st-off")
    net = NoN.from_operators([Node("transform", node_id="quiet")], name=name)
    seen: list[str] = []

    async def on_event(msg: Msg) -> None:
        seen.append(decode_event(msg.data).type)

    subscription = await nc.subscribe(events_filter(name), cb=on_event)
    serve_nc = await connect_nats(ConnectionSettings(url=nats_url, name=unique("nons-quiet")))
    client = Client(nc)
    try:
        async with ActorHost(serve_nc, [net]), Coordinator(serve_nc, [net]):
            await client.execute(name, "some text", timeout_s=20)
            await wait_until(lambda: "execution.completed" in seen, timeout=5)
    finally:
        await subscription.unsubscribe()
        await client.bus.close()
        await serve_nc.close()
    assert "node.completed" in seen
    assert "node.delta" not in seen


async def test_anthropic_sse_deltas_join_to_the_final_output(nats_url: str, nc: NatsClient) -> None:
    with FakeAnthropic(api_key=API_KEY) as fake:
        registry.configure_providers(
            ProviderSettings(
                anthropic_api_key=API_KEY,
                anthropic_base_url=fake.base_url,
                max_retries=0,
                default_provider=ModelProvider.ANTHROPIC,
            )
        )
        try:
            fake.enqueue(message_response(LONG_TEXT, model="claude-haiku-4-5"))
            config = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-haiku-4-5")
            net = NoN.from_operators(
                [Node("transform", config, stream=True, node_id="writer")], name=unique("st-sse")
            )
            async with streamed_run(nats_url, nc, net, "text") as ((result,), (deltas,)):
                pass
        finally:
            registry.reset_providers()
    (request,) = fake.message_requests
    assert request.body["stream"] is True
    assert result.output == LONG_TEXT
    assert not result.is_mock
    assert result.metadata.cost_usd > 0  # the final message's usage is accounted for
    assert len(deltas.events) == math.ceil(len(LONG_TEXT) / 6)  # the fake's chunk size
    assert_ordered(deltas, result, "writer")


@pytest.mark.usefixtures("mock_provider")
async def test_a_cached_streaming_node_replays_its_output_as_one_delta(
    nats_url: str, nc: NatsClient
) -> None:
    cold = ModelConfig(temperature=0.0)
    net = NoN.from_operators(
        [Node("transform", cold, stream=True, node_id="writer")],
        NetworkConfig(cache=CacheConfig()),
        name=unique("st-cache"),
    )
    async with streamed_run(nats_url, nc, net, "cache me please", runs=2) as (
        (first, second),
        (computed, replayed),
    ):
        assert len(computed.events) > 1
        assert second.layer_results[0].nodes[0].cached
        assert [event.text for event in replayed.events] == [second.output]
        assert_ordered(replayed, second, "writer")
        assert first.output == second.output
