"""The real anthropic SDK, driven through AnthropicClient against the local fake Messages API."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from nons.core.errors import (
    ConfigurationError,
    ProviderAuthenticationError,
    ProviderBadRequestError,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from nons.core.types import ModelConfig, ModelProvider, TokenUsage
from nons.providers import registry
from nons.providers.anthropic import AnthropicClient
from nons.providers.base import Completion, CompletionRequest, ModelClient
from nons.providers.pricing import cost_for
from nons.providers.settings import ProviderSettings
from tests.support.fake_anthropic import (
    DEFAULT_TEXT,
    FakeAnthropic,
    error_response,
    message_response,
)
from tests.support.fake_http import ScriptedResponse, SseEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

API_KEY = "sk-ant-test-SECRET-7f3a9c0d"


def _request(**config: object) -> CompletionRequest:
    return CompletionRequest(
        prompt="Say hello.",
        system="You are terse.",
        config=ModelConfig(provider=ModelProvider.ANTHROPIC, **config),  # type: ignore[arg-type]
    )


def _settings(fake: FakeAnthropic, *, max_retries: int = 2) -> ProviderSettings:
    return ProviderSettings(
        anthropic_api_key=API_KEY,
        anthropic_base_url=fake.base_url,
        max_retries=max_retries,
        request_timeout_s=10.0,
    )


def _assert_no_key(error: BaseException) -> None:
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    if isinstance(error, ProviderError):
        assert API_KEY not in repr(error.details)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[AnthropicClient]:
    adapter = AnthropicClient(_settings(fake))
    yield adapter
    await adapter.aclose()


async def test_success_maps_text_usage_cost_and_request(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    fake.enqueue(
        message_response(
            "Hi there.",
            model="claude-haiku-4-5-20251001",
            input_tokens=1000,
            output_tokens=500,
            cache_read_input_tokens=2000,
            cache_creation_input_tokens=400,
            message_id="msg_abc",
        )
    )
    request = _request(
        model_name="claude-haiku-4-5",
        temperature=0.2,
        max_tokens=300,
        top_p=0.9,
        stop=("END",),
        extra_params={"top_k": 5, "metadata": {"user_id": "u-1"}},
    )

    completion = await client.complete(request)

    assert completion.text == "Hi there."
    assert completion.provider == "anthropic"
    assert completion.request_model == "claude-haiku-4-5"
    assert completion.response_model == "claude-haiku-4-5-20251001"
    assert completion.response_id == "msg_abc"
    assert completion.finish_reason == "end_turn"
    assert not completion.is_mock
    assert completion.usage == TokenUsage(
        prompt_tokens=1000, completion_tokens=500, cache_read_tokens=2000, cache_creation_tokens=400
    )
    # (1000 * 1 + 400 * 1.25 + 2000 * 0.1) / 1e6 input, 500 * 5 / 1e6 output
    assert completion.cost.input_cost_usd == pytest.approx(0.0017)
    assert completion.cost.output_cost_usd == pytest.approx(0.0025)
    assert completion.cost.total_cost_usd == pytest.approx(0.0042)

    (sent,) = fake.message_requests
    # SDK 2.x sends the key as a bearer token (the fake also accepts x-api-key).
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["anthropic-version"] == "2026-10-21"
    # API 2026-10-21 rejects sampling parameters: temperature and top_p are not sent;
    # extra_params go through as SDK arguments (metadata) or body fields (top_k).
    assert sent.body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Say hello."}],
        "system": "You are terse.",
        "stop_sequences": ["END"],
        "top_k": 5,
        "metadata": {"user_id": "u-1"},
    }


async def test_default_model_and_null_cache_usage(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    fake.enqueue(
        message_response(
            model="claude-haiku-4-5",
            cache_read_input_tokens=None,
            cache_creation_input_tokens=None,
        )
    )
    completion = await client.complete(_request())
    assert fake.message_requests[0].body["model"] == "claude-haiku-4-5"
    assert completion.usage.cache_read_tokens == 0
    assert completion.usage.cache_creation_tokens == 0
    assert completion.cost == cost_for("anthropic", "claude-haiku-4-5", completion.usage)
    assert completion.cost.total_cost_usd > 0


async def test_rate_limited_then_success_is_retried_by_the_sdk(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    fake.enqueue(error_response(429, message="slow down"))
    completion = await client.complete(_request())
    assert completion.text == DEFAULT_TEXT
    assert len(fake.message_requests) == 2


async def test_rate_limited_after_retries(fake: FakeAnthropic, client: AnthropicClient) -> None:
    fake.enqueue(*(error_response(429, message="slow down") for _ in range(3)))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await client.complete(_request())
    assert caught.value.retryable
    assert len(fake.message_requests) == 3


async def test_overloaded_after_retries(fake: FakeAnthropic, client: AnthropicClient) -> None:
    fake.enqueue(*(error_response(529, message="Overloaded") for _ in range(3)))
    with pytest.raises(ProviderOverloadedError) as caught:
        await client.complete(_request())
    error = caught.value
    assert error.retryable
    assert error.type == "provider_overloaded"
    assert "529" in str(error)
    assert "Overloaded" in str(error)
    assert error.details["status"] == 529
    assert isinstance(error.__cause__, Exception)
    assert len(fake.message_requests) == 3  # first try + max_retries=2
    _assert_no_key(error)


async def test_bad_request_is_not_retried(fake: FakeAnthropic, client: AnthropicClient) -> None:
    fake.enqueue(error_response(400, message="max_tokens: must be positive"))
    with pytest.raises(ProviderBadRequestError) as caught:
        await client.complete(_request())
    assert not caught.value.retryable
    assert "400" in str(caught.value)
    assert "max_tokens: must be positive" in str(caught.value)
    assert caught.value.details["api_error_type"] == "invalid_request_error"
    assert len(fake.message_requests) == 1
    _assert_no_key(caught.value)


async def test_server_error_after_retries(fake: FakeAnthropic, client: AnthropicClient) -> None:
    fake.enqueue(*(error_response(500, message="Internal server error") for _ in range(3)))
    with pytest.raises(ProviderUnavailableError) as caught:
        await client.complete(_request())
    assert caught.value.retryable
    assert caught.value.details["request_id"] == "req_fake_500"
    assert len(fake.message_requests) == 3


async def test_wrong_key_is_an_authentication_error(fake: FakeAnthropic) -> None:
    adapter = AnthropicClient(
        ProviderSettings(anthropic_api_key="sk-ant-wrong", anthropic_base_url=fake.base_url)
    )
    try:
        with pytest.raises(ProviderAuthenticationError) as caught:
            await adapter.complete(_request())
    finally:
        await adapter.aclose()
    assert "sk-ant-wrong" not in str(caught.value)
    assert len(fake.message_requests) == 1


async def test_authentication_error_hides_the_key_even_if_echoed(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    fake.enqueue(error_response(401, message=f"invalid x-api-key {API_KEY}"))
    with pytest.raises(ProviderAuthenticationError) as caught:
        await client.complete(_request())
    assert "401" in str(caught.value)
    assert "***" in str(caught.value)
    assert not caught.value.retryable
    _assert_no_key(caught.value)


async def test_connection_error_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = AnthropicClient(
        ProviderSettings(
            anthropic_api_key=API_KEY,
            anthropic_base_url=f"http://127.0.0.1:{port}",
            max_retries=0,
            request_timeout_s=5.0,
        )
    )
    try:
        with pytest.raises(ProviderUnavailableError) as caught:
            await adapter.complete(_request())
    finally:
        await adapter.aclose()
    assert caught.value.details["reason"] == "connection"
    _assert_no_key(caught.value)


async def test_stream_yields_deltas_then_the_completion(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    text = "Streaming works across several deltas."
    fake.enqueue(message_response(text, model="claude-haiku-4-5", output_tokens=9))
    items = [item async for item in client.stream(_request())]

    deltas = [item for item in items if isinstance(item, str)]
    final = items[-1]
    assert isinstance(final, Completion)
    assert len(deltas) > 1
    assert "".join(deltas) == text
    assert final.text == text
    assert final.usage.completion_tokens == 9
    assert final.usage.cache_read_tokens == 100
    assert final.finish_reason == "end_turn"
    assert final.cost.total_cost_usd > 0
    assert fake.message_requests[0].body["stream"] is True


async def test_error_event_inside_a_stream_is_mapped(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    error_event = SseEvent(
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    fake.enqueue(ScriptedResponse(status=200, events=(error_event,)))
    with pytest.raises(ProviderOverloadedError):
        async for _ in client.stream(_request()):
            pass


async def test_sdk_span_and_traceparent_are_off(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    assert client.sdk_client.open_telemetry["traces"]["enabled"] is False
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("our-genai-span"):
        assert trace.get_current_span().get_span_context().is_valid
        await client.complete(_request())
    assert "traceparent" not in fake.message_requests[0].headers


async def test_missing_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicClient(ProviderSettings())


async def test_registry_serves_the_anthropic_client(fake: FakeAnthropic) -> None:
    registry.reset_providers()
    registry.configure_providers(_settings(fake, max_retries=0))
    try:
        client = registry.get_model_client(None)
        assert isinstance(client, ModelClient)
        assert client.name == "mock"  # default provider of ProviderSettings()
        anthropic_client = registry.get_model_client(ModelProvider.ANTHROPIC)
        assert registry.get_model_client(ModelProvider.ANTHROPIC) is anthropic_client
        completion = await registry.complete(_request())
        assert completion.provider == "anthropic"
        assert not completion.is_mock

        fake.enqueue(error_response(529, message="Overloaded"))
        with pytest.raises(ProviderOverloadedError):  # never a silent mock answer
            await registry.complete(_request())
    finally:
        await registry.aclose_clients()
        registry.reset_providers()


async def test_sampling_parameters_only_when_asked_for_explicitly(
    fake: FakeAnthropic, client: AnthropicClient
) -> None:
    await client.complete(_request(temperature=1.5))
    await client.complete(_request(extra_params={"temperature": 0.5}))
    implicit, explicit = fake.message_requests
    assert "temperature" not in implicit.body
    assert explicit.body["temperature"] == 0.5
