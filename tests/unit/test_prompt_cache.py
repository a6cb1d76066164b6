"""Prompt caching without sockets: estimate, mock accounting, marking, budgets, warm-up."""

from __future__ import annotations

from typing import Any

import pytest

from nons.coordinator._warmup import plan_warmup
from nons.coordinator.budget import PricingDefaults, worst_case_cost
from nons.core.layer import Layer
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider, NetworkConfig
from nons.providers.anthropic import AnthropicClient
from nons.providers.base import CompletionRequest, OutputSchema
from nons.providers.mock import MockClient
from nons.providers.pricing import estimate_tokens, is_cacheable, min_cacheable_tokens
from nons.providers.settings import ProviderSettings

SONNET = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-sonnet-4-5")
MOCK = ModelConfig(provider=ModelProvider.MOCK)
LONG = "x" * 20_000


def test_estimate_and_minimum_lengths() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcde") == 2
    assert min_cacheable_tokens("claude-haiku-4-5") == 2048
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1024
    assert is_cacheable(4096, "claude-sonnet-4-5")
    assert not is_cacheable(4095, "claude-sonnet-4-5")
    assert not is_cacheable(8000, "claude-haiku-4-5")


async def test_mock_writes_a_new_long_prefix_then_reads_it() -> None:
    mock = MockClient()
    request = CompletionRequest(prompt=LONG, system="sys", config=ModelConfig())
    first, second = await mock.complete(request), await mock.complete(request)
    assert first.usage.cache_creation_tokens == first.usage.cache_read_tokens + 5001 > 5000
    assert first.usage.prompt_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_creation_tokens
    assert second.usage.cache_creation_tokens == 0
    assert second.text == first.text


@pytest.mark.parametrize(
    "request_",
    [
        CompletionRequest(prompt=LONG, config=ModelConfig(), prompt_cache=False),
        CompletionRequest(prompt="short", config=ModelConfig()),
    ],
)
async def test_mock_opted_out_or_short_prompt_is_plain_input(request_: CompletionRequest) -> None:
    mock = MockClient()
    for _ in range(2):
        usage = (await mock.complete(request_)).usage
        assert (usage.cache_read_tokens, usage.cache_creation_tokens) == (0, 0)
        assert usage.prompt_tokens > 0


def _arguments(request: CompletionRequest) -> dict[str, Any]:
    client = AnthropicClient(ProviderSettings(anthropic_api_key="k", anthropic_base_url="http://x"))
    return client._arguments(request, frozenset())[1]


def test_anthropic_marks_long_system_and_user_message() -> None:
    kwargs = _arguments(CompletionRequest(prompt=LONG, system="s" * 5000, config=SONNET))
    assert kwargs["system"] == [
        {"type": "text", "text": "s" * 5000, "cache_control": {"type": "ephemeral"}}
    ]
    assert kwargs["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_anthropic_counts_tools_in_the_prefix_and_leaves_short_prompts_alone() -> None:
    schema = OutputSchema(name="answer", schema={"type": "object", "description": "d" * 3900})
    with_tool = _arguments(
        CompletionRequest(prompt="p" * 300, system="short", config=SONNET, output_schema=schema)
    )
    assert with_tool["system"] == "short"
    assert with_tool["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    plain = _arguments(CompletionRequest(prompt="hello", system="short", config=SONNET))
    assert plain["messages"] == [{"role": "user", "content": "hello"}]
    assert plain["system"] == "short"
    off = _arguments(CompletionRequest(prompt=LONG, config=SONNET, prompt_cache=False))
    assert off["messages"] == [{"role": "user", "content": LONG}]


def test_budget_prices_a_cacheable_input_as_a_cache_write() -> None:
    cached = worst_case_cost(SONNET, 30_000, prompt_cache=True)
    plain = worst_case_cost(SONNET, 30_000)
    output = SONNET.max_tokens * 15.0 / 1_000_000
    assert (cached - output) == pytest.approx((plain - output) * 1.25)
    assert worst_case_cost(SONNET, 100, prompt_cache=True) == worst_case_cost(SONNET, 100)
    mock = ModelConfig(provider=ModelProvider.MOCK)
    assert worst_case_cost(mock, 30_000, prompt_cache=True) == 0.0


def _layer(*nodes: Node) -> Layer:
    return Layer(list(nodes))


def test_warm_up_plans_one_leader_per_group_of_identical_anthropic_nodes() -> None:
    layer = _layer(*(Node("generate", SONNET) * 3), *(Node("transform", SONNET) * 2))
    warmup = plan_warmup(layer, NetworkConfig(), len(LONG), None)
    assert warmup is not None
    assert set(warmup.leaders) == {"generate-0", "transform-0"}
    assert set(warmup.followers) == {1, 2, 4}
    assert warmup.followers[1] is warmup.leaders["generate-0"]
    assert warmup.followers[4] is warmup.leaders["transform-0"]
    warmup.release("generate-0")
    assert warmup.followers[2].is_set()
    assert not warmup.followers[4].is_set()


@pytest.mark.parametrize(
    ("nodes", "config", "chars", "pricing"),
    [
        (Node("generate", SONNET) * 5, NetworkConfig(), 100, None),  # too short
        (Node("generate", SONNET) * 5, NetworkConfig(prompt_cache=False), len(LONG), None),
        (Node("generate", SONNET, prompt_cache=False) * 5, NetworkConfig(), len(LONG), None),
        (Node("generate", MOCK) * 5, NetworkConfig(), 9e9, None),
        (Node("generate") * 5, NetworkConfig(), len(LONG), None),  # default provider unknown
        (
            Node("generate") * 5,
            NetworkConfig(),
            len(LONG),
            PricingDefaults(provider=ModelProvider.MOCK),
        ),
        ([Node("generate", SONNET)], NetworkConfig(), len(LONG), None),  # one node
    ],
)
def test_no_warm_up_where_it_cannot_help(
    nodes: list[Node], config: NetworkConfig, chars: int, pricing: PricingDefaults | None
) -> None:
    assert plan_warmup(_layer(*nodes), config, int(chars), pricing) is None


def test_default_provider_nodes_warm_up_when_the_deployment_default_is_anthropic() -> None:
    layer = _layer(*(Node("generate") * 3))
    haiku = PricingDefaults(provider=ModelProvider.ANTHROPIC)  # Haiku: 2048-token minimum
    assert plan_warmup(layer, NetworkConfig(), 5_000, haiku) is None
    assert plan_warmup(layer, NetworkConfig(), 9_000, haiku) is not None


def test_a_wide_mock_layer_is_planned_once() -> None:
    layer = _layer(*(Node("generate", ModelConfig(provider=ModelProvider.MOCK)) * 1000))
    assert plan_warmup(layer, NetworkConfig(), 10**6, None) is None
    from nons.coordinator import _warmup

    assert _warmup._GROUPS[layer] == ()
