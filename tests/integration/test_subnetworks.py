"""Hierarchical networks: own exec subject, nested trace, budget and time flow, depth bound."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider, NetworkConfig
from nons.runtime.messages import DEPTH_HEADER, decode_exec_reply
from tests.support import routing_ops
from tests.support.spans import capturing_provider, span_tree
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg

_OPERATORS = routing_ops  # importing it registers the test operators

MOCK = ModelConfig(provider=ModelProvider.MOCK)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_child_runs_on_its_own_subject_inside_the_parents_trace(nc: Nats) -> None:
    child_name, parent_name = unique("child"), unique("parent")
    child = NoN.from_operators([Node("generate", MOCK)], name=child_name)
    parent = NoN.from_operators([Node("tag", label="p"), child], name=parent_name)
    coordinator_provider, coordinator_spans = capturing_provider()
    actor_provider, actor_spans = capturing_provider()
    async with (
        ActorHost(nc, [parent], tracer_provider=actor_provider),
        Coordinator(nc, [parent], tracer_provider=coordinator_provider),
    ):
        # The child is served on its own subject: callable directly, like any network.
        direct = await Client(nc).execute(child_name, "direct")
        assert direct.status == "completed"
        coordinator_spans.clear()
        actor_spans.clear()
        result = await Client(nc).execute(parent_name, "hello")
    assert result.status == "completed", result.error
    assert result.layer_results[1].nodes[0].operator == "network"
    await wait_until(lambda: len(actor_spans.get_finished_spans()) >= 2, timeout=5)
    spans = [*coordinator_spans.get_finished_spans(), *actor_spans.get_finished_spans()]
    assert {span.context.trace_id for span in spans} == {int(str(result.metadata.trace_id), 16)}
    assert span_tree(spans) == "\n".join(
        [
            f"process nons.exec.{parent_name}",
            "  layer 0",
            f"    send nons.node.{parent_name}.l0-tag",
            f"      process nons.node.{parent_name}.l0-tag",
            "  layer 1",
            f"    send nons.exec.{child_name}",
            f"      process nons.exec.{child_name}",
            "        layer 0",
            f"          send nons.node.{child_name}.l0-generate",
            f"            process nons.node.{child_name}.l0-generate",
        ]
    ), span_tree(spans)


async def test_budget_time_and_depth_flow_down_to_the_child(nc: Nats) -> None:
    child_name, parent_name = unique("child"), unique("parent")
    child = NoN.from_operators([Node("generate", MOCK)], name=child_name)
    parent = NoN.from_operators([Node("tag", label="p"), child], name=parent_name)
    requests: list[tuple[dict[str, Any], dict[str, str]]] = []
    child_events: list[dict[str, Any]] = []

    async def spy(msg: Msg) -> None:
        requests.append((json.loads(msg.data), dict(msg.headers or {})))

    async def on_event(msg: Msg) -> None:
        child_events.append(json.loads(msg.data))

    spy_sub = await nc.subscribe(f"nons.exec.{child_name}", cb=spy)
    events_sub = await nc.subscribe(f"nons.events.{child_name}.>", cb=on_event)
    try:
        async with ActorHost(nc, [parent]), Coordinator(nc, [parent]):
            result = await Client(nc).execute(
                parent_name,
                "hello",
                timeout_s=20.0,
                budget_usd=0.5,
                metadata={"team": "search"},
            )
        assert result.status == "completed", result.error
        await wait_until(lambda: requests, timeout=5, message="the spy saw no child request")
        await wait_until(
            lambda: any(e["type"] == "execution.completed" for e in child_events), timeout=5
        )
    finally:
        await spy_sub.unsubscribe()
        await events_sub.unsubscribe()
    [(request, headers)] = requests
    assert request["input"] == "p:hello"
    assert request["budget_usd"] == 0.5  # the mock costs nothing: all of it is left
    assert 0 < request["timeout_s"] <= 20.0
    assert request["metadata"] == {"team": "search"}
    assert request["execution_id"].startswith(result.execution_id)
    assert headers[DEPTH_HEADER] == "1"
    started = next(e for e in child_events if e["type"] == "execution.started")
    assert started["metadata"] == {"team": "search"}
    assert started["trace_id"] == result.metadata.trace_id


async def test_nesting_past_max_depth_fails_with_a_typed_error(nc: Nats) -> None:
    leaf = NoN.from_operators([Node("tag", label="leaf")], name=unique("leaf"))
    middle = NoN.from_operators([leaf], NetworkConfig(max_depth=1), name=unique("middle"))
    top = NoN.from_operators([middle], NetworkConfig(max_depth=1), name=unique("top"))
    async with ActorHost(nc, [top]), Coordinator(nc, [top]):
        client = Client(nc)
        shallow = await client.execute(middle.name, "x")  # middle at depth 0: leaf at 1 is fine
        assert shallow.output == "leaf:x"
        result = await client.execute(top.name, "x")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == "depth_exceeded"
    assert "max_depth=1" in result.error.message
    assert result.error.details["depth"] == 2


async def test_a_request_claiming_too_deep_a_nesting_is_refused_on_entry(nc: Nats) -> None:
    net = NoN.from_operators([Node("tag", label="t")], name=unique("entry"))
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        msg = await nc.request(
            f"nons.exec.{net.name}",
            json.dumps({"input": "x"}).encode(),
            timeout=10,
            headers={DEPTH_HEADER: "99"},
        )
        reply = decode_exec_reply(msg.data)
        assert reply.status == "failed"
        assert reply.error is not None
        assert reply.error.type == "depth_exceeded"
        assert reply.error.details == {"depth": 99, "max_depth": 8}
        assert reply.layers == []
        # At the bound itself the execution runs.
        ok = await nc.request(
            f"nons.exec.{net.name}", b"x", timeout=10, headers={DEPTH_HEADER: "8"}
        )
        assert decode_exec_reply(ok.data).output == "t:x"
