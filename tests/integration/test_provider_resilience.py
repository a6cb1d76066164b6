"""Circuit breakers and rate limits around the real anthropic SDK and the real runtime."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import nats.errors
import pytest

from nons import LayerConfig, Node, NoN
from nons.actors.host import ActorHost
from nons.coordinator.service import Coordinator
from nons.core.errors import CircuitOpenError, ProviderOverloadedError
from nons.core.types import (
    CircuitBreakerConfig,
    ErrorPolicy,
    ModelConfig,
    ModelProvider,
    RateLimitConfig,
)
from nons.providers import registry
from nons.providers.anthropic import AnthropicClient
from nons.providers.base import CompletionRequest
from nons.providers.breaker import BreakerClient, BreakerState
from nons.providers.limits import RateLimitedClient
from nons.providers.settings import ProviderSettings
from nons.resilience.settings import configure_scheduler
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.fake_anthropic import FakeAnthropic, error_response

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient

API_KEY = "sk-ant-test-resilience-5e1b"
MODEL = "claude-haiku-4-5"


class FakeClock:
    def __init__(self) -> None:
        self.time = 100.0

    def __call__(self) -> float:
        return self.time


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
async def fresh_registry() -> AsyncIterator[None]:
    registry.reset_providers()
    yield
    await registry.aclose_clients()
    registry.reset_providers()


def settings(fake: FakeAnthropic) -> ProviderSettings:
    return ProviderSettings(
        anthropic_api_key=API_KEY,
        anthropic_base_url=fake.base_url,
        max_retries=0,  # the SDK's own retries off: every error reaches us
        request_timeout_s=10.0,
    )


def anthropic_request() -> CompletionRequest:
    return CompletionRequest(
        prompt="Say hello.",
        config=ModelConfig(provider=ModelProvider.ANTHROPIC, model_name=MODEL, max_tokens=64),
    )


async def test_five_529s_open_the_breaker_and_a_success_closes_it(fake: FakeAnthropic) -> None:
    clock = FakeClock()
    changes: list[tuple[BreakerState, BreakerState]] = []
    client = BreakerClient(
        RateLimitedClient(AnthropicClient(settings(fake)), RateLimitConfig()),
        CircuitBreakerConfig(failure_threshold=5, recovery_timeout_s=30),
        clock=clock,
        on_change=lambda _provider, _model, old, new: changes.append((old, new)),
    )
    try:
        fake.enqueue(*(error_response(529, message="Overloaded") for _ in range(5)))
        for _ in range(5):
            with pytest.raises(ProviderOverloadedError):
                await client.complete(anthropic_request())
        assert len(fake.message_requests) == 5

        with pytest.raises(CircuitOpenError) as caught:
            await client.complete(anthropic_request())
        assert len(fake.message_requests) == 5  # failed fast: the server never saw it
        assert caught.value.details["provider"] == "anthropic"
        assert caught.value.details["model"] == MODEL
        assert caught.value.details["retry_after_s"] == pytest.approx(30.0)

        clock.time += 30  # the cool-down passes: one trial call, answered 200
        completion = await client.complete(anthropic_request())
        assert not completion.is_mock
        assert len(fake.message_requests) == 6
        assert client.states() == {MODEL: BreakerState.CLOSED}
        assert changes == [
            (BreakerState.CLOSED, BreakerState.OPEN),
            (BreakerState.OPEN, BreakerState.HALF_OPEN),
            (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        ]
    finally:
        await client.aclose()


async def test_registry_breaker_fails_fast_without_reaching_the_server(
    fake: FakeAnthropic,
) -> None:
    registry.configure_providers(settings(fake))
    configure_scheduler(
        circuit_breaker=CircuitBreakerConfig(failure_threshold=5, recovery_timeout_s=600)
    )
    changes: list[tuple[str, str, BreakerState, BreakerState]] = []
    registry.add_breaker_listener(lambda *change: changes.append(change))
    fake.enqueue(*(error_response(529, message="Overloaded") for _ in range(5)))
    for _ in range(5):
        with pytest.raises(ProviderOverloadedError):
            await registry.complete(anthropic_request())
    with pytest.raises(CircuitOpenError, match="failing fast"):
        await registry.complete(anthropic_request())
    assert len(fake.message_requests) == 5
    assert changes == [("anthropic", MODEL, BreakerState.CLOSED, BreakerState.OPEN)]
    assert API_KEY not in json.dumps(changes)


@contextlib.asynccontextmanager
async def serving(url: str, network: NoN) -> AsyncIterator[None]:
    nc = await connect_nats(ConnectionSettings(url=url, name="nons-test-resilience"))
    try:
        async with ActorHost(nc, [network]), Coordinator(nc, [network]):
            yield
    finally:
        await nc.close()


async def execute(nc: NatsClient, network: str, text: str) -> Any:
    subject = f"nons.exec.{network}"
    payload = json.dumps({"input": text}).encode()
    try:
        msg = await nc.request(subject, payload, timeout=20)
    except nats.errors.NoRespondersError:  # a coordinator subscribed an instant ago
        await anyio.sleep(0.05)
        msg = await nc.request(subject, payload, timeout=20)
    return json.loads(msg.data)


async def test_runtime_retries_a_429_and_completes(
    fake: FakeAnthropic, nats_url: str, nc: NatsClient
) -> None:
    registry.configure_providers(settings(fake))
    configure_scheduler(
        rate_limits={
            ModelProvider.ANTHROPIC: RateLimitConfig(
                requests_per_minute=100, backoff_base_delay=0.05
            )
        }
    )
    name = f"resilience-{uuid.uuid4().hex[:8]}"
    node = Node(
        "generate",
        model_config=ModelConfig(provider=ModelProvider.ANTHROPIC, model_name=MODEL),
    )
    network = NoN.from_operators(
        [node],
        name=name,
        layer_config=LayerConfig(
            error_policy=ErrorPolicy.RETRY_WITH_BACKOFF,
            max_retries=2,
            retry_delay_seconds=0.05,
            timeout_seconds=20,
        ),
    )
    fake.enqueue(error_response(429, message="slow down"))
    async with serving(nats_url, network):
        reply = await execute(nc, name, "hello")
    assert reply["status"] == "completed", reply.get("error")
    (layer,) = reply["layers"]
    (node_result,) = layer["nodes"]
    assert node_result["attempts"] == 2
    assert node_result["provider"] == "anthropic"
    assert len(fake.message_requests) == 2
    assert reply["output"]
