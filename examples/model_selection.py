"""Dynamic model selection: a selector picks each call's model from the task, budget and stats.

`Node(..., model_selector="module:function")` names a selector the coordinator
calls before each call of the node, with the node's input, the execution's
remaining budget and the runtime's observed latency, cost and success rate per
model (`nons.runtime.model_stats.get_model_stats()`). Here the ready-made
`AdaptiveModelSelector` (the NoN docs' example) is bound to three mock "models", so
it runs offline: short tasks go to `mock-small`, longer ones to `mock-medium`, long
ones to `mock-large` unless the budget is thin. Each choice is a `model.selected`
event; a model seen failing (success rate below 0.9) would be skipped.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.observability.events import Event, ModelSelected
from nons.runtime.model_stats import AdaptiveModelSelector, get_model_stats

selector = AdaptiveModelSelector(
    high=ModelConfig(provider=ModelProvider.MOCK, model_name="mock-large", temperature=0.3),
    medium=ModelConfig(provider=ModelProvider.MOCK, model_name="mock-medium", temperature=0.5),
    low=ModelConfig(provider=ModelProvider.MOCK, model_name="mock-small", temperature=0.7),
    medium_chars=80,
    high_chars=300,
)
"""The selector the node names by its import path."""

network = NoN.from_operators(
    [Node("generate", model_selector="examples.model_selection:selector")],
    name="model-selection",
)
"""One adaptive node: `nons up examples.model_selection:network` serves it."""

TASKS = [
    ("Name a colour.", None),
    ("Summarise the trade-offs of queue groups versus JetStream consumers " * 2, None),
    ("Design a migration plan for a multi-region NATS deployment. " * 8, None),
    ("Design a migration plan for a multi-region NATS deployment. " * 8, 0.001),
]


def show(event: Event) -> None:
    if isinstance(event, ModelSelected):
        print(f"  selected {event.provider}:{event.model} for {event.node_id}")


async def main() -> None:
    network.subscribe("model.selected", show)
    for text, budget in TASKS:
        print(f"task of {len(text)} chars, budget {budget}:")
        result = await network.forward(text, budget_usd=budget)
        print(f"  -> {result.status}, {result.metadata.total_tokens} tokens")
    print("observed per model:")
    for key, stats in sorted(get_model_stats().items()):
        print(
            f"  {key}: {stats.calls} calls, success {stats.success_rate:.0%}, "
            f"{stats.mean_latency_ms:.1f} ms, ${stats.mean_cost_usd:.6f}"
        )
    print("[mock provider: offline output, not a real model answer]")


if __name__ == "__main__":
    asyncio.run(main())
