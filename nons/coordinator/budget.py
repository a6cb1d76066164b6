"""Budgets: what the next layer may cost at worst, and which nodes to route to cheaper models.

The coordinator never starts a layer whose worst case (every node's input priced as
tokens plus its `max_tokens` of output) would take the execution past its budget;
nodes that name a `budget_model` are moved to it first when that makes the layer fit.

Nodes that name no provider or model are priced with `PricingDefaults`, which the
coordinator is given explicitly (from the network's process, or the deployment's
`NONS_DEFAULT_PROVIDER`), never read from its own credentials: a coordinator holds
no API key, and one that guessed "no key, so mock" priced real model calls at zero.

Prompt caching: an Anthropic node that may cache its prompt (`prompt_cache`, on by
default) may pay a cache write, 1.25x the input price, on the part of its input when
it reaches the model's minimum cacheable length, so the worst case prices it as a write:
the warm-up usually makes all but one node of a layer read it instead (0.1x), but a
budget must hold even when it does not (an expired entry, a leader that failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.providers.pricing import is_cacheable, price_for

if TYPE_CHECKING:
    from nons.core.layer import Layer

__all__ = ("LayerPlan", "PricingDefaults", "plan_layer", "worst_case_cost")

PROMPT_OVERHEAD_TOKENS = 1500
"""Tokens an operator's system prompt and template add to the node's input."""

BYTES_PER_TOKEN = 3.0
"""A cautious bytes-per-token ratio (real text averages about four)."""


class PricingDefaults(msgspec.Struct, frozen=True, kw_only=True):
    """The provider and models that nodes naming none are priced as.

    The default is Anthropic's default model, the dearest likely case, so that a
    budget errs on the side of refusing. A process that runs the actors too (`nons
    up`, `forward()`) passes its own provider settings; `nons coordinator` passes
    `NONS_DEFAULT_PROVIDER` when the deployment sets it.
    """

    provider: ModelProvider = ModelProvider.ANTHROPIC
    anthropic_model: str = "claude-haiku-4-5"
    openai_model: str = "gpt-4o-mini"

    def model_of(self, provider: ModelProvider) -> str:
        """The default model of `provider`."""
        return self.anthropic_model if provider is ModelProvider.ANTHROPIC else self.openai_model


@dataclass(frozen=True)
class LayerPlan:
    """How a layer fits the budget."""

    worst_case_usd: float
    """Cost of the layer if every node used its whole token allowance."""
    fits: bool
    """Whether spent plus the worst case stays within the budget."""
    models: dict[str, ModelConfig] = field(default_factory=dict)
    """Model overrides (node id to cheaper model) that make it fit."""


def worst_case_cost(
    config: ModelConfig | None,
    input_bytes: int,
    defaults: PricingDefaults | None = None,
    *,
    prompt_cache: bool = False,
) -> float:
    """The most one call may cost with this model: input priced as tokens, full output.

    With `prompt_cache`, an Anthropic model's input is priced as a cache write (1.25x)
    when the layer input alone reaches the model's minimum cacheable length (the rule
    the provider and the warm-up use), since the call may then write it.
    """
    model = config or ModelConfig()
    defaults = defaults or PricingDefaults()
    provider = model.provider or defaults.provider
    if provider is ModelProvider.MOCK:
        return 0.0
    name = model.model_name or defaults.model_of(provider)
    price = price_for(provider.value, name)
    if price is None:
        return 0.0
    input_tokens = PROMPT_OVERHEAD_TOKENS + input_bytes / BYTES_PER_TOKEN
    input_usd = price.input_usd
    if (
        prompt_cache
        and provider is ModelProvider.ANTHROPIC
        and is_cacheable(input_bytes, name)
    ):
        input_usd = max(input_usd, price.cache_write_usd)
    return (input_tokens * input_usd + model.max_tokens * price.output_usd) / 1_000_000


def plan_layer(
    layer: Layer,
    input_bytes: int,
    spent_usd: float,
    budget_usd: float,
    defaults: PricingDefaults | None = None,
) -> LayerPlan:
    """Whether the layer fits the remaining budget, moving nodes to budget models if needed."""
    costs: dict[str, float] = {}
    cheaper: dict[str, tuple[ModelConfig, float]] = {}
    for node in layer.nodes:
        if not isinstance(node, Node):
            costs[node.node_id] = 0.0
            continue
        cache = node.prompt_cache
        costs[node.node_id] = worst_case_cost(
            node.model_config, input_bytes, defaults, prompt_cache=cache
        )
        budget_model = node.model_config.budget_model if node.model_config else None
        if budget_model is not None:
            cheaper[node.node_id] = (
                budget_model,
                worst_case_cost(budget_model, input_bytes, defaults, prompt_cache=cache),
            )
    worst = sum(costs.values())
    remaining = budget_usd - spent_usd
    if worst <= remaining:
        return LayerPlan(worst_case_usd=worst, fits=True)
    models: dict[str, ModelConfig] = {}
    # Move the nodes whose budget model saves most first, until the layer fits.
    for node_id, (model, cost) in sorted(
        cheaper.items(), key=lambda item: item[1][1] - costs[item[0]]
    ):
        if cost >= costs[node_id]:
            continue
        worst += cost - costs[node_id]
        models[node_id] = model
        if worst <= remaining:
            return LayerPlan(worst_case_usd=worst, fits=True, models=models)
    return LayerPlan(worst_case_usd=worst, fits=False, models=models)
