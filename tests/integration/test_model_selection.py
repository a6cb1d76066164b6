"""Dynamic model selection: the selector's choice reaches the actor; stats are kept."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.budget import PricingDefaults
from nons.coordinator.model_stats import get_model_stats, reset_model_stats
from nons.coordinator.service import Coordinator, CoordinatorSettings
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ErrorPolicy, LayerConfig, ModelConfig, ModelProvider
from tests.support import flaky_ops, routing_ops
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg

SUPPORT = "tests.support.routing_ops"

_OPERATORS = flaky_ops  # importing it registers always_unavailable


@pytest.fixture(autouse=True)
def fresh_stats() -> None:
    reset_model_stats()
    routing_ops.SEEN.clear()


def net_of(*nodes: Node) -> NoN:
    return NoN.from_operators(list(nodes), name=f"select-{uuid.uuid4().hex[:8]}")


async def test_the_selectors_choice_reaches_the_operator(nc: Nats) -> None:
    own = ModelConfig(provider=ModelProvider.MOCK, model_name="mock-own")
    net = net_of(Node("echo_model", own, model_selector=f"{SUPPORT}:pick_by_length"))
    events: list[dict[str, Any]] = []

    async def on_event(msg: Msg) -> None:
        events.append(json.loads(msg.data))

    subscription = await nc.subscribe(f"nons.events.{net.name}.*.model.selected", cb=on_event)
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        client = Client(nc)
        long = await client.execute(net.name, "a task of more than twenty characters")
        short = await client.execute(net.name, "short", budget_usd=0.25)
    await subscription.unsubscribe()
    assert long.output == "mock-long"
    assert short.output == "mock-own"  # the selector returned None: the node's own model
    [first, second] = routing_ops.SEEN
    assert first.input == "a task of more than twenty characters"
    assert first.node_id == "l0-echo_model"
    assert first.operator == "echo_model"
    assert first.remaining_budget_usd is None
    assert first.default_model == own
    assert second.remaining_budget_usd == 0.25
    await wait_until(lambda: events, timeout=5)
    assert len(events) == 1
    assert events[0]["model"] == "mock-long"
    assert events[0]["provider"] == "mock"
    assert events[0]["selector"] == f"{SUPPORT}:pick_by_length"

    stats = get_model_stats()
    assert stats["mock:mock-long"].calls == 1
    assert stats["mock:mock-long"].successes == 1
    assert stats["mock:mock-own"].calls == 1
    assert stats["mock:mock-long"].mean_latency_ms > 0
    assert second.stats["mock:mock-long"].calls == 1  # the selector saw the first call


async def test_the_adaptive_selector_follows_complexity_and_budget(nc: Nats) -> None:
    net = net_of(Node("echo_model", model_selector=f"{SUPPORT}:adaptive"))
    long = "x" * 300
    # The actors run the mock: the coordinator is told so (it holds no credentials).
    mock_pricing = CoordinatorSettings(pricing=PricingDefaults(provider=ModelProvider.MOCK))
    async with ActorHost(nc, [net]), Coordinator(nc, [net], mock_pricing):
        client = Client(nc)
        outputs = [
            (await client.execute(net.name, text, budget_usd=budget)).output
            for text, budget in [("hi", None), ("y" * 60, None), (long, None), (long, 0.001)]
        ]
    assert outputs == ["mock-small", "mock-medium", "mock-large", "mock-small"]
    assert get_model_stats()["mock:mock-small"].calls == 2


async def test_failures_count_against_the_model(nc: Nats) -> None:
    model = ModelConfig(provider=ModelProvider.MOCK, model_name="mock-down")
    net = NoN.from_operators(
        [Node("always_unavailable", model)],
        name=f"select-{uuid.uuid4().hex[:8]}",
        layer_config=LayerConfig(error_policy=ErrorPolicy.FAIL_FAST),
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, {"text": "x"})
    assert result.status == "failed"
    seen = get_model_stats()["mock:mock-down"]
    assert (seen.calls, seen.successes, seen.success_rate) == (1, 0, 0.0)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (f"{SUPPORT}:broken_selector", "raised RuntimeError: no model for you"),
        (f"{SUPPORT}:no_such_selector", "cannot be imported"),
        (f"{SUPPORT}:SEEN", "not a callable"),
    ],
)
async def test_a_broken_selector_fails_the_node_typed(
    nc: Nats, selector: str, message: str
) -> None:
    net = net_of(Node("echo_model", model_selector=selector))
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, "x")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == "model_selection_error"
    assert message in result.error.message
