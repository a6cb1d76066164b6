"""Streaming through the provider wrappers: limits, breaker and GenAI span keep working."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nons.core.errors import CircuitOpenError, ProviderError, ProviderOverloadedError
from nons.core.node import Node
from nons.core.types import CircuitBreakerConfig, ModelConfig, ModelProvider, RateLimitConfig
from nons.observability.genai import TracedModelClient
from nons.operators.context import OperatorContext, use_context
from nons.providers import registry
from nons.providers.base import Completion, CompletionRequest
from nons.providers.breaker import BreakerClient, BreakerState
from nons.providers.limits import RateLimitedClient
from nons.providers.mock import MockBehaviour, MockClient
from nons.providers.settings import ProviderSettings
from nons.providers.streaming import StreamingModelClient, stream_completion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nons.providers.base import ModelClient

REQUEST = CompletionRequest(
    prompt="please write a few words about streaming text",
    config=ModelConfig(provider=ModelProvider.MOCK),
    operator="generate",
)


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


async def collect(items: AsyncIterator[str | Completion]) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    final: list[Completion] = []
    async for item in items:
        if isinstance(item, Completion):
            final.append(item)
        else:
            assert not final, "a delta arrived after the final completion"
            deltas.append(item)
    assert len(final) == 1
    return deltas, final[0]


class CompleteOnly:
    """A client without `stream()` (as the OpenAI adapter)."""

    def __init__(self) -> None:
        self.inner = MockClient()

    @property
    def name(self) -> str:
        return "mock"

    def default_model(self) -> str:
        return "mock-1"

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        """Nothing to close."""


@pytest.mark.parametrize(
    "wrap",
    [
        lambda c: c,
        lambda c: RateLimitedClient(c, RateLimitConfig()),
        lambda c: BreakerClient(c),
        lambda c: TracedModelClient(c, tracer_provider=TracerProvider()),
        lambda c: TracedModelClient(BreakerClient(RateLimitedClient(c, RateLimitConfig()))),
    ],
    ids=["bare", "limits", "breaker", "traced", "all"],
)
async def test_wrappers_pass_the_stream_through(wrap: object) -> None:
    client: ModelClient = wrap(MockClient())  # type: ignore[operator]
    assert isinstance(client, StreamingModelClient)
    deltas, completion = await collect(stream_completion(client, REQUEST))
    assert len(deltas) > 3
    assert "".join(deltas) == completion.text
    assert completion.is_mock


async def test_a_client_that_cannot_stream_gives_its_answer_as_one_delta() -> None:
    client = CompleteOnly()
    assert not isinstance(client, StreamingModelClient)
    for wrapped in (client, BreakerClient(client)):
        deltas, completion = await collect(stream_completion(wrapped, REQUEST))
        assert deltas == [completion.text]


async def test_limiter_slot_and_tokens_are_settled_even_when_the_reader_stops_early() -> None:
    client = RateLimitedClient(MockClient(), RateLimitConfig(max_concurrent=1))
    items = client.stream(REQUEST)
    first = await items.__anext__()
    assert isinstance(first, str)
    assert client.limiter.in_flight == 1
    await items.aclose()  # type: ignore[attr-defined]
    assert client.limiter.in_flight == 0
    before = client.limiter.available("requests_per_minute")
    deltas, completion = await collect(client.stream(REQUEST))
    assert "".join(deltas) == completion.text
    assert client.limiter.in_flight == 0
    assert client.limiter.available("requests_per_minute") < before


async def test_breaker_counts_stream_failures_and_fails_fast_when_open() -> None:
    failing = MockClient(MockBehaviour(failure_rate=1.0, fail_with="provider_overloaded"))
    client = BreakerClient(failing, CircuitBreakerConfig(failure_threshold=2))
    for _ in range(2):
        with pytest.raises(ProviderOverloadedError):
            await collect(client.stream(REQUEST))
    assert client.states() == {"mock-1": BreakerState.OPEN}
    with pytest.raises(CircuitOpenError):
        await collect(client.stream(REQUEST))
    healthy = BreakerClient(MockClient(), CircuitBreakerConfig(failure_threshold=1))
    await collect(healthy.stream(REQUEST))
    assert healthy.breaker("mock-1").consecutive_failures == 0


async def test_traced_stream_is_one_genai_span_with_usage_and_first_chunk() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = TracedModelClient(MockClient(), tracer_provider=provider)
    _, completion = await collect(client.stream(REQUEST))
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat mock-1"
    attributes = dict(span.attributes or {})
    assert attributes["nons.stream"] is True
    assert attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert [event.name for event in span.events] == ["gen_ai.first_chunk"]


async def test_traced_stream_records_a_failure_on_the_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    failing = MockClient(MockBehaviour(failure_rate=1.0, fail_with="provider_overloaded"))
    client = TracedModelClient(failing, tracer_provider=provider)
    with pytest.raises(ProviderError):
        await collect(client.stream(REQUEST))
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["error.type"] == "provider_overloaded"


async def test_operator_context_streams_to_on_delta_and_records_the_completion() -> None:
    seen: list[str] = []

    async def on_delta(text: str) -> None:
        seen.append(text)

    context = OperatorContext(operator="generate", stream=True, on_delta=on_delta)
    with use_context(context):
        text = await context.complete("tell me about streams, please")
    assert len(seen) > 1
    assert "".join(seen) == text
    assert context.last_completion is not None
    assert context.last_completion.text == text


async def test_streaming_node_execute_hands_deltas_over_and_matches_its_output() -> None:
    seen: list[str] = []

    async def on_delta(text: str) -> None:
        seen.append(text)

    streaming = Node("transform", stream=True)
    result = await streaming.execute("some  messy  text to transform", on_delta=on_delta)
    assert "".join(seen) == result.output
    assert len(seen) > 1
    before = len(seen)
    plain = await Node("transform").execute("some  messy  text to transform", on_delta=on_delta)
    assert plain.output == result.output
    assert len(seen) == before  # a node that does not stream never calls on_delta
