"""Budgets, cost-based routing, cost alerts and per-node circuit breakers in the coordinator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import (
    CircuitBreakerConfig,
    ErrorPolicy,
    LayerConfig,
    ModelConfig,
    ModelProvider,
    NetworkConfig,
)
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support import flaky_ops
from tests.support.fake_anthropic import DEFAULT_TEXT, FakeAnthropic, error_response
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.msg import Msg

HAIKU = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-haiku-4-5")
PLAIN_OPUS = ModelConfig(provider=ModelProvider.ANTHROPIC, model_name="claude-opus-4-1")
OPUS = ModelConfig(
    provider=ModelProvider.ANTHROPIC, model_name="claude-opus-4-1", budget_model=HAIKU
)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        registry.configure_providers(
            ProviderSettings(
                anthropic_api_key="sk-ant-test-budget",
                anthropic_base_url=server.base_url,
                max_retries=0,
            )
        )
        try:
            yield server
        finally:
            registry.reset_providers()


class Served:
    def __init__(self, client: Client, events: list[dict[str, object]]) -> None:
        self.client = client
        self.events = events

    def types(self, execution_id: str) -> list[str]:
        return [str(e["type"]) for e in self.events if e["execution_id"] == execution_id]


async def serve(nats_url: str, net: NoN) -> AsyncIterator[Served]:
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="budget-test"))
    events: list[dict[str, object]] = []

    async def on_event(msg: Msg) -> None:
        events.append(msgspec.json.decode(msg.data))

    subscription = await nc.subscribe(f"nons.events.{net.name}.>", cb=on_event)
    try:
        async with ActorHost(nc, [net]), Coordinator(nc, [net]):
            client = Client(nc)
            yield Served(client, events)
            await client.close()
    finally:
        await subscription.unsubscribe()
        await nc.close()


async def settle(served: Served, execution_id: str) -> None:
    """Wait until the execution's terminal event arrived (events precede the reply)."""
    await wait_until(
        lambda: any(
            t.startswith("execution.") and t != "execution.started"
            for t in served.types(execution_id)
        ),
        timeout=5,
        message=f"terminal event of {execution_id}",
    )


async def test_a_layer_whose_worst_case_passes_the_budget_is_never_started(
    nats_url: str, fake: FakeAnthropic
) -> None:
    net = NoN.from_operators([Node("generate", HAIKU), Node("condense", HAIKU)], name="budgeted")
    async for served in serve(nats_url, net):
        result = await served.client.execute("budgeted", "write a haiku", budget_usd=0.0001)
        assert result.status == "failed"
        assert result.error is not None
        assert result.error.type == "budget_exceeded"
        assert result.error.details["layer_index"] == 0
        assert fake.message_requests == []  # no model was called

        enough = await served.client.execute("budgeted", "write a haiku", budget_usd=0.05)
        assert enough.status == "completed"
        assert 0 < enough.metadata.cost_usd < 0.05
        assert len(fake.message_requests) == 2
        await settle(served, result.execution_id)
        assert "budget.exceeded" in served.types(result.execution_id)


async def test_partial_policy_returns_what_was_done_when_the_budget_runs_out(
    nats_url: str, fake: FakeAnthropic
) -> None:
    partial = LayerConfig(error_policy=ErrorPolicy.RETURN_PARTIAL, min_success_threshold=0.5)
    net = NoN.from_operators(
        [Node("generate", HAIKU), Node("condense", PLAIN_OPUS)],
        name="budgeted-partial",
        layer_config=partial,
    )
    budget = 0.012  # haiku's worst case (~$0.007) fits, opus's (~$0.10) does not
    async for served in serve(nats_url, net):
        result = await served.client.execute("budgeted-partial", "text", budget_usd=budget)
        assert result.status == "partial"
        assert result.error is not None
        assert result.error.type == "budget_exceeded"
        assert result.error.details["layer_index"] == 1
        assert result.output == DEFAULT_TEXT  # the first layer's answer
        assert len(fake.message_requests) == 1


async def test_cheaper_budget_model_is_used_when_the_budget_is_low(
    nats_url: str, fake: FakeAnthropic
) -> None:
    net = NoN.from_operators([Node("generate", OPUS)], name="rerouted")
    async for served in serve(nats_url, net):
        result = await served.client.execute("rerouted", "write a haiku", budget_usd=0.02)
        assert result.status == "completed"
        assert fake.message_requests[-1].body["model"] == "claude-haiku-4-5"
        rich = await served.client.execute("rerouted", "write a haiku", budget_usd=5.0)
        assert rich.status == "completed"
        assert fake.message_requests[-1].body["model"] == "claude-opus-4-1"
        await settle(served, result.execution_id)
        await settle(served, rich.execution_id)
        assert "node.rerouted" in served.types(result.execution_id)
        assert "node.rerouted" not in served.types(rich.execution_id)


async def test_cost_alert_is_published_once_past_the_threshold(
    nats_url: str, fake: FakeAnthropic
) -> None:
    net = NoN.from_operators(
        [Node("generate", HAIKU), Node("condense", HAIKU)],
        name="alerting",
        network_config=NetworkConfig(cost_alert_usd=1e-9),
    )
    async for served in serve(nats_url, net):
        result = await served.client.execute("alerting", "text")
        assert result.status == "completed"
        await settle(served, result.execution_id)
        assert served.types(result.execution_id).count("cost.alert") == 1


async def test_node_circuit_breaker_opens_and_fails_fast(nats_url: str) -> None:
    net = NoN.from_operators(
        [Node(flaky_ops.always_unavailable)],
        name="breaking",
        layer_config=LayerConfig(error_policy=ErrorPolicy.FAIL_FAST),
        network_config=NetworkConfig(
            node_circuit_breaker=CircuitBreakerConfig(failure_threshold=2, recovery_timeout_s=60)
        ),
    )
    flaky_ops.CALLS["always_unavailable"] = 0
    async for served in serve(nats_url, net):
        first = await served.client.execute("breaking", {"text": "a"})
        second = await served.client.execute("breaking", {"text": "b"})
        assert first.error is not None
        assert first.error.type == "provider_unavailable"
        assert second.error is not None
        assert second.error.type == "provider_unavailable"
        third = await served.client.execute("breaking", {"text": "c"})
        assert third.error is not None
        assert third.error.type == "circuit_open"
        assert flaky_ops.CALLS["always_unavailable"] == 2  # the third never reached the actor
        await settle(served, third.execution_id)
        changes = [e for e in served.events if e["type"] == "circuit.changed"]
        assert [(c["old_state"], c["new_state"]) for c in changes] == [("closed", "open")]


async def test_fallback_model_policy_retries_on_the_fallback_model(
    nats_url: str, fake: FakeAnthropic
) -> None:
    primary = ModelConfig(
        provider=ModelProvider.ANTHROPIC, model_name="claude-opus-4-1", fallback=HAIKU
    )
    net = NoN.from_operators(
        [Node("generate", primary)],
        name="falling-back",
        layer_config=LayerConfig(error_policy=ErrorPolicy.FALLBACK_MODEL, retry_delay_seconds=0.01),
    )
    fake.enqueue(error_response(529, "overloaded_error", "busy"))
    async for served in serve(nats_url, net):
        result = await served.client.execute("falling-back", "write a haiku")
        assert result.status == "completed"
        assert [r.body["model"] for r in fake.message_requests] == [
            "claude-opus-4-1",
            "claude-haiku-4-5",
        ]
        assert result.layer_results[0].nodes[0].attempts == 2
        await settle(served, result.execution_id)
        retry = next(e for e in served.events if e["type"] == "node.retrying")
        assert retry["model"] == "claude-haiku-4-5"
