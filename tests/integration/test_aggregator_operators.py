"""A parallel layer's list reaches custom aggregators over NATS, whatever their schema."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from examples.aggregators import answer_lengths, count_answers, longest_answer
from nons import Node, NoN
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.errors import OperatorValidationError
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


async def _run(nats_url: str, network: NoN, value: Any) -> Any:
    serve_nc = await connect_nats(ConnectionSettings(url=nats_url, name="nons-test-agg-serve"))
    client = Client(
        await connect_nats(ConnectionSettings(url=nats_url, name="nons-test-agg")),
        owns_connection=True,
    )
    try:
        async with ActorHost(serve_nc, [network]), Coordinator(serve_nc, [network]):
            result = await network.forward(value, client=client)
            return result.output
    finally:
        await client.close()
        await serve_nc.close()


async def test_parallel_outputs_reach_each_kind_of_aggregator(nats_url: str) -> None:
    network = NoN.from_operators(
        [
            Node("generate") * 3,
            [Node(longest_answer), Node(answer_lengths, unit="words"), Node(count_answers)],
        ],
        name=f"agg-{uuid.uuid4().hex[:8]}",
    )
    longest, lengths, counted = await _run(nats_url, network, "name a bakery")
    assert isinstance(longest, str)
    assert len(lengths) == 3
    assert counted["count"] == 3


async def test_array_schema_violation_fails_the_node_typed(nats_url: str) -> None:
    network = NoN.from_operators([Node(count_answers)], name=f"agg-bad-{uuid.uuid4().hex[:8]}")
    with pytest.raises(OperatorValidationError, match=r"\$\[1\]"):
        await _run(nats_url, network, ["fine", 2])
