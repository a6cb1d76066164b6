"""Durable executions in one process over a real nats-server with JetStream: result by id,
idempotent resubmission, cancel, listing, large payloads by reference, a server restart,
and the typed refusals (no JetStream, unknown ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio
import nats
import pytest

from nons import NetworkConfig, Node, NoN, operator
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.errors import NotFoundError
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.payloads import PAYLOAD_BUCKET, REF_KEY
from nons.runtime.server import EmbeddedServer
from tests.support.processes import REPO_ROOT, nons_env
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

CALLS: Counter[str] = Counter()
"""Operator runs by node id: the count of "model calls"."""
CANCELLED: list[str] = []
GATE: dict[str, asyncio.Event] = {}


@operator(description="Count the call, then return the text upper-cased.")
async def dur_shout(text: str, tag: str = "") -> str:
    CALLS[tag] += 1
    return text.upper()


@operator(description="Count the call and wait until the test opens the gate (or cancels).")
async def dur_wait(text: str, tag: str = "") -> str:
    CALLS[tag] += 1
    try:
        await GATE.setdefault(tag, asyncio.Event()).wait()
    except asyncio.CancelledError:
        CANCELLED.append(tag)
        raise
    return text


@operator(description="Return the text itself (a large output stays large).")
async def dur_echo(text: str) -> str:
    return text


@operator(description="The length of the text.")
async def dur_length(text: str) -> str:
    return str(len(text))


def network(*nodes: Node, durable: bool = True) -> NoN:
    return NoN.from_operators(
        list(nodes),
        name=f"dur-{uuid.uuid4().hex[:8]}",
        network_config=NetworkConfig(durable=durable),
    )


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    CALLS.clear()
    CANCELLED.clear()
    GATE.clear()
    yield
    registry.reset_providers()


@contextlib.asynccontextmanager
async def serving(url: str, *networks: NoN) -> AsyncIterator[Client]:
    serve_nc = await connect_nats(ConnectionSettings(url=url, name="dur-serve"))
    client = Client(await connect_nats(ConnectionSettings(url=url, name="dur-client")))
    try:
        async with ActorHost(serve_nc, networks), Coordinator(serve_nc, networks):
            yield client
    finally:
        await client.close()
        await client.nc.close()
        await serve_nc.close()


async def test_result_by_id_and_idempotent_resubmission(nats_url: str) -> None:
    net = network(Node(dur_shout, node_id="a", tag="a"), Node(dur_shout, node_id="b", tag="b"))
    execution_id = uuid.uuid4().hex
    async with serving(nats_url, net) as client:
        first = await client.execute(net.name, "hello", execution_id=execution_id)
        again = await client.execute(net.name, "something else", execution_id=execution_id)
        by_id = await client.result(execution_id)
        listed = [i for i in await client.executions(net.name) if i.execution_id == execution_id]
    assert first.status == "completed"
    assert first.output == "HELLO"
    assert again.output == "HELLO"  # the recorded execution's reply: nothing ran again
    assert by_id.output == "HELLO"
    assert by_id.execution_id == execution_id
    assert CALLS == {"a": 1, "b": 1}
    assert [(i.status, i.current_layer) for i in listed] == [("completed", 2)]


async def test_a_resubmission_while_running_waits_for_the_same_execution(nats_url: str) -> None:
    net = network(Node(dur_wait, node_id="slow", tag="slow"))
    execution_id = uuid.uuid4().hex
    async with serving(nats_url, net) as client:
        first = asyncio.ensure_future(client.execute(net.name, "x", execution_id=execution_id))
        await wait_until(lambda: CALLS["slow"] == 1, timeout=10)
        second = asyncio.ensure_future(client.execute(net.name, "y", execution_id=execution_id))
        await anyio.sleep(0.2)  # the resubmission is waiting, not running
        assert not second.done()
        GATE["slow"].set()
        results = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
    assert [r.output for r in results] == ["x", "x"]
    assert CALLS["slow"] == 1


async def test_cancel_mid_layer(nats_url: str) -> None:
    net = network(
        Node(dur_shout, node_id="first", tag="first"),
        Node(dur_wait, node_id="stuck", tag="stuck"),
        Node(dur_shout, node_id="never", tag="never"),
    )
    execution_id = uuid.uuid4().hex
    async with serving(nats_url, net) as client:
        pending = asyncio.ensure_future(client.execute(net.name, "x", execution_id=execution_id))
        await wait_until(lambda: CALLS["stuck"] == 1, timeout=10)
        info = await client.cancel(execution_id)
        result = await asyncio.wait_for(pending, timeout=10)
        by_id = await client.result(execution_id)
        await wait_until(lambda: CANCELLED == ["stuck"], timeout=5)
    assert (info.status, info.error_type) == ("failed", "cancelled")
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.type == "cancelled"
    assert by_id.error is not None
    assert by_id.error.type == "cancelled"
    assert CALLS["never"] == 0  # no further layer started


async def test_unknown_ids_are_not_found(nats_url: str) -> None:
    net = network(Node(dur_shout, node_id="a"))
    async with serving(nats_url, net) as client:
        for call in (client.result, client.cancel):
            with pytest.raises(NotFoundError) as error:
                await call("no-such-execution")
            assert error.value.type == "not_found"


async def test_a_20_mb_input_runs_through_a_network(fresh_nats_server: EmbeddedServer) -> None:
    net = network(Node(dur_echo, node_id="echo"), Node(dur_length, node_id="length"))
    async with serving(fresh_nats_server.url, net) as client:
        assert client.nc.max_payload == 1024 * 1024
        result = await client.execute(net.name, "x" * 20_000_000)
    assert result.status == "completed", result.error
    assert result.output == "20000000"
    assert result.layer_results[0].nodes[0].output[REF_KEY]["bucket"] == PAYLOAD_BUCKET


async def test_a_plain_client_resolves_a_large_reply_by_reference(
    fresh_nats_server: EmbeddedServer,
) -> None:
    echo = network(Node(dur_echo, node_id="echo"), durable=False)
    big = "y" * 2_000_000
    async with serving(fresh_nats_server.url, echo) as client:
        echoed = await client.execute(echo.name, big)
        raw = await nats.connect(fresh_nats_server.url)
        try:
            short = await raw.request(f"nons.exec.{echo.name}", b"short", timeout=10)
            ref_input = await client.payloads.offload("plain.input", json.dumps(big).encode())
            body = json.dumps({"input": ref_input}).encode()
            msg = await raw.request(f"nons.exec.{echo.name}", body, timeout=30)
            reference = json.loads(msg.data)["output"][REF_KEY]
            store = await raw.jetstream().object_store(reference["bucket"])
            fetched = json.loads((await store.get(reference["name"])).data or b"null")
        finally:
            await raw.close()
    assert echoed.output == big  # the client resolved the reply's reference
    assert json.loads(short.data)["output"] == "short"  # small values are never references
    assert reference["bucket"] == PAYLOAD_BUCKET
    assert reference["size"] == len(json.dumps(big))
    assert fetched == big


async def test_without_jetstream_a_durable_request_is_refused_typed() -> None:
    server = EmbeddedServer(jetstream=False)
    server.start()
    try:
        net = network(Node(dur_shout, node_id="a", tag="a"))
        plain = network(Node(dur_echo, node_id="echo"), durable=False)
        serve_nc = await connect_nats(ConnectionSettings(url=server.url))
        raw = await nats.connect(server.url)
        try:
            async with (
                ActorHost(serve_nc, [net, plain]),
                Coordinator(serve_nc, [net, plain], settings=_no_event_recording()),
            ):
                reply = json.loads(
                    (await raw.request(f"nons.exec.{net.name}", b"x", timeout=10)).data
                )
                asked = json.loads(
                    (
                        await raw.request(
                            f"nons.exec.{plain.name}",
                            json.dumps({"input": "x", "durable": True}).encode(),
                            timeout=10,
                        )
                    ).data
                )
                too_big = json.loads(
                    (
                        await raw.request(
                            f"nons.exec.{plain.name}",
                            json.dumps("y" * 600_000).encode(),
                            timeout=10,
                        )
                    ).data
                )
        finally:
            await raw.close()
            await serve_nc.close()
    finally:
        server.stop()
    assert (reply["status"], reply["error"]["type"]) == ("failed", "durability_unavailable")
    assert asked["error"]["type"] == "durability_unavailable"
    assert CALLS["a"] == 0  # never run without the durability it asked for
    assert too_big["error"]["type"] == "payload_too_large"


def _no_event_recording() -> Any:
    from nons.coordinator.service import CoordinatorSettings

    return CoordinatorSettings(record_events=False)


async def test_a_durable_execution_survives_a_server_restart(
    fresh_nats_server: EmbeddedServer,
) -> None:
    net = network(
        Node(dur_shout, node_id="before", tag="before"),
        Node(dur_wait, node_id="across", tag="across"),
        Node(dur_shout, node_id="after", tag="after"),
    )
    async with serving(fresh_nats_server.url, net) as client:
        pending = asyncio.ensure_future(client.execute(net.name, "go"))
        await wait_until(lambda: CALLS["across"] == 1, timeout=10)
        await fresh_nats_server.arestart()
        await wait_until(lambda: client.nc.is_connected, timeout=15)
        GATE["across"].set()
        result = await asyncio.wait_for(pending, timeout=30)
    assert result.status == "completed", result.error
    assert result.output == "GO"
    assert CALLS == {"before": 1, "across": 1, "after": 1}


async def test_result_executions_and_cancel_from_a_fresh_process(nats_url: str) -> None:
    net = network(Node(dur_shout, node_id="a", tag="a"), Node(dur_wait, node_id="w", tag="w"))
    done_id, running_id = uuid.uuid4().hex, uuid.uuid4().hex
    async with serving(nats_url, net) as client:
        GATE["w"] = asyncio.Event()
        GATE["w"].set()
        await client.execute(net.name, "done", execution_id=done_id)
        GATE["w"] = asyncio.Event()
        running = asyncio.ensure_future(client.execute(net.name, "run", execution_id=running_id))
        await wait_until(lambda: CALLS["w"] == 2, timeout=10)
        result = await asyncio.to_thread(_cli, nats_url, "result", done_id, "--json")
        listing = await asyncio.to_thread(_cli, nats_url, "executions", net.name, "--json")
        waiting = await asyncio.to_thread(_cli, nats_url, "result", running_id)
        cancelled = await asyncio.to_thread(_cli, nats_url, "cancel", running_id, "--json")
        missing = await asyncio.to_thread(_cli, nats_url, "result", "no-such-id")
        await asyncio.wait_for(running, timeout=10)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == "DONE"
    rows = {row["execution_id"]: row for row in json.loads(listing.stdout)}
    assert rows[done_id]["status"] == "completed"
    assert rows[running_id]["status"] == "running"
    assert rows[running_id]["current_layer"] == 1
    assert waiting.returncode == 4, waiting.stderr
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["error_type"] == "cancelled"
    assert missing.returncode == 1
    assert "not_found" in missing.stderr


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nons", "--nats-url", url, *args],
        capture_output=True,
        text=True,
        env=nons_env(),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
