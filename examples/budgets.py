"""Budgets: a spending limit that stops an execution, cost-based routing and cost alerts.

Run it as `python examples/budgets.py`. Costs come from the price table
(`nons.providers.pricing`); the offline mock provider is free, so a budget can never
stop a mock call and a cost alert never fires on one. What this example can show
honestly without a key, it runs; the rest runs only when ANTHROPIC_API_KEY is set:

1. Worst cases. Before each layer the coordinator prices the layer's worst case
   (`nons.coordinator.budget.worst_case_cost`: the input as tokens plus every node's full
   `max_tokens` of output) and never starts a layer that could pass the budget.
2. A budget that stops an execution: `forward(..., budget_usd=0.001)` on Claude
   Opus is refused with `budget_exceeded` before any model is called, so this part
   runs offline too (no key is needed to be refused).
3. Cost-based routing: a node whose `ModelConfig` names a cheaper `budget_model`
   moves to it when the remaining budget cannot cover its own model (a
   `node.rerouted` event). The budget model is Claude Haiku with a key; offline it is
   the free mock, and the output says so.
4. A cost alert: `NetworkConfig(cost_alert_usd=...)` publishes one `cost.alert`
   event when an execution's spending passes the amount (with a key only).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import MOCK_NOTICE
from nons import ExecutionError, ModelConfig, ModelProvider, NetworkConfig, Node, NoN
from nons.coordinator.budget import worst_case_cost
from nons.observability.events import CostAlert, NodeRerouted
from nons.providers.settings import ANTHROPIC_API_KEY_VAR

if TYPE_CHECKING:
    from nons.observability.events import Event

HAIKU = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-haiku-4-5")
SONNET = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-sonnet-4-5")
OPUS = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-opus-4-1")
MOCK = ModelConfig(provider=ModelProvider.MOCK)

TEXT = "Summarise the attached incident report for the on-call channel in three bullets."

network = NoN.from_operators(
    [Node("generate", OPUS), Node("condense", OPUS, target_length=40)],
    name="budgets-opus",
)
"""Two Opus calls: refused outright under a small budget."""


def routed_network(cheap: ModelConfig) -> NoN:
    """One node on Opus that moves to `cheap` when the budget is low."""
    opus_or_cheaper = ModelConfig(
        provider=ModelProvider.ANTHROPIC, model_name="claude-opus-4-1", budget_model=cheap
    )
    return NoN.from_operators([Node("generate", opus_or_cheaper)], name="budgets-routed")


alerting = NoN.from_operators(
    [Node("generate", HAIKU), Node("condense", HAIKU, target_length=40)],
    NetworkConfig(cost_alert_usd=0.0001),
    name="budgets-alert",
)
"""Two Haiku calls with an alert at $0.0001 (run only with a key)."""


def on_rerouted(event: Event) -> None:
    assert isinstance(event, NodeRerouted)
    print(f"  node.rerouted: {event.node_id} -> {event.provider}:{event.model or 'default'}")


def on_alert(event: Event) -> None:
    assert isinstance(event, CostAlert)
    print(f"  cost.alert: spent ${event.spent_usd:.6f}, threshold ${event.threshold_usd:.6f}")


def worst_cases() -> None:
    print("1. worst case of one call with this input (max_tokens=1024):")
    for model in (HAIKU, SONNET, OPUS, MOCK):
        cost = worst_case_cost(model, len(TEXT.encode()))
        name = f"{model.provider}:{model.model_name or 'mock-1'}"
        print(f"  {name:<28} ${cost:.6f}")


async def budget_stop() -> None:
    print("\n2. budget_usd=0.001 on a two-layer Opus network:")
    try:
        await network.forward(TEXT, budget_usd=0.001)
    except ExecutionError as exc:  # a failed execution raises its typed error
        print(f"  refused before any model call: {exc.type}: {exc}")


async def routing(has_key: bool) -> bool:
    cheap = HAIKU if has_key else MOCK
    print(f"\n3. Opus with budget_model={cheap.provider}, budget_usd=0.02:")
    routed = routed_network(cheap)
    routed.subscribe("node.rerouted", on_rerouted)
    result = await routed.forward(TEXT, budget_usd=0.02)
    node = result.layer_results[0].nodes[0]
    print(
        f"  {result.status} on {node.provider}:{node.model}, cost ${result.metadata.cost_usd:.6f}"
    )
    if not has_key:
        print("  (offline the budget model is the free mock: the routing is real, the text not)")
    return result.is_mock


async def alert(has_key: bool) -> None:
    print("\n4. cost_alert_usd=0.0001 on two Haiku calls:")
    if not has_key:
        print(f"  skipped: set {ANTHROPIC_API_KEY_VAR}; the mock is free, so no alert could fire")
        return
    alerting.subscribe("cost.alert", on_alert)
    result = await alerting.forward(TEXT, budget_usd=0.05)
    print(f"  {result.status}, cost ${result.metadata.cost_usd:.6f} of a $0.05 budget")


async def main() -> None:
    has_key = bool(os.environ.get(ANTHROPIC_API_KEY_VAR, "").strip())
    worst_cases()
    await budget_stop()
    mock = await routing(has_key)
    await alert(has_key)
    if mock:
        print(f"\n{MOCK_NOTICE}")


if __name__ == "__main__":
    asyncio.run(main())
