"""Model prices: prefix matching of dated ids and the cost arithmetic."""

from __future__ import annotations

import pytest

from nons.core.types import CostInfo, TokenUsage
from nons.providers.pricing import PRICES, cost_for, price_for


@pytest.mark.parametrize(
    ("model", "input_usd", "output_usd"),
    [
        ("claude-opus-4-1", 15.0, 75.0),
        ("claude-opus-4-1-20250805", 15.0, 75.0),
        ("claude-opus-4", 15.0, 75.0),
        ("claude-opus-4-20250514", 15.0, 75.0),
        ("claude-opus-4-5", 5.0, 25.0),
        ("claude-opus-4-5-20251101", 5.0, 25.0),
        ("claude-sonnet-4-5", 3.0, 15.0),
        ("claude-sonnet-4-5-20250929", 3.0, 15.0),
        ("claude-sonnet-4-20250514", 3.0, 15.0),
        ("claude-3-7-sonnet-20250219", 3.0, 15.0),
        ("claude-3-7-sonnet-latest", 3.0, 15.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("claude-haiku-4-5-20251001", 1.0, 5.0),
        ("claude-3-5-haiku-20241022", 0.80, 4.0),
        ("claude-3-haiku-20240307", 0.25, 1.25),
    ],
)
def test_claude_prices(model: str, input_usd: float, output_usd: float) -> None:
    price = price_for("anthropic", model)
    assert price is not None
    assert price.input_usd == input_usd
    assert price.output_usd == output_usd
    assert price.cache_write_usd == pytest.approx(input_usd * 1.25)
    assert price.cache_read_usd == pytest.approx(input_usd * 0.1)


def test_openai_prices_do_not_mix_up_mini() -> None:
    big = price_for("openai", "gpt-4o-2024-08-06")
    mini = price_for("openai", "gpt-4o-mini-2024-07-18")
    assert big is not None
    assert mini is not None
    assert (big.input_usd, big.output_usd) == (2.50, 10.0)
    assert (mini.input_usd, mini.output_usd) == (0.15, 0.60)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-opus-4-9"),  # a newer model is not priced as claude-opus-4
        ("anthropic", "claude-haiku-4-5x"),
        ("anthropic", "gpt-4o"),
        ("openai", "llama3"),
        ("mock", "mock-1"),
        ("nobody", "claude-haiku-4-5"),
    ],
)
def test_unknown_models_cost_zero(provider: str, model: str) -> None:
    assert price_for(provider, model) is None
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert cost_for(provider, model, usage) == CostInfo()


def test_cost_arithmetic_with_cache() -> None:
    usage = TokenUsage(
        prompt_tokens=2_000_000,
        completion_tokens=100_000,
        cache_read_tokens=1_000_000,
        cache_creation_tokens=400_000,
    )
    cost = cost_for("anthropic", "claude-sonnet-4-5-20250929", usage)
    assert cost.input_cost_usd == pytest.approx(2 * 3.0 + 0.4 * 3.75 + 1 * 0.30)
    assert cost.output_cost_usd == pytest.approx(0.1 * 15.0)
    assert cost.total_cost_usd == pytest.approx(cost.input_cost_usd + cost.output_cost_usd)


def test_every_price_is_positive() -> None:
    for table in PRICES.values():
        for price in table.values():
            assert price.input_usd > 0
            assert price.output_usd >= price.input_usd
            assert 0 < price.cache_read_usd < price.input_usd
