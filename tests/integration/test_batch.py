"""`NoN.forward_batch()` and `NoN.stream()` over a real nats-server, coordinator and actors."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from nons import Node, NoN, operator
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.errors import OperatorError
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.mock import MockBehaviour
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nons.core.results import ExecutionResult

_in_flight = 0
_max_in_flight = 0


@operator(description="Sleep, then echo; counts how many calls run at once.")
async def bt_slow_echo(text: str, delay: float = 0.0) -> str:
    """Echo `text` after `delay` seconds, failing on `boom`."""
    global _in_flight, _max_in_flight
    _in_flight += 1
    _max_in_flight = max(_max_in_flight, _in_flight)
    try:
        await anyio.sleep(delay)
    finally:
        _in_flight -= 1
    if text == "boom":
        raise OperatorError("boom on purpose", details={"text": text})
    return text


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@pytest.fixture(autouse=True)
def reset_counters() -> None:
    global _in_flight, _max_in_flight
    _in_flight = _max_in_flight = 0


@contextlib.asynccontextmanager
async def serving(url: str, network: NoN) -> AsyncIterator[Client]:
    """A coordinator and actors for `network`, and a client, each on its own connection."""
    serve_nc = await connect_nats(ConnectionSettings(url=url, name="nons-test-batch-serve"))
    client_nc = await connect_nats(ConnectionSettings(url=url, name="nons-test-batch"))
    client = Client(client_nc, owns_connection=True)
    try:
        async with ActorHost(serve_nc, [network]), Coordinator(serve_nc, [network]):
            yield client
    finally:
        await client.close()
        await serve_nc.close()


def echo_network(prefix: str) -> NoN:
    return NoN.from_operators([Node(bt_slow_echo)], name=unique(prefix))


async def test_batch_order_is_input_order_with_mock_latency(nats_url: str) -> None:
    registry.configure_providers(
        ProviderSettings(default_provider=ModelProvider.MOCK), MockBehaviour(latency_s=0.05)
    )
    net = NoN.from_operators(["transform"], name=unique("bt-mock"))
    inputs = [f"item number {i}" for i in range(10)]
    async with serving(nats_url, net) as client:
        started = time.perf_counter()
        results = await net.forward_batch(inputs, concurrency=5, client=client)
        elapsed = time.perf_counter() - started
    assert [r.status for r in results] == ["completed"] * 10
    for index, (text, result) in enumerate(zip(inputs, results, strict=True)):
        assert result.index == index
        assert text in result.output
        assert result.is_mock
    assert len({r.execution_id for r in results}) == 10
    # Ten 50 ms calls, five at a time, cannot take less than two rounds.
    assert elapsed >= 0.1


async def test_batch_order_survives_reversed_completion(nats_url: str) -> None:
    net = echo_network("bt-order")
    inputs = [{"text": f"t{i}", "delay": 0.04 * (5 - i)} for i in range(6)]
    async with serving(nats_url, net) as client:
        results = await net.forward_batch(inputs, concurrency=6, client=client)
    assert [r.output for r in results] == [f"t{i}" for i in range(6)]


async def test_concurrency_bound_is_respected(nats_url: str) -> None:
    net = echo_network("bt-bound")
    inputs = [{"text": f"t{i}", "delay": 0.05} for i in range(12)]
    async with serving(nats_url, net) as client:
        results = await net.forward_batch(inputs, concurrency=3, client=client)
    assert {r.status for r in results} == {"completed"}
    assert 1 <= _max_in_flight <= 3
    assert _max_in_flight == 3  # twelve 50 ms items, three slots: all three get used


async def test_one_failing_item_does_not_fail_the_others(nats_url: str) -> None:
    net = echo_network("bt-fail")
    inputs = [{"text": "a"}, {"text": "boom"}, {"text": "c"}]
    async with serving(nats_url, net) as client:
        results = await net.forward_batch(inputs, concurrency=2, client=client)
        assert [r.status for r in results] == ["completed", "failed", "completed"]
        assert [r.output for r in results] == ["a", None, "c"]
        error = results[1].error
        assert error is not None
        assert error.type == "operator_error"
        assert "boom on purpose" in error.message
        with pytest.raises(OperatorError):
            await net.forward_batch(inputs, concurrency=1, client=client, raise_on_failure=True)


async def test_stream_yields_as_completed(nats_url: str) -> None:
    net = echo_network("bt-stream")
    inputs: list[dict[str, Any]] = [{"text": "slow", "delay": 0.5}, {"text": "fast"}]
    seen: list[tuple[int, Any]] = []
    async with serving(nats_url, net) as client:
        async for result in net.stream(inputs, concurrency=2, client=client):
            seen.append((result.index, result.output))
    assert seen == [(1, "fast"), (0, "slow")]


async def test_stream_reads_an_async_source_lazily(nats_url: str) -> None:
    net = echo_network("bt-lazy")
    pulled = 0

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield {"text": f"t{i}", "delay": 0.01}

    taken: list[ExecutionResult] = []
    async with serving(nats_url, net) as client:
        async with contextlib.aclosing(net.stream(source(), concurrency=3, client=client)) as it:
            async for result in it:
                taken.append(result)
                assert pulled <= len(taken) + 3
                if len(taken) == 6:
                    break
    assert pulled <= 9
    assert all(r.status == "completed" for r in taken)


async def test_batch_against_a_network_nobody_serves_reports_each_item(nats_url: str) -> None:
    net = echo_network("bt-nobody")
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="nons-test-batch"))
    async with Client(nc, owns_connection=True) as client:
        results = await net.forward_batch(["a", "b"], concurrency=2, client=client)
    assert [r.status for r in results] == ["failed", "failed"]
    assert {r.error.type for r in results if r.error} == {"network_unavailable"}
