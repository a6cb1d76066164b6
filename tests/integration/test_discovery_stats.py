"""`$SRV.STATS` per endpoint: an actor's reply stays small, a coordinator's shows failures."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from nons.actors.host import ActorHost
from nons.cli._discovery import discover, print_services
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.flaky_ops import fail_if

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client as Nats

    from nons.runtime.server import EmbeddedServer

_OPERATORS = fail_if  # importing it registers the test operators

NODES = 1000


@pytest.fixture
async def own_nc(fresh_nats_server: EmbeddedServer) -> AsyncIterator[Nats]:
    """A server of this test's own: discovery hears every service on a server."""
    nc = await connect_nats(ConnectionSettings(url=fresh_nats_server.url, name="stats-test"))
    try:
        yield nc
    finally:
        await nc.close()


async def test_an_actor_with_a_thousand_nodes_answers_stats_with_each_nodes_own_figures(
    own_nc: Nats, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = NoN.from_operators([Node(fail_if) * NODES], name=f"wide-{uuid.uuid4().hex[:6]}")
    async with ActorHost(own_nc, [wide]), Coordinator(own_nc, [wide]):
        result = await Client(own_nc).execute(wide.name, {"text": "x"}, timeout_s=60)
        assert result.status == "completed", result.error
        reply = await own_nc.request("$SRV.STATS.nons-actor", b"", timeout=10)
        services = await discover(own_nc, timeout_s=1.0)
        print_services(services, as_json=False, url="test")
    assert len(reply.data) < own_nc.max_payload / 2, len(reply.data)
    stats = json.loads(reply.data)
    endpoints = stats["endpoints"]
    assert len(endpoints) == NODES
    for endpoint in endpoints:
        assert endpoint["data"] == {
            "in_flight": 0,
            "completed": 1,
            "failed": 0,
            "refused": 0,
            "dropped": 0,
        }
        assert endpoint["num_requests"] == 1
    (actor,) = [s for s in services if s["name"] == "nons-actor"]
    assert len(actor["endpoints"]) == NODES
    assert all(e["num_requests"] == 1 for e in actor["endpoints"])
    listed = capsys.readouterr().out
    assert listed.count("actor ") == NODES
    assert "(requests 1, errors 0" in listed


async def test_coordinator_stats_are_per_network_and_count_failed_executions(
    own_nc: Nats, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = NoN.from_operators([Node(fail_if)], name=f"ok-{uuid.uuid4().hex[:6]}")
    bad = NoN.from_operators([Node(fail_if, fail=True)], name=f"bad-{uuid.uuid4().hex[:6]}")
    async with ActorHost(own_nc, [ok, bad]), Coordinator(own_nc, [ok, bad]):
        client = Client(own_nc)
        for _ in range(3):
            assert (await client.execute(ok.name, {"text": "x"})).status == "completed"
        failed = await client.execute(bad.name, {"text": "x"})
        assert failed.error is not None
        reply = await own_nc.request("$SRV.STATS.nons-coordinator", b"", timeout=10)
        services = await discover(own_nc, timeout_s=1.0)
        print_services(services, as_json=False, url="test")
    by_name = {e["name"]: e for e in json.loads(reply.data)["endpoints"]}
    assert by_name[ok.name]["num_requests"] == 3
    assert by_name[ok.name]["num_errors"] == 0
    assert by_name[ok.name]["data"]["completed"] == 3
    assert by_name[ok.name]["data"]["failed"] == 0
    assert by_name[bad.name]["num_requests"] == 1
    assert by_name[bad.name]["num_errors"] == 1
    assert by_name[bad.name]["last_error"] == failed.error.type
    assert by_name[bad.name]["data"]["failed"] == 1
    assert by_name[bad.name]["data"]["completed"] == 0
    listed = capsys.readouterr().out
    assert f"errors 1, last error {failed.error.type}" in listed
