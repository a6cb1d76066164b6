"""The coordinator and actors in-process over a real nats-server, driven like any NATS client."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import nats.errors
import pytest

from nons import LayerConfig, Node, NoN, operator
from nons.actors.host import ActorHost
from nons.cli._discovery import discover
from nons.client import Client
from nons.coordinator.service import Coordinator, CoordinatorSettings
from nons.core.errors import SpecMismatchError
from nons.core.types import ErrorPolicy, ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.payloads import REF_KEY
from nons.runtime.server import EmbeddedServer
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

    from nons.observability.events import Event


@operator(
    input_schema={
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "delay": {"type": "number", "minimum": 0, "maximum": 5},
        },
        "required": ["text"],
    },
    output_schema={"type": "string"},
    description="Echo text after a delay that ignores cancellation (a stuck actor).",
)
async def rt_echo(text: str, delay: float = 0.0) -> str:
    """Echo the text, late on purpose when asked."""
    if delay:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(delay)
    return text


@operator(description="Repeat text `times` times.")
async def rt_inflate(text: str, times: int = 1) -> str:
    """Make an output as large as a test needs."""
    return text * times


@operator(description="Count the items of a list (a parallel layer's outputs).")
async def rt_count(items: list[Any]) -> int:
    """How many outputs the previous layer had."""
    return len(items)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@contextlib.asynccontextmanager
async def serving(
    url: str,
    coordinated: list[NoN],
    hosted: list[NoN] | None = None,
    settings: CoordinatorSettings | None = None,
) -> AsyncIterator[tuple[Coordinator, ActorHost]]:
    """A coordinator for `coordinated` and actors for `hosted` on a connection of their own."""
    nc = await connect_nats(ConnectionSettings(url=url, name="nons-test-serve"))
    try:
        async with (
            ActorHost(nc, hosted if hosted is not None else coordinated) as actors,
            Coordinator(nc, coordinated, settings) as coordinator,
        ):
            yield coordinator, actors
    finally:
        await nc.close()


async def request(nc: NatsClient, network: str, payload: bytes) -> Any:
    """A raw request; asks once more after "no responders" (nats-server may answer it
    for an instant after a coordinator subscribed on another connection)."""
    try:
        msg = await nc.request(f"nons.exec.{network}", payload, timeout=10)
    except nats.errors.NoRespondersError:
        await anyio.sleep(0.05)
        msg = await nc.request(f"nons.exec.{network}", payload, timeout=10)
    return json.loads(msg.data)


REPLY_FIELDS = {"execution_id", "network", "status", "output", "usage", "cost_usd", "duration_ms"}


async def test_raw_requests_text_request_object_and_json_value(
    nats_url: str, nc: NatsClient
) -> None:
    name = unique("rt-raw")
    net = NoN.from_operators([Node(rt_echo)], name=name)
    async with serving(nats_url, [net]):
        text = await request(nc, name, b"hello there")
        assert REPLY_FIELDS <= set(text)
        assert (text["status"], text["output"], text["network"]) == (
            "completed",
            "hello there",
            name,
        )
        assert "error" not in text or text["error"] is None
        assert isinstance(text["usage"], dict)
        assert "total_tokens" in text["usage"]

        wrapped = await request(
            nc, name, json.dumps({"input": "wrapped", "execution_id": "my-exec-1"}).encode()
        )
        assert (wrapped["status"], wrapped["output"]) == ("completed", "wrapped")
        assert wrapped["execution_id"] == "my-exec-1"

        value = await request(nc, name, json.dumps({"text": "as kwargs"}).encode())
        assert (value["status"], value["output"]) == ("completed", "as kwargs")


async def test_events_in_order_with_one_trace_id(nats_url: str, nc: NatsClient) -> None:
    name = unique("rt-events")
    net = NoN.from_operators([Node(rt_echo), [Node(rt_echo), Node(rt_inflate)]], name=name)
    received: list[tuple[dict[str, Any], dict[str, str]]] = []

    async def on_event(msg: Msg) -> None:
        received.append((json.loads(msg.data), dict(msg.headers or {})))

    subscription = await nc.subscribe(f"nons.events.{name}.>", cb=on_event)
    await nc.flush()
    try:
        async with serving(nats_url, [net]):
            reply = await request(nc, name, b"abc")
            await wait_until(
                lambda: any(e["type"] == "execution.completed" for e, _ in received), timeout=5
            )
    finally:
        await subscription.unsubscribe()
    types = [event["type"] for event, _ in received]
    assert types[0] == "execution.started"
    assert types[-1] == "execution.completed"
    assert types.count("layer.started") == 2
    assert types.count("node.completed") == 3
    first_layer_end = types.index("layer.completed")
    assert first_layer_end < types.index("layer.started", 2)
    assert all(event["execution_id"] == reply["execution_id"] for event, _ in received)
    assert {event["trace_id"] for event, _ in received} == {reply["trace_id"]}
    assert len(reply["trace_id"]) == 32
    assert all(reply["trace_id"] in headers.get("traceparent", "") for _, headers in received)
    stamps = [event["ts"] for event, _ in received]
    assert stamps == sorted(stamps)


async def test_unknown_network_has_no_responders(nc: NatsClient) -> None:
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"nons.exec.{unique('rt-nobody')}", b"x", timeout=5)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b'{"input": 1, "timeout_s": "x"}', "timeout_s"),
        (b'{"input": 1, "bogus": 2}', "bogus"),
        (b"\xff\xfe not utf-8", "UTF-8"),
        (b"{bad json", "malformed"),
        (b'{"input": 1, "execution_id": "has spaces"}', "execution_id"),
    ],
)
async def test_malformed_requests_fail_typed_and_serving_goes_on(
    nats_url: str, nc: NatsClient, payload: bytes, fragment: str
) -> None:
    name = unique("rt-bad")
    net = NoN.from_operators([Node(rt_echo)], name=name)
    async with serving(nats_url, [net]):
        reply = await request(nc, name, payload)
        assert reply["status"] == "failed"
        assert reply["error"]["type"] == "invalid_request"
        assert fragment in reply["error"]["message"]
        after = await request(nc, name, b"still serving")
        assert (after["status"], after["output"]) == ("completed", "still serving")


async def test_schema_violation_names_field_and_rule(nats_url: str, nc: NatsClient) -> None:
    name = unique("rt-schema")
    net = NoN.from_operators([Node(rt_echo)], name=name)
    async with serving(nats_url, [net]):
        reply = await request(nc, name, json.dumps({"input": {"text": "x", "delay": 9}}).encode())
        assert reply["status"] == "failed"
        error = reply["error"]
        assert error["type"] == "validation_error"
        assert error["details"]["field"] == "$.delay"
        assert error["details"]["rule"] == "maximum"
        assert "delay" in error["message"]
        empty = await request(nc, name, json.dumps({"input": {"text": ""}}).encode())
        assert empty["error"]["details"]["rule"] == "minLength"


async def test_payload_over_the_server_limit_fails_typed() -> None:
    """Without JetStream (no object store to send it by reference)."""
    limit = 64 * 1024
    async with EmbeddedServer(max_payload=limit, jetstream=False) as server:
        name = unique("rt-big")
        grow = NoN.from_operators([Node(rt_inflate, times=3)], name=name)
        fan_name = unique("rt-fan")
        fan_out = NoN.from_operators(
            [Node(rt_inflate) * 2, Node(rt_count)],
            name=fan_name,
            layer_config=LayerConfig(error_policy=ErrorPolicy.FAIL_FAST),
        )
        client_nc = await connect_nats(ConnectionSettings(url=server.url))
        try:
            no_recording = CoordinatorSettings(record_events=False)
            async with serving(server.url, [grow, fan_out], settings=no_recording):
                text = b"x" * (30 * 1024)
                too_big_output = await request(client_nc, name, text)
                assert too_big_output["status"] == "failed"
                assert too_big_output["error"]["type"] == "payload_too_large"
                assert too_big_output["output"] is None

                # Each of the two outputs fits; the next layer's call carrying both does not.
                too_big_fan_out = await request(client_nc, fan_name, b"y" * (32 * 1024))
                assert too_big_fan_out["status"] == "failed"
                assert too_big_fan_out["error"]["type"] == "payload_too_large"
                assert too_big_fan_out["error"]["details"]["limit"] == limit

                small = await request(client_nc, fan_name, b"ok")
                assert (small["status"], small["output"]) == ("completed", 2)
                assert client_nc.is_connected
        finally:
            await client_nc.close()


async def test_payload_over_the_server_limit_goes_by_reference() -> None:
    """With JetStream: the same outputs and fan-out travel through the object store."""
    async with EmbeddedServer(max_payload=64 * 1024) as server:
        name = unique("rt-big")
        grow = NoN.from_operators([Node(rt_inflate, times=3)], name=name)
        fan_name = unique("rt-fan")
        fan_out = NoN.from_operators([Node(rt_inflate) * 2, Node(rt_count)], name=fan_name)
        client_nc = await connect_nats(ConnectionSettings(url=server.url))
        try:
            async with serving(server.url, [grow, fan_out]):
                grown = await request(client_nc, name, b"x" * (30 * 1024))
                fanned = await request(client_nc, fan_name, b"y" * (32 * 1024))
        finally:
            await client_nc.close()
    assert grown["status"] == "completed", grown.get("error")
    assert grown["output"][REF_KEY]["size"] == 90 * 1024 + 2  # the JSON string's quotes
    assert (fanned["status"], fanned["output"]) == ("completed", 2)


async def test_late_reply_is_dropped_counted_and_never_mixed(nats_url: str, nc: NatsClient) -> None:
    name = unique("rt-late")
    config = LayerConfig(node_timeout_seconds=0.3, max_retries=0, timeout_seconds=5)
    net = NoN.from_operators([Node(rt_echo)], name=name, layer_config=config)
    async with serving(nats_url, [net]) as (coordinator, _):
        slow = await request(
            nc, name, json.dumps({"input": {"text": "slow", "delay": 1.0}}).encode()
        )
        assert slow["status"] == "failed"
        assert slow["error"]["type"] == "node_timeout"
        outputs = []
        for index in range(8):  # these run while the late reply comes back
            reply = await request(
                nc, name, json.dumps({"input": {"text": f"fast-{index}"}}).encode()
            )
            outputs.append(reply["output"])
        await wait_until(lambda: coordinator.bus.late_replies >= 1, timeout=5)
    assert outputs == [f"fast-{index}" for index in range(8)]
    assert coordinator.bus.late_replies == 1


async def test_subscribe_callbacks_fire_and_a_raising_one_is_harmless(
    nats_url: str, nc: NatsClient
) -> None:
    name = unique("rt-callbacks")
    net = NoN.from_operators([Node(rt_echo), Node(rt_inflate, times=2)], name=name)
    layers: list[int] = []
    everything: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    async def on_layer(event: Event) -> None:
        layers.append(getattr(event, "layer_index", -1))

    net.subscribe("layer.completed", on_layer)
    net.subscribe("layer.completed", broken)
    net.subscribe("*", lambda event: everything.append(event.type))
    async with serving(nats_url, [net]):
        result = await net.forward("ab", client=Client(nc))
    assert result.output == "abab"
    assert layers == [0, 1]
    assert everything[0] == "execution.started"
    assert everything[-1] == "execution.completed"


async def test_spec_mismatch_between_coordinator_and_actor(nats_url: str, nc: NatsClient) -> None:
    name = unique("rt-mismatch")
    coordinated = NoN.from_operators([Node(rt_echo, node_id="n1")], name=name)
    hosted = NoN.from_operators(
        [Node(rt_echo, additional_prompt_context="another definition", node_id="n1")], name=name
    )
    assert coordinated.fingerprint != hosted.fingerprint
    async with serving(nats_url, [coordinated], [hosted]):
        reply = await request(nc, name, b"x")
        assert reply["status"] == "failed"
        assert reply["error"]["type"] == "spec_mismatch"
        assert coordinated.fingerprint in reply["error"]["message"]
        with pytest.raises(SpecMismatchError, match="two different definitions"):
            await hosted.forward("x", client=Client(nc))


async def test_service_discovery_lists_coordinator_and_actor_endpoints(
    nats_url: str, nc: NatsClient
) -> None:
    name = unique("rt-srv")
    net = NoN.from_operators([Node(rt_echo), Node(rt_inflate)], name=name)
    async with serving(nats_url, [net]):
        await request(nc, name, b"counted")
        services = await discover(nc, 0.5)
    subjects = {
        (service["name"], endpoint["subject"]): endpoint
        for service in services
        for endpoint in service["endpoints"]
    }
    exec_endpoint = subjects[("nons-coordinator", f"nons.exec.{name}")]
    assert exec_endpoint["metadata"]["fingerprint"] == net.fingerprint
    assert exec_endpoint["num_requests"] == 1
    for node_id in ("l0-rt_echo", "l1-rt_inflate"):
        endpoint = subjects[("nons-actor", f"nons.node.{name}.{node_id}")]
        assert endpoint["queue_group"] == f"nons.node.{name}.{node_id}"
        assert endpoint["num_requests"] == 1


async def test_sub_network_runs_through_its_own_exec_subject(nats_url: str, nc: NatsClient) -> None:
    child_name = unique("rt-child")
    child = NoN.from_operators([Node(rt_inflate, times=2)], name=child_name)
    parent = NoN.from_operators([child, Node(rt_inflate, times=3)], name=unique("rt-parent"))
    child_events: list[str] = []

    async def on_child(msg: Msg) -> None:
        child_events.append(json.loads(msg.data)["type"])

    subscription = await nc.subscribe(f"nons.events.{child_name}.>", cb=on_child)
    await nc.flush()
    try:
        async with serving(nats_url, [parent]):
            result = await parent.forward("ab", client=Client(nc))
            await wait_until(lambda: "execution.completed" in child_events, timeout=5)
    finally:
        await subscription.unsubscribe()
    assert result.output == "ab" * 6
    assert result.layer_results[0].nodes[0].operator == "network"
    assert child_events[0] == "execution.started"


async def test_a_result_passed_as_input_is_unwrapped(nats_url: str, nc: NatsClient) -> None:
    first = NoN.from_operators([Node(rt_inflate, times=2)], name=unique("rt-first"))
    second = NoN.from_operators([Node(rt_echo)], name=unique("rt-second"))
    async with serving(nats_url, [first, second]):
        client = Client(nc)
        result = await first.forward("xy", client=client)
        again = await second.forward(result, client=client)
        by_name = await client.execute(second.name, result)
    assert result.output == "xyxy"
    assert again.output == "xyxy"
    assert by_name.output == "xyxy"
