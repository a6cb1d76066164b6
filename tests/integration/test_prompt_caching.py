"""Prompt caching across a layer's nodes: the real anthropic SDK against the fake Messages API.

The fake bills a `cache_control` prefix as the API does (a write for a new prefix, a
read for a repeat, only once the writing answer has begun), so these tests check what
the provider marks, that the coordinator's warm-up lets one call write before the
others read, and that the cache tokens reach spans, events, replies and sinks.
"""

from __future__ import annotations

import contextlib
import json
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
from nons.core.names import events_filter, exec_subject
from nons.core.types import ModelConfig, ModelProvider, NetworkConfig, TokenUsage
from nons.observability.events import NodeCompleted, decode_event
from nons.observability.genai import install_genai_tracing
from nons.providers import registry
from nons.providers.pricing import price_for
from nons.providers.registry import set_client_wrapper
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.sinks import JsonlSink, SinkSettings, run_sink
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.sinks import recorded_event_count
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from opentelemetry.sdk.trace import ReadableSpan

API_KEY = "sk-ant-prompt-cache-SECRET"
MODEL = "claude-sonnet-4-5"
"""A Sonnet model: 1024 tokens is the shortest prefix it caches."""
LATENCY_S = 0.3
"""How long the fake takes to answer: the window in which an unwarmed call would miss."""
LONG_INPUT = "The incident review covers the failover of the primary database. " * 260
"""About 17,000 characters: some 4,200 tokens, well past the minimum."""


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY, latency_s=LATENCY_S) as server:
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


def ensemble(
    name: str, *, network_cache: bool = True, node_cache: bool = True, stream: bool = False
) -> NoN:
    model = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name=MODEL)
    node = Node("generate", model, prompt_cache=node_cache, stream=stream)
    return NoN.from_operators([node * 5], NetworkConfig(prompt_cache=network_cache), name=name)


@contextlib.asynccontextmanager
async def serving(
    url: str, net: NoN, *, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[Client]:
    nc = await connect_nats(ConnectionSettings(url=url, name=unique("nons-prompt-cache")))
    try:
        async with (
            ActorHost(nc, [net], tracer_provider=tracer_provider),
            Coordinator(nc, [net], tracer_provider=tracer_provider),
        ):
            client = Client(nc)
            try:
                yield client
            finally:
                await client.close()
    finally:
        await nc.close()


def sonnet_input_cost(usage: TokenUsage) -> float:
    price = price_for("anthropic", MODEL)
    assert price is not None
    return (
        usage.prompt_tokens * price.input_usd
        + usage.cache_creation_tokens * price.cache_write_usd
        + usage.cache_read_tokens * price.cache_read_usd
    ) / 1_000_000


def int_attribute(span: ReadableSpan, key: str) -> int:
    value = (span.attributes or {}).get(key, 0)
    assert isinstance(value, int)
    return value


def assert_one_write_four_reads(fake: FakeAnthropic) -> None:
    log = sorted(fake.cache_log, key=lambda record: record.received_at)
    assert len(log) == 5
    writes = [r for r in log if r.cache_creation_input_tokens > 0]
    reads = [r for r in log if r.cache_read_input_tokens > 0]
    assert len(writes) == 1, log
    assert len(reads) == 4, log
    assert writes[0] is log[0]
    assert {r.cache_read_input_tokens for r in reads} == {writes[0].cache_creation_input_tokens}


async def test_warm_up_writes_once_and_four_read_with_cost_in_events_spans_and_reply(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic
) -> None:
    name = unique("pcache")
    completed: list[NodeCompleted] = []

    async def on_event(msg: Msg) -> None:
        event = decode_event(msg.data)
        if isinstance(event, NodeCompleted):
            completed.append(event)

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    subscription = await nc.subscribe(events_filter(name), cb=on_event)
    install_genai_tracing(tracer_provider=tracer_provider)
    try:
        async with serving(nats_url, ensemble(name), tracer_provider=tracer_provider):
            reply_msg = await nc.request(
                exec_subject(name), json.dumps({"input": LONG_INPUT}).encode(), timeout=20
            )
            await wait_until(lambda: len(completed) == 5, timeout=5, message="node.completed")
    finally:
        set_client_wrapper(None)
        await subscription.unsubscribe()

    # The order: the leader's answer began before any of the other four was received.
    log = sorted(fake.cache_log, key=lambda record: record.received_at)
    leader = log[0]
    assert leader.answered_at is not None
    assert all(leader.answered_at <= other.received_at for other in log[1:])
    assert_one_write_four_reads(fake)
    # What was sent: the system prompt is short, so only the user message is marked.
    body = fake.message_requests[0].body
    assert isinstance(body["system"], str)
    (block,) = body["messages"][0]["content"]
    assert block["cache_control"] == {"type": "ephemeral"}

    written = leader.cache_creation_input_tokens
    assert written > 4000
    # Events: each node's usage carries its cache tokens and is priced with the multipliers.
    assert sorted(e.usage.cache_creation_tokens for e in completed if e.usage) == [0] * 4 + [
        written
    ]
    assert sorted(e.usage.cache_read_tokens for e in completed if e.usage) == [0] + [written] * 4
    for event in completed:
        assert event.usage is not None
        output_cost = event.usage.completion_tokens * 15.0 / 1_000_000
        assert event.cost_usd == pytest.approx(sonnet_input_cost(event.usage) + output_cost)
    # The reply document: execution usage sums the nodes' cache tokens, cost uses them.
    reply: dict[str, Any] = json.loads(reply_msg.data)
    assert reply["status"] == "completed"
    assert reply["usage"]["cache_creation_tokens"] == written
    assert reply["usage"]["cache_read_tokens"] == 4 * written
    assert reply["cost_usd"] == pytest.approx(sum(e.cost_usd or 0.0 for e in completed))
    uncached = 5 * written * 3.0 / 1_000_000
    cached = (written * 3.75 + 4 * written * 0.3) / 1_000_000
    input_cost = sum([sonnet_input_cost(e.usage) for e in completed if e.usage], 0.0)
    assert cached <= input_cost < uncached / 2
    # Spans: the GenAI span of each call has the cache attributes.
    await wait_until(
        lambda: sum(s.name.startswith("chat") for s in exporter.get_finished_spans()) == 5,
        timeout=5,
        message="chat spans",
    )
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    reads = sorted(int_attribute(s, "gen_ai.usage.cache_read.input_tokens") for s in chats)
    writes = sorted(int_attribute(s, "gen_ai.usage.cache_creation.input_tokens") for s in chats)
    assert reads == [0] + [written] * 4
    assert writes == [0] * 4 + [written]


async def test_streaming_leader_releases_the_others_at_its_first_token(
    nats_url: str, fake: FakeAnthropic
) -> None:
    name = unique("pcache-stream")
    fake.stream_delay_s = 0.1  # the leader streams for over a second after its first event
    async with serving(nats_url, ensemble(name, stream=True)) as client:
        result = await client.execute(name, LONG_INPUT, timeout_s=20)
    assert result.status == "completed"
    log = sorted(fake.cache_log, key=lambda record: record.received_at)
    leader = log[0]
    assert leader.answered_at is not None
    assert leader.finished_at is not None
    assert leader.finished_at - leader.answered_at > 1.0
    # Sent once the leader had begun answering, long before its stream ended.
    assert all(leader.answered_at <= other.received_at for other in log[1:])
    assert all(other.received_at < leader.finished_at - 0.5 for other in log[1:])
    assert_one_write_four_reads(fake)
    assert result.metadata.token_usage.cache_read_tokens == 4 * log[0].cache_creation_input_tokens


@pytest.mark.parametrize("where", ["network", "node"])
async def test_opt_out_sends_no_cache_control_and_does_not_wait(
    nats_url: str, fake: FakeAnthropic, where: str
) -> None:
    name = unique(f"pcache-off-{where}")
    net = ensemble(name, network_cache=where != "network", node_cache=where != "node")
    async with serving(nats_url, net) as client:
        result = await client.execute(name, LONG_INPUT, timeout_s=20)
    assert result.status == "completed"
    bodies = [request.body for request in fake.message_requests]
    assert len(bodies) == 5
    assert "cache_control" not in json.dumps(bodies)
    assert all(isinstance(body["messages"][0]["content"], str) for body in bodies)
    assert fake.cache_log == []
    # Not warmed: all five were received before the first was answered.
    assert result.layer_results[0].duration_ms < 2 * LATENCY_S * 1000


async def test_short_prompt_is_not_marked_and_not_warmed(
    nats_url: str, fake: FakeAnthropic
) -> None:
    name = unique("pcache-short")
    async with serving(nats_url, ensemble(name)) as client:
        result = await client.execute(name, "a short question", timeout_s=20)
    assert result.status == "completed"
    assert len(fake.message_requests) == 5
    assert "cache_control" not in json.dumps([r.body for r in fake.message_requests])
    assert result.layer_results[0].duration_ms < 2 * LATENCY_S * 1000


async def test_repeat_after_the_ttl_writes_again(nats_url: str, fake: FakeAnthropic) -> None:
    name = unique("pcache-ttl")
    model = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name=MODEL)
    net = NoN.from_operators([Node("generate", model)], name=name)
    async with serving(nats_url, net) as client:
        first = await client.execute(name, LONG_INPUT, timeout_s=20)
        second = await client.execute(name, LONG_INPUT, timeout_s=20)
        fake.advance(301)
        third = await client.execute(name, LONG_INPUT, timeout_s=20)
    usages = [r.metadata.token_usage for r in (first, second, third)]
    assert [u.cache_creation_tokens > 0 for u in usages] == [True, False, True]
    assert [u.cache_read_tokens > 0 for u in usages] == [False, True, False]


async def test_jsonl_sink_records_cache_tokens(
    nats_url: str, nc: NatsClient, fake: FakeAnthropic, tmp_path: Path
) -> None:
    name = unique("pcache-sink")
    async with serving(nats_url, ensemble(name)) as client:
        result = await client.execute(name, LONG_INPUT, timeout_s=20)
    expected = await recorded_event_count(nc, name, [result])
    out = tmp_path / "events.jsonl"
    settings = SinkSettings(name=unique("pcache-jsonl"), network=name, max_events=expected)
    async with JsonlSink(out) as sink:
        await run_sink(nc, sink, settings)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    nodes = [line for line in lines if line["type"] == "node.completed"]
    assert sorted(line["usage"]["cache_read_tokens"] > 0 for line in nodes) == [False] + [True] * 4
    (done,) = [line for line in lines if line["type"] == "execution.completed"]
    usage = result.metadata.token_usage
    assert done["usage"]["cache_read_tokens"] == usage.cache_read_tokens > 0
    assert done["usage"]["cache_creation_tokens"] == usage.cache_creation_tokens > 0
    assert done["cost_usd"] == pytest.approx(result.metadata.cost_usd)
