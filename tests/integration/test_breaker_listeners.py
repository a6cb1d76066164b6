"""Two actor hosts in one process: stopping one leaves the other's breaker events on."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import CircuitBreakerConfig, ModelConfig, ModelProvider
from nons.providers import registry
from nons.providers.mock import MockBehaviour
from nons.providers.settings import ProviderSettings
from nons.resilience.settings import configure_scheduler
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg


@pytest.fixture(autouse=True)
def failing_mock() -> Iterator[None]:
    registry.configure_providers(
        ProviderSettings(default_provider=ModelProvider.MOCK),
        mock=MockBehaviour(failure_rate=1.0, fail_with="provider_overloaded"),
    )
    configure_scheduler(circuit_breaker=CircuitBreakerConfig(failure_threshold=1))
    yield
    registry.reset_providers()


def mock_network(prefix: str) -> NoN:
    node = Node("generate", ModelConfig(provider=ModelProvider.MOCK))
    return NoN.from_operators([node], name=f"{prefix}-{uuid.uuid4().hex[:6]}")


async def test_one_host_stopping_does_not_silence_the_others_breaker_events(nc: Nats) -> None:
    first, second = mock_network("first"), mock_network("second")
    seen: list[dict[str, object]] = []

    async def collect(msg: Msg) -> None:
        seen.append(json.loads(msg.data))

    subscription = await nc.subscribe(f"nons.events.{second.name}.>", cb=collect)
    try:
        async with ActorHost(nc, [second]), Coordinator(nc, [second]):
            async with ActorHost(nc, [first]):
                pass  # started after `second`'s host, and stopped before it
            result = await Client(nc).execute(second.name, "hello")
            assert result.error is not None  # the provider is down; its breaker opened
            await wait_until(
                lambda: any(e["type"] == "circuit.changed" for e in seen),
                timeout=5,
                message="circuit.changed of the host still running",
            )
    finally:
        await subscription.unsubscribe()
    changes = [e for e in seen if e["type"] == "circuit.changed"]
    assert len(changes) == 1  # one host reported it, not every host of the process
    assert changes[0]["new_state"] == "open"
