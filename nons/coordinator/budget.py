"""Budgets: what the next layer may cost at worst, and which nodes to route to cheaper models.

The coordinator never starts a layer whose worst case (every node's input priced as
tokens plus its `max_tokens` of output) would take the execution past its budget;
nodes that name a `budget_model` are moved to it first when that makes the layer fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.providers.pricing import price_for
from nons.providers.registry import default_provider, provider_settings

if TYPE_CHECKING:
    from nons.core.layer import Layer

__all__ = ("LayerPlan", "plan_layer", "worst_case_cost")

PROMPT_OVERHEAD_TOKENS = 1500
"""Tokens an operator's system prompt and template add to the node's input."""

BYTES_PER_TOKEN = 3.0
"""A cautious bytes-per-token ratio (real text averages about four)."""


@dataclass(frozen=True)
class LayerPlan:
    """How a layer fits the budget."""

    worst_case_usd: float
    """Cost of the layer if every node used its whole token allowance."""
    fits: bool
    """Whether spent plus the worst case stays within the budget."""
    models: dict[str, ModelConfig] = field(default_factory=dict)
    """Model overrides (node id to cheaper model) that make it fit."""


def worst_case_cost(config: ModelConfig | None, input_bytes: int) -> float:
    """The most one call may cost with this model: input priced as tokens, full output."""
    model = config or ModelConfig()
    provider = model.provider or default_provider()
    if provider is ModelProvider.MOCK:
        return 0.0
    settings = provider_settings()
    name = model.model_name or (
        settings.default_anthropic_model
        if provider is ModelProvider.ANTHROPIC
        else settings.default_openai_model
    )
    price = price_for(provider.value, name)
    if price is None:
        return 0.0
    input_tokens = PROMPT_OVERHEAD_TOKENS + input_bytes / BYTES_PER_TOKEN
    return (input_tokens * price.input_usd + model.max_tokens * price.output_usd) / 1_000_000


def plan_layer(layer: Layer, input_bytes: int, spent_usd: float, budget_usd: float) -> LayerPlan:
    """Whether the layer fits the remaining budget, moving nodes to budget models if needed."""
    costs: dict[str, float] = {}
    cheaper: dict[str, tuple[ModelConfig, float]] = {}
    for node in layer.nodes:
        if not isinstance(node, Node):
            costs[node.node_id] = 0.0
            continue
        costs[node.node_id] = worst_case_cost(node.model_config, input_bytes)
        budget_model = node.model_config.budget_model if node.model_config else None
        if budget_model is not None:
            cheaper[node.node_id] = (budget_model, worst_case_cost(budget_model, input_bytes))
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
