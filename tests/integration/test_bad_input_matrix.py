"""Bad input, systematically: every malformed message to a coordinator or an actor gets a
typed error (or is dropped and logged), and a normal execution completes right after.

The server runs with a small `max_payload` so that "huge" payloads (just under the
limit, so the server accepts them) are cheap, and without JetStream, so there is no
object store to send them by reference (`tests/integration/test_durable.py` covers
that): the coordinator's fan-out and the actor's reply would not fit and must become
`payload_too_large`, never a closed connection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import nats.errors
import pytest

from nons import Node, NoN, operator
from nons.actors.host import ActorHost
from nons.coordinator.service import Coordinator, CoordinatorSettings
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.messages import EXECUTION_ID_HEADER, FINGERPRINT_HEADER, MAX_NESTING_DEPTH
from nons.runtime.server import EmbeddedServer
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient

LIMIT = 64 * 1024
"""The test server's max_payload."""

WRONG_FINGERPRINT = "0" * 16


@operator(
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 1}, "times": {"type": "integer"}},
        "required": ["text"],
    },
    output_schema={"type": "string"},
    description="Repeat text `times` times (an output as large as a test needs).",
)
async def bim_repeat(text: str, times: int = 1) -> str:
    """Make an output `times` as long as the input."""
    return text * times


NETWORK = NoN.from_operators(
    [Node(bim_repeat, node_id="grow", times=2), Node(bim_repeat, node_id="echo")],
    name=f"bim-{uuid.uuid4().hex[:8]}",
)
EXEC = f"nons.exec.{NETWORK.name}"
NODE = f"nons.node.{NETWORK.name}.grow"


@dataclass(frozen=True)
class Case:
    """One bad message: where it goes, what it carries, the error type it must get."""

    subject: str
    payload: bytes
    expected: str
    headers: dict[str, str] | None = field(default=None)


def node_call(**changes: Any) -> dict[str, Any]:
    """A valid call of the `grow` node, with `changes` applied."""
    call: dict[str, Any] = {
        "network": NETWORK.name,
        "node_id": "grow",
        "fingerprint": NETWORK.fingerprint,
        "execution_id": "bad-input",
        "layer_index": 0,
        "attempt": 1,
        "input": "ab",
        "timeout_s": 5.0,
    }
    call.update(changes)
    return call


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def _huge_exec_request() -> bytes:
    # Just under the limit: the server takes it; the node call carrying it cannot fit.
    frame = as_json({"input": ""})
    return as_json({"input": "x" * (LIMIT - len(frame) - 64)})


def _huge_node_call() -> bytes:
    # Fits as a call; the `grow` node doubles it, so the reply cannot fit.
    frame = as_json(node_call(input=""))
    return as_json(node_call(input="y" * (LIMIT - len(frame) - 64)))


def _deep(levels: int) -> bytes:
    """JSON of an array nested `levels` deep (as text: no encoder recurses that far)."""
    return b"[" * levels + b"]" * levels


def _with_input(document: dict[str, Any], nested: bytes) -> bytes:
    """`document` as JSON with its `input` replaced by the raw JSON `nested`."""
    return as_json({**document, "input": "@@"}).replace(b'"@@"', nested)


_HEADERS = {EXECUTION_ID_HEADER: "bad-input"}

CASES: dict[str, Case] = {
    # The coordinator, `nons.exec.<network>`.
    "exec-malformed-json": Case(EXEC, b'{"input": "x", ', "invalid_request"),
    "exec-empty": Case(EXEC, b"", "invalid_request"),
    "exec-wrong-type-timeout": Case(EXEC, b'{"input": 1, "timeout_s": "soon"}', "invalid_request"),
    "exec-wrong-type-budget": Case(EXEC, b'{"input": 1, "budget_usd": -1}', "invalid_request"),
    "exec-wrong-type-metadata": Case(EXEC, b'{"input": 1, "metadata": [1]}', "invalid_request"),
    "exec-bad-execution-id": Case(EXEC, b'{"input": 1, "execution_id": "a.b>"}', "invalid_request"),
    "exec-unknown-field": Case(EXEC, b'{"input": "x", "priority": 9}', "invalid_request"),
    "exec-invalid-utf8": Case(EXEC, b'{"input": "\xff\xfe"}', "invalid_request"),
    "exec-invalid-utf8-text": Case(EXEC, b"caf\xe9 au lait", "invalid_request"),
    "exec-schema-violation": Case(EXEC, as_json({"input": {"text": ""}}), "validation_error"),
    "exec-wrong-input-type": Case(EXEC, as_json({"input": {"text": 5}}), "validation_error"),
    "exec-huge": Case(EXEC, _huge_exec_request(), "payload_too_large"),
    # 10,000 levels: past the interpreter's recursion limit in any recursive decoder.
    "exec-deep-nesting": Case(EXEC, _with_input({}, _deep(10_000)), "invalid_request"),
    "exec-deep-nesting-bare": Case(EXEC, _deep(10_000), "invalid_request"),
    "exec-nesting-one-past-the-cap": Case(
        EXEC, _with_input({}, _deep(MAX_NESTING_DEPTH + 1)), "invalid_request"
    ),
    "exec-wrong-fingerprint": Case(
        EXEC, b"hello", "spec_mismatch", {FINGERPRINT_HEADER: WRONG_FINGERPRINT}
    ),
    # An actor, `nons.node.<network>.<node_id>`, called directly.
    "node-malformed-json": Case(NODE, b'{"network": ', "invalid_request", _HEADERS),
    "node-empty": Case(NODE, b"", "invalid_request", _HEADERS),
    "node-not-an-object": Case(NODE, b'["grow"]', "invalid_request", _HEADERS),
    "node-plain-text": Case(NODE, b"just text", "invalid_request", _HEADERS),
    "node-missing-fields": Case(NODE, as_json({"input": "ab"}), "invalid_request", _HEADERS),
    "node-wrong-type": Case(
        NODE, as_json(node_call(layer_index="first")), "invalid_request", _HEADERS
    ),
    "node-invalid-utf8": Case(
        NODE,
        as_json(node_call(execution_id="@")).replace(b"@", b"\xff\xfe"),
        "invalid_request",
        _HEADERS,
    ),
    "node-invalid-utf8-bytes": Case(NODE, b"\xff\xfe\xfd", "invalid_request", _HEADERS),
    "node-wrong-fingerprint": Case(
        NODE, as_json(node_call(fingerprint=WRONG_FINGERPRINT)), "spec_mismatch", _HEADERS
    ),
    "node-wrong-node": Case(NODE, as_json(node_call(node_id="echo")), "invalid_request", _HEADERS),
    "node-schema-violation": Case(
        NODE, as_json(node_call(input={"text": ""})), "validation_error", _HEADERS
    ),
    "node-huge-reply": Case(NODE, _huge_node_call(), "payload_too_large", _HEADERS),
    "node-deep-nesting": Case(
        NODE, _with_input(node_call(), _deep(10_000)), "invalid_request", _HEADERS
    ),
    "node-no-headers": Case(
        NODE, as_json(node_call(fingerprint=WRONG_FINGERPRINT)), "spec_mismatch", None
    ),
}


@pytest.fixture(scope="module")
def small_server() -> Iterator[EmbeddedServer]:
    """A server of this module's own, with a 64 KiB max_payload and no JetStream."""
    server = EmbeddedServer(max_payload=LIMIT, jetstream=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@contextlib.asynccontextmanager
async def serving(url: str) -> AsyncIterator[tuple[NatsClient, Coordinator, ActorHost]]:
    """A coordinator and an actor host on one connection, and a client on another."""
    server_nc = await connect_nats(ConnectionSettings(url=url, name="bim-serve"))
    client = await connect_nats(ConnectionSettings(url=url, name="bim-client"))
    try:
        async with (
            ActorHost(server_nc, [NETWORK]) as actors,
            Coordinator(
                server_nc, [NETWORK], CoordinatorSettings(record_events=False)
            ) as coordinator,
        ):
            yield client, coordinator, actors
            assert server_nc.is_connected, "a bad message closed the serving connection"
            assert client.is_connected, "a bad message closed the client's connection"
    finally:
        await client.close()
        await server_nc.close()


async def request(
    nc: NatsClient, subject: str, payload: bytes, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A raw request; asks once more after the instant a fresh subscription is unknown."""
    try:
        msg = await nc.request(subject, payload, timeout=10, headers=headers)
    except nats.errors.NoRespondersError:
        await anyio.sleep(0.05)
        msg = await nc.request(subject, payload, timeout=10, headers=headers)
    reply: dict[str, Any] = json.loads(msg.data)
    if subject.startswith("nons.node."):
        reply.setdefault("status", "ok")  # a node result omits its defaults
    return reply


async def assert_still_serving(nc: NatsClient) -> None:
    """A normal execution completes, and a normal node call succeeds."""
    reply = await request(nc, EXEC, b"ab")
    assert (reply["status"], reply["output"]) == ("completed", "abab"), reply
    node = await request(nc, NODE, as_json(node_call()), _HEADERS)
    assert (node["status"], node["output"]) == ("ok", "abab"), node


@pytest.mark.parametrize("case_id", list(CASES))
async def test_bad_message_gets_a_typed_error(small_server: EmbeddedServer, case_id: str) -> None:
    case = CASES[case_id]
    assert len(case.payload) < LIMIT
    async with serving(small_server.url) as (nc, _, _):
        reply = await request(nc, case.subject, case.payload, case.headers)
        assert reply["status"] == "failed", reply
        assert reply["error"]["type"] == case.expected, reply["error"]
        assert len(reply["error"]["message"]) <= 2100
        if case_id.startswith(("exec-deep", "node-deep", "exec-nesting")):
            assert reply["error"]["details"] == {"max_depth": MAX_NESTING_DEPTH}, reply
        if case.subject == EXEC:
            assert reply["output"] is None
            assert reply["network"] == NETWORK.name
        await assert_still_serving(nc)


async def test_unknown_fields_in_a_node_call_are_ignored(small_server: EmbeddedServer) -> None:
    """Node calls are inter-process wire messages: a newer coordinator may add fields,
    so an actor ignores fields it does not know (unlike a client's exec request)."""
    async with serving(small_server.url) as (nc, _, _):
        reply = await request(nc, NODE, as_json(node_call(deadline_ms=5, hint="x")), _HEADERS)
        assert (reply["status"], reply["output"]) == ("ok", "abab")
        await assert_still_serving(nc)


async def test_node_call_without_headers_is_served(small_server: EmbeddedServer) -> None:
    """Headers carry trace context, not the call: a bare `nats req` works (with a new trace)."""
    async with serving(small_server.url) as (nc, _, _):
        reply = await request(nc, NODE, as_json(node_call()), None)
        assert (reply["status"], reply["output"]) == ("ok", "abab")
        await assert_still_serving(nc)


@pytest.mark.parametrize(
    ("subject", "payload", "logger_name", "fragment"),
    [
        (EXEC, b"fire and forget", "nons.coordinator", "had no reply subject"),
        (EXEC, b"{broken", "nons.coordinator", "had no reply subject"),
        (NODE, as_json(node_call()), "nons.actor", "had no reply subject"),
        (NODE, b"{broken", "nons.actor", "had no reply subject"),
    ],
    ids=["exec-valid", "exec-malformed", "node-valid", "node-malformed"],
)
async def test_publish_without_reply_subject_is_dropped_and_logged(
    small_server: EmbeddedServer,
    caplog: pytest.LogCaptureFixture,
    subject: str,
    payload: bytes,
    logger_name: str,
    fragment: str,
) -> None:
    caplog.set_level(logging.INFO, logger=logger_name)

    def logged() -> bool:
        return any(
            record.name == logger_name and fragment in record.getMessage()
            for record in caplog.records
        )

    async with serving(small_server.url) as (nc, coordinator, actors):
        await assert_still_serving(nc)
        await nc.publish(subject, payload, headers=_HEADERS)
        await nc.flush()
        await wait_until(logged, timeout=5, message=f"no {fragment!r} log on {logger_name}")
        await assert_still_serving(nc)
        assert coordinator.in_flight == 0
        assert actors.in_flight == 0
        if subject == NODE:
            assert sum(slot.dropped for slot in actors.slots.values()) == 1
        else:
            await wait_until(lambda: coordinator.unanswerable == 1, timeout=5)


async def test_every_case_in_a_row_on_one_coordinator(small_server: EmbeddedServer) -> None:
    """The whole matrix against one pair of coordinator and actor: nothing accumulates."""
    async with serving(small_server.url) as (nc, coordinator, actors):
        for case_id, case in CASES.items():
            reply = await request(nc, case.subject, case.payload, case.headers)
            assert reply["error"]["type"] == case.expected, (case_id, reply["error"])
        await assert_still_serving(nc)
        await wait_until(lambda: coordinator.in_flight == 0 and actors.in_flight == 0, timeout=5)
