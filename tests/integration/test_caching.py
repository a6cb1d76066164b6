"""Node-result caching in the actors, over a real nats-server and the fake Messages API."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nons import Node, NoN
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.names import events_filter
from nons.core.types import CacheConfig, ModelConfig, ModelProvider, NetworkConfig
from nons.observability.events import NodeCompleted, decode_event
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

    from nons.core.results import ExecutionResult, NodeResult

API_KEY = "sk-ant-cache-test-SECRET"
PRICED_MODEL = "claude-haiku-4-5"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        registry.configure_providers(
            ProviderSettings(
                anthropic_api_key=API_KEY,
                anthropic_base_url=server.base_url,
                max_retries=0,
                default_provider=ModelProvider.ANTHROPIC,
            )
        )
        try:
            yield server
        finally:
            registry.reset_providers()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def model(temperature: float) -> ModelConfig:
    return ModelConfig(
        provider=ModelProvider.ANTHROPIC, model_name=PRICED_MODEL, temperature=temperature
    )


def network(
    name: str, temperature: float, cache: CacheConfig | None, node_cache: bool | None = None
) -> NoN:
    return NoN.from_operators(
        [Node("transform", model(temperature), cache=node_cache)],
        NetworkConfig(cache=cache),
        name=name,
    )


@contextlib.asynccontextmanager
async def serving(
    url: str, net: NoN, *, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[ActorHost]:
    """A coordinator and an actor host for `net` on a connection of their own."""
    nc = await connect_nats(ConnectionSettings(url=url, name=unique("nons-cache-serve")))
    try:
        async with (
            ActorHost(nc, [net], tracer_provider=tracer_provider) as actors,
            Coordinator(nc, [net], tracer_provider=tracer_provider),
        ):
            yield actors
    finally:
        await nc.close()


def only_node(result: ExecutionResult) -> NodeResult:
    (layer,) = result.layer_results
    (node,) = layer.nodes
    return node


async def run(nc: NatsClient, name: str, value: Any) -> ExecutionResult:
    client = Client(nc)
    try:
        return await client.execute(name, value, timeout_s=20)
    finally:
        await client.bus.close()


async def test_temperature_zero_repeat_is_served_from_cache(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    name = unique("cache-t0")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    net = network(name, 0.0, CacheConfig())
    async with serving(nats_url, net, tracer_provider=tracer_provider):
        first = await run(nc, name, "  Some   messy TEXT ")
        second = await run(nc, name, "  Some   messy TEXT ")
        other = await run(nc, name, "a different input")
    assert len(fake.message_requests) == 2  # the first and the different input, not the repeat
    computed, served = only_node(first), only_node(second)
    assert not computed.cached
    assert computed.cost.total_cost_usd > 0
    assert served.cached
    assert served.output == computed.output == first.output == second.output
    assert served.cost.total_cost_usd == 0
    assert served.usage.total_tokens == 0
    assert served.saved_cost_usd == pytest.approx(computed.cost.total_cost_usd)
    assert second.saved_cost_usd == pytest.approx(computed.cost.total_cost_usd)
    assert first.saved_cost_usd == 0
    assert second.metadata.cost_usd == 0
    assert not served.is_mock
    assert served.model == computed.model
    assert not only_node(other).cached
    hits = [
        dict(span.attributes or {}).get("nons.cache_hit")
        for span in exporter.get_finished_spans()
        if span.name.startswith("process nons.node.")
    ]
    assert hits == [False, True, False]


async def test_node_completed_event_says_cached(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    name = unique("cache-event")
    completed: list[NodeCompleted] = []

    async def on_event(msg: Msg) -> None:
        event = decode_event(msg.data)
        if isinstance(event, NodeCompleted):
            completed.append(event)

    subscription = await nc.subscribe(events_filter(name), cb=on_event)
    try:
        async with serving(nats_url, network(name, 0.0, CacheConfig())):
            await run(nc, name, "text")
            await run(nc, name, "text")
            await wait_until(lambda: len(completed) == 2, timeout=5)
    finally:
        await subscription.unsubscribe()
    assert [event.cached for event in completed] == [False, True]
    assert completed[1].cost_usd == 0


async def test_warm_temperature_without_opt_in_is_never_cached(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    name = unique("cache-warm")
    async with serving(nats_url, network(name, 0.7, CacheConfig())):
        results = [await run(nc, name, "same input") for _ in range(3)]
    assert len(fake.message_requests) == 3
    assert not any(only_node(result).cached for result in results)
    assert all(result.saved_cost_usd == 0 for result in results)


async def test_node_opt_in_caches_at_any_temperature_and_opt_out_never(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    opted_in, opted_out = unique("cache-in"), unique("cache-out")
    async with serving(nats_url, network(opted_in, 0.7, None, node_cache=True)):
        await run(nc, opted_in, "same input")
        assert only_node(await run(nc, opted_in, "same input")).cached
    assert len(fake.message_requests) == 1
    async with serving(nats_url, network(opted_out, 0.0, CacheConfig(), node_cache=False)):
        await run(nc, opted_out, "same input")
        assert not only_node(await run(nc, opted_out, "same input")).cached
    assert len(fake.message_requests) == 3


async def test_jetstream_bucket_is_shared_by_hosts_on_separate_connections(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    name, bucket = unique("cache-js"), unique("nons-cache-test")
    config = CacheConfig(backend="jetstream", bucket=bucket, ttl_s=60)
    net = network(name, 0.0, config)
    try:
        async with serving(nats_url, net) as first_host:
            first = await run(nc, name, "shared input")
            assert first_host.caches.cache_for(config).stats.stores == 1
        assert len(fake.message_requests) == 1
        async with serving(nats_url, net) as second_host:
            second = await run(nc, name, "shared input")
            stats = second_host.caches.cache_for(config).stats
        assert len(fake.message_requests) == 1  # the second host never called the model
        assert only_node(second).cached
        assert second.output == first.output
        assert first.metadata.cost_usd > 0
        assert second.saved_cost_usd == pytest.approx(first.metadata.cost_usd)
        assert (stats.hits, stats.stores) == (1, 0)
    finally:
        await nc.jetstream().delete_key_value(bucket)
