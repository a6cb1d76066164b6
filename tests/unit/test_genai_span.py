from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from nons.core.errors import ProviderRateLimitedError
from nons.core.types import CostInfo, ModelConfig, TokenUsage
from nons.observability.genai import TracedModelClient, genai_provider_name
from nons.providers.base import Completion, CompletionRequest, ModelClient

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "sk-ant-secret-key"


class FakeClient:
    def __init__(self, name: str = "anthropic", error: Exception | None = None) -> None:
        self._name = name
        self.error = error
        self.api_key = SECRET
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    def default_model(self) -> str:
        return "default-model"

    async def complete(self, request: CompletionRequest) -> Completion:
        if self.error is not None:
            raise self.error
        return Completion(
            text="answer " * 10,
            provider=self._name,
            request_model=request.config.model_name or "default-model",
            response_model="claude-x-20250101",
            usage=TokenUsage(prompt_tokens=11, completion_tokens=7, cache_read_tokens=3),
            cost=CostInfo(input_cost_usd=0.001, output_cost_usd=0.002),
            finish_reason="end_turn",
            is_mock=self._name == "mock",
            response_id="msg_123",
        )

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def request(prompt: str = "What is NATS?", model: str | None = "claude-x") -> CompletionRequest:
    return CompletionRequest(
        prompt=prompt,
        config=ModelConfig(model_name=model, temperature=0.2, max_tokens=256, stop=("END",)),
        system="be brief",
        operator="generate",
    )


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def all_values(span: ReadableSpan) -> list[str]:
    values = [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        values.extend(str(v) for v in (event.attributes or {}).values())
    return values


async def test_span_follows_genai_conventions(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    inner = FakeClient()
    client = TracedModelClient(inner, tracer_provider=provider)
    assert isinstance(client, ModelClient)
    assert client.name == "anthropic"
    assert client.default_model() == "default-model"
    completion = await client.complete(request())
    assert completion.response_id == "msg_123"

    span = only_span(exporter)
    assert span.name == "chat claude-x"
    assert span.kind is trace.SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-x"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 256
    assert tuple(attrs["gen_ai.request.stop_sequences"]) == ("END",)  # type: ignore[arg-type]
    assert attrs["gen_ai.response.model"] == "claude-x-20250101"
    assert attrs["gen_ai.response.id"] == "msg_123"
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("end_turn",)  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.input_tokens"] == 14
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["nons.cost_usd"] == pytest.approx(0.003)
    assert attrs["nons.is_mock"] is False
    assert span.status.status_code is StatusCode.UNSET
    assert span.events == ()
    assert not any("What is NATS" in value or "answer" in value for value in all_values(span))
    assert not any(SECRET in value for value in all_values(span))

    await client.aclose()
    assert inner.closed


async def test_default_model_and_mock_provider_name(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    client = TracedModelClient(FakeClient("mock"), tracer_provider=provider)
    await client.complete(request(model=None))
    span = only_span(exporter)
    assert span.name == "chat default-model"
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "nons.mock"
    assert attrs["nons.is_mock"] is True
    assert genai_provider_name("openai") == "openai"


async def test_error_sets_status_and_wire_type(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    error = ProviderRateLimitedError("anthropic answered 429")
    client = TracedModelClient(FakeClient(error=error), tracer_provider=provider)
    with pytest.raises(ProviderRateLimitedError):
        await client.complete(request())
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "rate_limited"
    assert "gen_ai.response.model" not in attrs
    assert [event.name for event in span.events] == ["exception"]


async def test_content_recorded_and_truncated_when_opted_in(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    client = TracedModelClient(
        FakeClient(), tracer_provider=provider, capture_content=True, max_content_chars=20
    )
    await client.complete(request(prompt="short prompt"))
    await client.complete(request(prompt="p" * 50))
    short, long = exporter.get_finished_spans()

    events = {event.name: dict(event.attributes or {}) for event in short.events}
    assert events["gen_ai.system.message"] == {"content": "be brief"}
    assert events["gen_ai.user.message"] == {"content": "short prompt"}
    choice = events["gen_ai.choice"]
    assert choice["content"] == ("answer " * 10)[:20]
    assert choice["content.truncated"] is True
    assert choice["content.length"] == 70
    assert choice["finish_reason"] == "end_turn"

    long_events = {event.name: dict(event.attributes or {}) for event in long.events}
    assert long_events["gen_ai.user.message"]["content"] == "p" * 20
    assert long_events["gen_ai.user.message"]["content.length"] == 50
    assert not any(SECRET in value for value in all_values(long))


async def test_span_nests_under_current_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    client = TracedModelClient(FakeClient(), tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("node") as node:
        await client.complete(request())
    chat = next(span for span in exporter.get_finished_spans() if span.name.startswith("chat"))
    assert chat.parent is not None
    assert chat.parent.span_id == node.get_span_context().span_id


async def test_install_genai_tracing_wraps_registry_clients(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from nons.core.types import ModelProvider
    from nons.observability.genai import install_genai_tracing
    from nons.providers import registry
    from nons.providers.settings import ProviderSettings

    registry.configure_providers(ProviderSettings())
    try:
        install_genai_tracing(tracer_provider=provider)
        client = registry.get_model_client(ModelProvider.MOCK)
        assert isinstance(client, TracedModelClient)
        completion = await client.complete(
            CompletionRequest(prompt="hello", config=ModelConfig(provider=ModelProvider.MOCK))
        )
        assert completion.is_mock
        span = only_span(exporter)
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.provider.name"] == "nons.mock"
        assert attrs["nons.is_mock"] is True
    finally:
        registry.reset_providers()
        await registry.aclose_clients()
