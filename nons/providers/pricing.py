"""Model prices, so every completion reports what it cost in US dollars.

Budgets and the `cost_usd` of an execution are computed from this table, so a model
that is not in it costs zero rather than a guessed amount: a wrong price is worse
than a visibly missing one. Prices are USD per million tokens, from the providers'
public price lists.
"""

from __future__ import annotations

import re

import msgspec

from nons.core.types import CostInfo, TokenUsage

__all__ = (
    "CACHE_READ_MULTIPLIER",
    "CACHE_WRITE_MULTIPLIER",
    "PRICES",
    "ModelPrice",
    "cost_for",
    "price_for",
)

CACHE_WRITE_MULTIPLIER = 1.25
"""Anthropic bills a 5-minute prompt-cache write at 1.25 times the input price."""

CACHE_READ_MULTIPLIER = 0.1
"""Anthropic bills a prompt-cache read at 0.1 times the input price."""

_TOKENS_PER_PRICE_UNIT = 1_000_000
"""Prices are quoted per million tokens."""

_VERSION_SUFFIX = re.compile(r"(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest)?(?:-v\d+(?::\d+)?)?")
"""What may follow a priced model id: a snapshot date (`-20250929`, `@20250805`,
`-2024-07-18`), `-latest`, or a Bedrock-style version (`-v1:0`). Anything else (such
as `-mini` after `gpt-4o`) is another model, so it does not borrow this price."""


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True):
    """What one model charges, in USD per million tokens."""

    input_usd: float
    """Uncached input tokens."""
    output_usd: float
    """Generated tokens."""
    cache_write_usd: float
    """Input tokens written to the prompt cache (5-minute cache for Anthropic)."""
    cache_read_usd: float
    """Input tokens read from the prompt cache."""

    def cost(self, usage: TokenUsage) -> CostInfo:
        """The cost of `usage` at these prices."""
        input_cost = (
            usage.prompt_tokens * self.input_usd
            + usage.cache_creation_tokens * self.cache_write_usd
            + usage.cache_read_tokens * self.cache_read_usd
        ) / _TOKENS_PER_PRICE_UNIT
        output_cost = usage.completion_tokens * self.output_usd / _TOKENS_PER_PRICE_UNIT
        return CostInfo(
            input_cost_usd=input_cost,
            output_cost_usd=output_cost,
            total_cost_usd=input_cost + output_cost,
        )


def _claude(input_usd: float, output_usd: float) -> ModelPrice:
    return ModelPrice(
        input_usd=input_usd,
        output_usd=output_usd,
        cache_write_usd=input_usd * CACHE_WRITE_MULTIPLIER,
        cache_read_usd=input_usd * CACHE_READ_MULTIPLIER,
    )


def _openai(input_usd: float, output_usd: float, cached_input_usd: float) -> ModelPrice:
    # OpenAI caches automatically: writes cost the normal input price.
    return ModelPrice(
        input_usd=input_usd,
        output_usd=output_usd,
        cache_write_usd=input_usd,
        cache_read_usd=cached_input_usd,
    )


PRICES: dict[str, dict[str, ModelPrice]] = {
    "anthropic": {
        "claude-opus-4-6": _claude(5.0, 25.0),
        "claude-sonnet-4-6": _claude(3.0, 15.0),
        "claude-opus-4-5": _claude(5.0, 25.0),
        "claude-opus-4-1": _claude(15.0, 75.0),
        "claude-opus-4": _claude(15.0, 75.0),
        "claude-sonnet-4-5": _claude(3.0, 15.0),
        "claude-sonnet-4": _claude(3.0, 15.0),
        "claude-3-7-sonnet": _claude(3.0, 15.0),
        "claude-3-5-sonnet": _claude(3.0, 15.0),
        "claude-haiku-4-5": _claude(1.0, 5.0),
        "claude-3-5-haiku": _claude(0.80, 4.0),
        "claude-3-haiku": _claude(0.25, 1.25),
    },
    "openai": {
        "gpt-4o": _openai(2.50, 10.0, 1.25),
        "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
        "gpt-4.1": _openai(2.0, 8.0, 0.50),
        "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
    },
}
"""Prices by provider, then by model id without its snapshot date."""


def price_for(provider: str, model: str) -> ModelPrice | None:
    """The price of `model` at `provider`, or `None` when the table does not know it.

    A dated id (`claude-sonnet-4-5-20250929`) has the price of its undated alias; the
    longest matching id wins, so `claude-opus-4-1-...` is not priced as `claude-opus-4`.
    """
    table = PRICES.get(provider)
    if table is None:
        return None
    exact = table.get(model)
    if exact is not None:
        return exact
    for model_id in sorted(table, key=len, reverse=True):
        if model.startswith(model_id) and _VERSION_SUFFIX.fullmatch(model[len(model_id) :]):
            return table[model_id]
    return None


def cost_for(provider: str, model: str, usage: TokenUsage) -> CostInfo:
    """What `usage` of `model` at `provider` cost; zero for the mock and unknown models."""
    price = price_for(provider, model)
    if price is None:
        return CostInfo()
    return price.cost(usage)
