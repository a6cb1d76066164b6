"""The `nons ui` server over HTTP, in process: a real nats-server, a served network, uvicorn.

What the browser test does not reach: the refusals (another host name, a cross-site
run, a non-JSON body), the security headers on every response, "not found" from the
API, the first server-sent event, the output of a durable execution read back from its
record, and a run for a network nobody serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from nons import NetworkConfig, Node, NoN, operator
from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.ui.server import bind, serve_ui
from nons.ui.settings import UiSettings
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@operator(description="The text, bracketed.")
async def ui_bracket(text: str) -> str:
    return f"[{text}]"


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


class Page:
    """HTTP to the UI server on loopback (blocking calls run in a worker thread)."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], Any]:
        return await self.request("GET", path, headers=headers)

    async def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        def call() -> tuple[int, dict[str, str], Any]:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                found = {k.lower(): v for k, v in response.getheaders()}
            finally:
                conn.close()
            parsed = json.loads(data) if found.get("content-type") == "application/json" else data
            return response.status, found, parsed

        return await anyio.to_thread.run_sync(call)

    async def first_event(self, path: str) -> tuple[str, Any]:
        """The first server-sent event of a stream (the stream is closed after it)."""

        def call() -> tuple[str, Any]:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                assert response.getheader("content-type", "").startswith("text/event-stream")
                name, data = "", ""
                for _ in range(100):
                    line = response.fp.readline().decode().rstrip("\n")
                    if line.startswith("event: "):
                        name = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data = line[len("data: ") :]
                    elif line == "" and name:
                        return name, json.loads(data)
                raise AssertionError("no complete event in 100 lines")
            finally:
                conn.close()

        return await anyio.to_thread.run_sync(call)


@contextlib.asynccontextmanager
async def ui_server(url: str) -> AsyncIterator[Page]:
    """`nons ui`'s server on a free port, fed from `url`."""
    ui_nc = await connect_nats(ConnectionSettings(url=url, name="ui-feed"))
    sock = bind("127.0.0.1", 0)
    stop, ready = asyncio.Event(), asyncio.Event()
    settings = UiSettings(port=0, discovery_interval_s=0.2, discovery_wait_s=0.1)
    try:
        serving = asyncio.ensure_future(
            serve_ui(ui_nc, settings, sock, nats_url=url, stop=stop, ready=ready.set)
        )
        try:
            await asyncio.wait_for(ready.wait(), timeout=10)
            yield Page(sock.getsockname()[1])
        finally:
            stop.set()
            await asyncio.wait_for(serving, timeout=10)
    finally:
        sock.close()
        await ui_nc.close()


@contextlib.asynccontextmanager
async def ui_over(url: str, *networks: NoN) -> AsyncIterator[tuple[Page, Client]]:
    """The networks served in process, a client, and `nons ui`'s server."""
    serve_nc = await connect_nats(ConnectionSettings(url=url, name="ui-serve"))
    client = Client(await connect_nats(ConnectionSettings(url=url, name="ui-client")))
    try:
        async with ActorHost(serve_nc, networks), Coordinator(serve_nc, networks):
            async with ui_server(url) as page:
                yield page, client
    finally:
        await client.close()
        for nc in (client.nc, serve_nc):
            await nc.close()


def net(*, durable: bool = False) -> NoN:
    return NoN.from_operators(
        [Node(ui_bracket, node_id="only")],
        name=f"ui-{uuid.uuid4().hex[:8]}",
        network_config=NetworkConfig(durable=durable),
    )


async def test_every_response_carries_the_security_headers_and_strange_hosts_are_refused(
    nats_url: str,
) -> None:
    async with ui_over(nats_url, net()) as (page, _):
        status, headers, body = await page.get("/")
        assert status == 200
        assert b'<script src="/static/app.js"' in body
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        status, headers, _ = await page.get("/static/app.js")
        assert (status, headers["content-security-policy"] != "") == (200, True)
        # A DNS name rebound to 127.0.0.1 does not reach a loopback page.
        status, _, _ = await page.get("/api/state", Host="attacker.example")
        assert status == 400
        status, _, _ = await page.get("/api/state", Host="localhost")
        assert status == 200


async def test_unknown_executions_are_not_found(nats_url: str) -> None:
    async with ui_over(nats_url, net()) as (page, _):
        for execution_id in ("no-such-execution", "bad.id", "%2e%2e"):
            status, _, body = await page.get(f"/api/executions/{execution_id}")
            assert status == 404, execution_id
            assert body["error"] == "not found"


async def test_runs_are_json_from_the_page_only(nats_url: str) -> None:
    network = net()
    async with ui_over(nats_url, network) as (page, _):
        body = json.dumps({"network": network.name, "input": "x"}).encode()
        status, _, _ = await page.request(
            "POST", "/api/run", body=body, headers={"Content-Type": "text/plain"}
        )
        assert status == 415
        status, _, reply = await page.request(
            "POST",
            "/api/run",
            body=body,
            headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
        )
        assert (status, reply["error"]) == (403, "runs are accepted only from this page")
        status, _, reply = await page.request(
            "POST", "/api/run", body=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert status == 400
        assert reply["error"].startswith("bad run request")
        status, _, reply = await page.request(
            "POST",
            "/api/run",
            body=json.dumps({"network": network.name, "input": "x", "timeout_s": -1}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 400

        # A good run: accepted at once, then the reply's output is on the execution.
        status, _, accepted = await page.request(
            "POST", "/api/run", body=body, headers={"Content-Type": "application/json"}
        )
        assert status == 202
        path = f"/api/executions/{accepted['execution_id']}"

        async def output() -> object:
            status, _, detail = await page.get(path)
            done = status == 200 and detail["status"] == "completed"
            return done and detail["output_known"] and detail["nodes"][0]["status"] == "completed"

        await wait_until(output, timeout=10, message="the page's run never showed its output")
        _, _, detail = await page.get(path)
        assert detail["output"] == "[x]"
        assert [(n["node_id"], n["status"], n["output"]) for n in detail["nodes"]] == [
            ("only", "completed", "[x]")
        ]


async def test_a_run_for_a_network_nobody_serves_fails_with_a_type(nats_url: str) -> None:
    async with ui_over(nats_url, net()) as (page, _):
        status, _, accepted = await page.request(
            "POST",
            "/api/run",
            body=json.dumps({"network": "nobody-serves-this", "input": "x"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 202

        async def failed() -> object:
            status, _, detail = await page.get(f"/api/executions/{accepted['execution_id']}")
            return status == 200 and detail["status"] == "failed" and detail["error"]

        await wait_until(failed, timeout=10, message="the run did not fail")
        _, _, detail = await page.get(f"/api/executions/{accepted['execution_id']}")
        assert detail["error"]["type"] == "no_responders"


async def test_the_stream_starts_with_a_snapshot_of_networks_and_executions(
    nats_url: str,
) -> None:
    network = net()
    async with ui_over(nats_url, network) as (page, client):
        result = await client.execute(network.name, "seen")

        async def listed() -> object:
            _, _, state = await page.get("/api/state")
            names = {n["name"] for n in state["networks"]}
            rows = {row["execution_id"] for row in state["executions"]}
            return network.name in names and result.execution_id in rows

        await wait_until(listed, timeout=10, message="network or execution never listed")
        name, snapshot = await page.first_event("/api/stream")
        assert name == "snapshot"
        assert snapshot["status"]["connected"] is True
        row = next(r for r in snapshot["executions"] if r["execution_id"] == result.execution_id)
        assert (row["network"], row["status"]) == (network.name, "completed")
        shown = next(n for n in snapshot["networks"] if n["name"] == network.name)
        assert shown["coordinators"] == 1
        assert [[n["node_id"] for n in layer["nodes"]] for layer in shown["layers"]] == [["only"]]


async def test_a_durable_execution_shows_its_output_from_its_record(nats_url: str) -> None:
    network = net(durable=True)
    async with ui_over(nats_url, network) as (page, client):
        result = await client.execute(network.name, "kept")
        assert result.output == "[kept]"
        path = f"/api/executions/{result.execution_id}"

        async def shown() -> object:
            status, _, detail = await page.get(path)
            return status == 200 and detail["status"] == "completed" and detail["output_known"]

        await wait_until(shown, timeout=10, message="the durable output never showed")
        _, _, detail = await page.get(path)
        assert detail["output"] == "[kept]"


async def test_executions_from_before_the_ui_started_come_from_the_event_stream(
    nats_url: str,
) -> None:
    network = net()
    async with ui_over(nats_url, network) as (_, client):
        earlier = await client.execute(network.name, "before")
        path = f"/api/executions/{earlier.execution_id}"
        async with ui_server(nats_url) as late_page:

            async def listed() -> object:
                _, _, state = await late_page.get("/api/state")
                return any(r["execution_id"] == earlier.execution_id for r in state["executions"])

            await wait_until(listed, timeout=10, message="the earlier execution was not replayed")
            status, _, detail = await late_page.get(path)
    assert status == 200
    assert (detail["status"], detail["network"]) == ("completed", network.name)
    assert [n["status"] for n in detail["nodes"]] == ["completed"]
    assert detail["output_known"] is False  # events carry no outputs; this one was not durable
