"""Model prices, so every completion reports what it cost in US dollars.

Budgets and the `cost_usd` of an execution are computed from this table, so a model
that is not in it costs zero rather than a guessed amount: a wrong price is worse
than a visibly missing one. Prices are USD per million tokens, from the providers'
public price lists.

Prompt caching: Anthropic caches a prompt prefix marked with `cache_control` only when
it is at least a model's minimum cacheable length (1024 tokens for Sonnet and Opus,
2048 for Haiku, as its documentation states); a shorter marked prefix is billed as
plain input. The provider, the coordinator's warm-up, the mock and the budget all
decide from `is_cacheable`, an estimate of about four characters per token
(`len(text) / 4`, Anthropic's own rule of thumb for English text): one `len()`, never
a tokenizer, so it can run on every call; near the threshold it may be wrong either
way, which costs at most one cache write that is never read, or one missed saving.
"""

from __future__ import annotations

import re

import msgspec

from nons.core.types import CostInfo, TokenUsage

__all__ = (
    "BATCH_MULTIPLIER",
    "CACHE_READ_MULTIPLIER",
    "CACHE_TTL_S",
    "CACHE_WRITE_MULTIPLIER",
    "CHARS_PER_TOKEN",
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "HAIKU_MIN_CACHEABLE_TOKENS",
    "PRICES",
    "ModelPrice",
    "batch_cost",
    "cost_for",
    "estimate_tokens",
    "is_cacheable",
    "min_cacheable_tokens",
    "price_for",
)

CACHE_WRITE_MULTIPLIER = 1.25
"""Anthropic bills a 5-minute prompt-cache write at 1.25 times the input price."""

CACHE_READ_MULTIPLIER = 0.1
"""Anthropic bills a prompt-cache read at 0.1 times the input price."""

BATCH_MULTIPLIER = 0.5
"""Anthropic bills every token of a Message Batch request at half the online price."""

CACHE_TTL_S = 300.0
"""Lifetime of an `ephemeral` cache entry: five minutes, refreshed by every read."""

CHARS_PER_TOKEN = 4
"""Characters per token of the estimate (English prose; code and JSON run a little lower)."""

DEFAULT_MIN_CACHEABLE_TOKENS = 1024
"""Anthropic's minimum cacheable prompt length for Sonnet and Opus models."""

HAIKU_MIN_CACHEABLE_TOKENS = 2048
"""Anthropic's minimum cacheable prompt length for Haiku models."""

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


def batch_cost(cost: CostInfo) -> CostInfo:
    """`cost` of an online call, as billed when the call ran in a Message Batch."""
    return CostInfo(
        input_cost_usd=cost.input_cost_usd * BATCH_MULTIPLIER,
        output_cost_usd=cost.output_cost_usd * BATCH_MULTIPLIER,
        total_cost_usd=cost.total_cost_usd * BATCH_MULTIPLIER,
    )


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, estimated as `ceil(len(text) / 4)` (no tokenizer is called)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix `model` caches: 2048 tokens for Haiku models, 1024 otherwise."""
    return HAIKU_MIN_CACHEABLE_TOKENS if "haiku" in model else DEFAULT_MIN_CACHEABLE_TOKENS


def is_cacheable(chars: int, model: str) -> bool:
    """Whether a prefix of `chars` characters is, by the estimate, long enough to cache."""
    return chars >= min_cacheable_tokens(model) * CHARS_PER_TOKEN
