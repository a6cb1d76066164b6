"""The real openai SDK, driven through OpenAIClient against the local fake chat API."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

import pytest

from nons.core.errors import (
    ConfigurationError,
    ProviderBadRequestError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from nons.core.types import ModelConfig, ModelProvider, TokenUsage
from nons.providers import registry
from nons.providers.base import CompletionRequest
from nons.providers.openai import LOCAL_SERVER_API_KEY, OpenAIClient
from nons.providers.settings import ProviderSettings
from tests.support.fake_http import ScriptedResponse
from tests.support.fake_openai import FakeOpenAI, chat_body, chat_error_response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

API_KEY = "sk-openai-test-SECRET-42"


def _request(response_format: str = "text", **config: object) -> CompletionRequest:
    return CompletionRequest(
        prompt="Say hello.",
        system="You are terse.",
        response_format=response_format,  # type: ignore[arg-type]
        config=ModelConfig(provider=ModelProvider.OPENAI, **config),  # type: ignore[arg-type]
    )


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[OpenAIClient]:
    adapter = OpenAIClient(
        ProviderSettings(
            openai_api_key=API_KEY, openai_base_url=fake.base_url, request_timeout_s=10.0
        )
    )
    yield adapter
    await adapter.aclose()


async def test_success_maps_usage_cost_and_request(fake: FakeOpenAI, client: OpenAIClient) -> None:
    fake.enqueue(
        ScriptedResponse(
            body=chat_body("Hi.", prompt_tokens=1000, completion_tokens=200, cached_tokens=400)
        )
    )
    completion = await client.complete(
        _request("json", temperature=0.3, max_tokens=64, top_p=0.5, stop=("END",))
    )

    assert completion.text == "Hi."
    assert completion.provider == "openai"
    assert completion.request_model == "gpt-4o-mini"
    assert completion.response_model == "gpt-4o-mini-2024-07-18"
    assert completion.finish_reason == "stop"
    assert completion.response_id == "chatcmpl-fake-1"
    assert completion.usage == TokenUsage(
        prompt_tokens=600, completion_tokens=200, cache_read_tokens=400
    )
    # (600 * 0.15 + 400 * 0.075) / 1e6 input, 200 * 0.6 / 1e6 output
    assert completion.cost.input_cost_usd == pytest.approx(0.00012)
    assert completion.cost.output_cost_usd == pytest.approx(0.00012)

    (sent,) = fake.requests
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."},
        ],
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.5,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
    }


async def test_rate_limited_then_success(fake: FakeOpenAI, client: OpenAIClient) -> None:
    fake.enqueue(chat_error_response(429, "slow down"))
    completion = await client.complete(_request())
    assert completion.text == "Hello from the fake chat API."
    assert len(fake.requests) == 2


async def test_rate_limited_after_retries(fake: FakeOpenAI, client: OpenAIClient) -> None:
    fake.enqueue(*(chat_error_response(429, "slow down") for _ in range(3)))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await client.complete(_request())
    assert "429" in str(caught.value)
    assert len(fake.requests) == 3


async def test_bad_request_is_not_retried(fake: FakeOpenAI, client: OpenAIClient) -> None:
    fake.enqueue(chat_error_response(400, "unknown model"))
    with pytest.raises(ProviderBadRequestError) as caught:
        await client.complete(_request())
    assert "unknown model" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value)
    assert len(fake.requests) == 1


async def test_server_error_after_retries(fake: FakeOpenAI, client: OpenAIClient) -> None:
    fake.enqueue(*(chat_error_response(503, "busy") for _ in range(3)))
    with pytest.raises(ProviderUnavailableError) as caught:
        await client.complete(_request())
    assert caught.value.retryable
    assert caught.value.details["status"] == 503
    assert len(fake.requests) == 3


async def test_local_server_needs_no_key(fake: FakeOpenAI) -> None:
    adapter = OpenAIClient(ProviderSettings(openai_base_url=fake.base_url))
    try:
        completion = await adapter.complete(_request(model_name="llama3"))
    finally:
        await adapter.aclose()
    assert completion.response_model == "llama3"
    assert completion.cost.total_cost_usd == 0.0  # unknown model: no guessed price
    assert fake.requests[0].headers["authorization"] == f"Bearer {LOCAL_SERVER_API_KEY}"


def test_no_key_and_no_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIClient(ProviderSettings())


def test_missing_sdk_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    monkeypatch.delitem(sys.modules, "nons.providers.openai")
    registry.reset_providers()
    registry.configure_providers(ProviderSettings(openai_base_url="http://127.0.0.1:9/v1"))
    try:
        with pytest.raises(ConfigurationError, match=r"pip install 'nons\[openai\]'"):
            registry.get_model_client(ModelProvider.OPENAI)
        with pytest.raises(ConfigurationError, match=r"nons\[openai\]"):
            importlib.import_module("nons.providers.openai")
    finally:
        registry.reset_providers()
