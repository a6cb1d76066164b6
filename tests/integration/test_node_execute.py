"""`Node.execute`, the unit of work an actor runs, on the mock and on the real anthropic SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nons.core.errors import OperatorValidationError, ProviderRateLimitedError
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from tests.support.fake_anthropic import FakeAnthropic, error_response, message_response

if TYPE_CHECKING:
    from collections.abc import Iterator

API_KEY = "sk-ant-node-test-SECRET"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
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


async def test_node_executes_on_the_mock_provider() -> None:
    node = Node(
        "classify", ModelConfig(provider=ModelProvider.MOCK), categories=["bug", "question"]
    )
    result = await node.execute("the app crashes on start")
    assert result.output["category"] in ("bug", "question")
    assert result.is_mock
    assert result.provider == "mock"
    assert result.usage.total_tokens > 0


async def test_node_executes_on_the_fake_anthropic_server(fake: FakeAnthropic) -> None:
    fake.enqueue(message_response("Cleaned text.", model="claude-haiku-4-5"))
    node = Node(
        "transform",
        ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-haiku-4-5"),
        additional_prompt_context="Keep it short.",
    )
    result = await node.execute("  messy   TEXT ")
    assert result.output == "Cleaned text."
    assert not result.is_mock
    assert result.provider == "anthropic"
    assert result.usage.prompt_tokens > 0
    assert result.cost.total_cost_usd > 0
    body = fake.message_requests[-1].body
    assert body["model"] == "claude-haiku-4-5"
    assert "Keep it short." in str(body.get("system"))


async def test_provider_errors_are_typed_and_never_fall_back_to_the_mock(
    fake: FakeAnthropic,
) -> None:
    fake.enqueue(error_response(429, "rate_limit_error", "slow down"))
    node = Node("generate", ModelConfig(provider=ModelProvider.ANTHROPIC))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await node.execute("write a haiku")
    assert caught.value.retryable
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value)


async def test_bad_operator_input_is_a_typed_error() -> None:
    node = Node("majority", strategy="weighted")
    with pytest.raises(OperatorValidationError) as caught:
        await node.execute({"input_data": ["a"], "strategy": "plurality"})
    assert caught.value.rule == "enum"
    assert caught.value.field == "$.strategy"
