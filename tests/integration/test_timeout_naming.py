"""A timeout is named by the limit that ran out, in coordinator, actor and sub-network alike."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import msgspec

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.names import node_subject
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.results import NodeResult
from nons.core.types import ErrorPolicy, LayerConfig
from nons.runtime.messages import NodeCall, encode
from tests.support.flaky_ops import slow
from tests.support.spans import capturing_provider
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats

_OPERATORS = slow  # importing it registers the test operators


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_node_timeout_cut_to_the_layers_time_reports_the_layer(nc: Nats) -> None:
    # Both limits are 0.3 s, but the layer's started first: its deadline is the earlier.
    net = NoN.from_operators(
        [Node(slow, seconds=3.0)],
        name=unique("cut"),
        layer_config=LayerConfig(timeout_seconds=0.3, node_timeout_seconds=0.3),
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, {"text": "x"})
    assert result.error is not None
    assert result.error.type == "layer_timeout", result.error
    assert result.error.details["timeout_s"] == 0.3
    node = result.layer_results[0].nodes[0]
    assert node.error is not None
    assert node.error.type == "layer_timeout"


async def test_the_actor_names_its_timeout_by_the_limit_it_was_given(nc: Nats) -> None:
    net = NoN.from_operators([Node(slow, seconds=3.0)], name=unique("actor-limit"))
    node = net.layers[0].nodes[0]
    provider, spans = capturing_provider()
    async with ActorHost(nc, [net], tracer_provider=provider):
        call = NodeCall(
            network=net.name,
            node_id=node.node_id,
            fingerprint=net.fingerprint,
            execution_id=unique("exec"),
            layer_index=0,
            input={"text": "x"},
            timeout_s=0.2,
            timeout_limit="execution",
            timeout_limit_s=0.5,
        )
        # The test waits longer than the actor's limit, so the actor's own timer decides.
        reply = await nc.request(node_subject(net.name, node.node_id), encode(call), timeout=5)
        result = msgspec.json.decode(reply.data, type=NodeResult)
        await wait_until(lambda: len(spans.get_finished_spans()) >= 1, timeout=5)
    assert result.error is not None
    assert result.error.type == "execution_timeout", result.error
    assert result.error.details == {"node_id": node.node_id, "layer_index": 0, "timeout_s": 0.5}
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "execution_timeout"


async def test_an_operators_own_timeout_error_is_not_a_deadline(nc: Nats) -> None:
    net = NoN.from_operators([Node("raise_timeout")], name=unique("own-timeout"))
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, "x", timeout_s=10)
    assert result.error is not None
    assert result.error.type == "operator_error", result.error
    assert result.error.retryable is True
    assert result.error.details["exception"] == "TimeoutError"


async def test_a_retry_that_could_not_start_before_the_deadline_is_not_made(nc: Nats) -> None:
    # The node's own 0.2 s runs out first; the backoff (0.5-1 s) would pass the layer's 0.6 s.
    net = NoN.from_operators(
        [Node(slow, seconds=3.0)],
        name=unique("no-late-retry"),
        layer_config=LayerConfig(
            error_policy=ErrorPolicy.RETRY_WITH_BACKOFF,
            timeout_seconds=0.6,
            node_timeout_seconds=0.2,
            retry_delay_seconds=1.0,
            max_retries=3,
        ),
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        result = await Client(nc).execute(net.name, {"text": "x"})
    assert result.error is not None
    assert result.error.type == "node_timeout", result.error
    assert result.error.details["timeout_s"] == 0.2
    assert result.layer_results[0].nodes[0].attempts == 1


async def test_a_sub_network_out_of_its_parents_time_reports_the_parents_limit(nc: Nats) -> None:
    child = NoN.from_operators([Node(slow, seconds=3.0)], name=unique("slow-child"))
    parent = NoN.from_operators(
        [child], name=unique("parent"), layer_config=LayerConfig(timeout_seconds=0.4)
    )
    async with ActorHost(nc, [parent]), Coordinator(nc, [parent]):
        result = await Client(nc).execute(parent.name, {"text": "x"})
    assert result.error is not None
    assert result.error.type == "layer_timeout", result.error
    assert result.error.details["layer_index"] == 0
