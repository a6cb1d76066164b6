"""Conditional routing over a real nats-server: branches, default, unknown routes, events."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.router import Router
from nons.core.types import ModelConfig, ModelProvider
from tests.support import routing_ops
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg

_OPERATORS = routing_ops  # importing it registers the test operators

MOCK = ModelConfig(provider=ModelProvider.MOCK)


def build(name: str, *, default: str | None = "alpha") -> NoN:
    sub = NoN.from_operators([Node("tag", label="sub")], name=f"{name}-sub")
    return NoN.from_operators(
        [
            Node("keyword_route"),
            Router(
                {
                    "alpha": Node("tag", label="alpha"),
                    "beta": Node("tag", label="beta"),
                    "sub": sub,
                },
                default=default,
            ),
            Node("tag", label="after"),
        ],
        name=name,
    )


class Events:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def on_event(self, msg: Msg) -> None:
        self.items.append(json.loads(msg.data))

    def of(self, execution_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.items if e["execution_id"] == execution_id and e["type"] == kind]


@pytest.fixture
async def served(nc: Nats) -> AsyncIterator[tuple[Client, Events, str]]:
    name = f"routing-{uuid.uuid4().hex[:8]}"
    networks = [build(name), build(f"{name}-strict", default=None)]
    events = Events()
    subscription = await nc.subscribe(f"nons.events.{name}.>", cb=events.on_event)
    strict = await nc.subscribe(f"nons.events.{name}-strict.>", cb=events.on_event)
    async with ActorHost(nc, networks), Coordinator(nc, networks):
        client = Client(nc)
        yield client, events, name
    await subscription.unsubscribe()
    await strict.unsubscribe()


@pytest.mark.parametrize(
    ("text", "branch", "output"),
    [
        ("alpha first", "alpha", "after:alpha:alpha first"),
        ("beta second", "beta", "after:beta:beta second"),
        ("SUB third", "sub", "after:sub:SUB third"),
    ],
)
async def test_each_branch_runs_on_the_routed_content(
    served: tuple[Client, Events, str], text: str, branch: str, output: str
) -> None:
    client, events, name = served
    result = await client.execute(name, text)
    assert result.status == "completed", result.error
    assert result.output == output
    router = result.layer_results[1].nodes[0]
    assert router.node_id == "l1-router"
    assert router.operator == "router"
    assert router.branch == branch
    assert router.output == f"{branch}:{text}"
    execution_id = result.execution_id
    await wait_until(
        lambda: events.of(execution_id, "execution.completed"), timeout=5, message="events"
    )
    [selected] = events.of(execution_id, "route.selected")
    assert selected["node_id"] == "l1-router"
    assert selected["branch"] == branch
    assert selected["default_used"] is False
    assert selected["layer_index"] == 1
    started = [e["node_id"] for e in events.of(execution_id, "node.started")]
    assert started == ["l0-keyword_route", f"l1-router-{branch}", "l2-tag"]


async def test_an_unmatched_route_takes_the_default(served: tuple[Client, Events, str]) -> None:
    client, events, name = served
    result = await client.execute(name, "gamma whatever")
    assert result.status == "completed"
    assert result.output == "after:alpha:gamma whatever"
    assert result.layer_results[1].nodes[0].branch == "alpha"
    execution_id = result.execution_id
    await wait_until(lambda: events.of(execution_id, "route.selected"), timeout=5)
    [selected] = events.of(execution_id, "route.selected")
    assert selected["default_used"] is True
    assert selected["requested"] == "gamma"


async def test_an_unknown_route_without_default_fails_typed(
    served: tuple[Client, Events, str],
) -> None:
    client, events, name = served
    result = await client.execute(f"{name}-strict", "gamma whatever")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == "unknown_route"
    assert result.error.details["route"] == "gamma"
    assert result.error.details["layer_index"] == 1
    assert "alpha, beta, sub" in result.error.message
    router = result.layer_results[1].nodes[0]
    assert router.status == "failed"
    assert len(result.layer_results) == 2  # the layer after the router never ran
    execution_id = result.execution_id
    await wait_until(lambda: events.of(execution_id, "execution.failed"), timeout=5)
    assert not events.of(execution_id, "route.selected")
    [failed] = events.of(execution_id, "node.failed")
    assert failed["node_id"] == "l1-router"
    assert failed["error"]["type"] == "unknown_route"
    # A known route still works on the strict router.
    ok = await client.execute(f"{name}-strict", "beta fine")
    assert ok.output == "after:beta:beta fine"


async def test_the_mock_routes_deterministically(nc: Nats) -> None:
    paths = ["technical", "creative", "analytical"]
    name = f"mockroute-{uuid.uuid4().hex[:8]}"
    route = Node("route", MOCK, available_paths=paths)
    net = NoN.from_operators(
        [route, Router({path: Node("tag", label=path) for path in paths})], name=name
    )
    async with ActorHost(nc, [net]), Coordinator(nc, [net]):
        client = Client(nc)
        for text in ("How do I fix a segfault?", "Write a poem", "Compare Q1 and Q2"):
            expected = (await route.execute(text)).output["selected_path"]
            first = await client.execute(name, text)
            second = await client.execute(name, text)
            assert first.status == "completed", first.error
            assert first.output == f"{expected}:{text}"
            assert second.output == first.output
            assert first.is_mock
