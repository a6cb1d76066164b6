"""Error policies, graceful degradation and the three timeout levels over a real nats-server."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ErrorPolicy, LayerConfig, NetworkConfig
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.flaky_ops import fail_if, slow

if TYPE_CHECKING:
    from nons.core.results import ExecutionResult


ELAPSED: dict[str, float] = {}
"""Seconds from request to reply of the last `run` per network (shutdown drain excluded)."""


async def run(nats_url: str, net: NoN, text: str = "x", **options: float) -> ExecutionResult:
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="policy-test"))
    try:
        async with ActorHost(nc, [net]), Coordinator(nc, [net]):
            client = Client(nc)
            started = time.monotonic()
            result = await client.execute(net.name, {"text": text}, **options)  # type: ignore[arg-type]
            ELAPSED[net.name] = time.monotonic() - started
            await client.close()
            return result
    finally:
        await nc.close()


def layer(policy: ErrorPolicy, **config: float) -> LayerConfig:
    return LayerConfig(error_policy=policy, retry_delay_seconds=0.01, **config)  # type: ignore[arg-type]


async def test_skip_and_continue_goes_on_with_the_nodes_that_succeeded(nats_url: str) -> None:
    net = NoN.from_operators(
        [[Node(fail_if), Node(fail_if, fail=True), Node(fail_if, node_id="third")]],
        name="skipping",
        layer_config=layer(ErrorPolicy.SKIP_AND_CONTINUE),
    )
    result = await run(nats_url, net)
    assert result.status == "partial"
    assert result.output == ["ok:x", "ok:x"]
    statuses = [node.status for node in result.layer_results[0].nodes]
    assert statuses == ["ok", "failed", "ok"]


async def test_return_partial_fails_below_its_threshold(nats_url: str) -> None:
    nodes = [Node(fail_if), Node(fail_if, fail=True), Node(fail_if, fail=True, node_id="c")]
    enough = NoN.from_operators(
        [nodes],
        name="partial-ok",
        layer_config=layer(ErrorPolicy.RETURN_PARTIAL, min_success_threshold=0.3),
    )
    too_few = NoN.from_operators(
        [nodes],
        name="partial-no",
        layer_config=layer(ErrorPolicy.RETURN_PARTIAL, min_success_threshold=0.5),
    )
    assert (await run(nats_url, enough)).status == "partial"
    failed = await run(nats_url, too_few)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.type == "layer_failed"
    assert failed.error.details["failed_nodes"] == ["l0-fail_if-1", "c"]


async def test_fail_fast_cancels_the_rest_of_the_layer(nats_url: str) -> None:
    net = NoN.from_operators(
        [[Node(fail_if, fail=True), Node(slow, seconds=3.0)]],
        name="failing-fast",
        layer_config=layer(ErrorPolicy.FAIL_FAST),
    )
    result = await run(nats_url, net)
    assert ELAPSED["failing-fast"] < 2.5  # the reply did not wait for the slow node
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == "operator_error"
    assert result.layer_results[0].nodes[1].status == "skipped"


async def test_a_declared_fallback_output_is_used_and_marked(nats_url: str) -> None:
    net = NoN.from_operators(
        [Node(fail_if, fail=True, fallback_output="sorry, later"), Node(fail_if)],
        name="degrading",
        layer_config=layer(ErrorPolicy.FAIL_FAST),
    )
    result = await run(nats_url, net)
    assert result.status == "completed"
    first = result.layer_results[0].nodes[0]
    assert first.status == "fallback"
    assert first.output == "sorry, later"
    assert first.error is not None  # why the fallback was needed
    assert result.output == "ok:sorry, later"


async def test_node_layer_and_execution_timeouts_name_where_time_ran_out(nats_url: str) -> None:
    node_timeout = NoN.from_operators(
        [Node(slow, seconds=3.0)],
        name="node-timeout",
        layer_config=layer(ErrorPolicy.FAIL_FAST, node_timeout_seconds=0.3),
    )
    result = await run(nats_url, node_timeout)
    assert result.error is not None
    assert result.error.type == "node_timeout"
    assert result.error.details["node_id"] == "l0-slow"

    layer_timeout = NoN.from_operators(
        [Node(slow, seconds=3.0)],
        name="layer-timeout",
        layer_config=layer(ErrorPolicy.FAIL_FAST, timeout_seconds=0.3),
    )
    result = await run(nats_url, layer_timeout)
    assert result.error is not None
    assert (result.error.type, result.error.details["layer_index"]) == ("layer_timeout", 0)

    whole = NoN.from_operators(
        [Node(slow, seconds=0.2), Node(slow, seconds=3.0)],
        name="exec-timeout",
        network_config=NetworkConfig(global_timeout_seconds=60),
    )
    result = await run(nats_url, whole, timeout_s=0.8)
    assert ELAPSED["exec-timeout"] < 2.5
    assert result.error is not None
    assert result.error.type == "execution_timeout"
    assert result.error.details["layer_index"] == 1
    assert result.error.details["node_id"] == "l1-slow"
