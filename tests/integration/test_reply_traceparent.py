"""The reply to `nons.exec.<network>` carries the execution's W3C trace context.

A plain NATS client that reads the reply's headers can continue the execution's trace
(issue 16, item 3): `traceparent` names the execution's trace and the coordinator's
`process` span, and `tracestate` travels when the caller sent one.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from typing import TYPE_CHECKING

import pytest

from nons import Node, NoN
from nons.actors.host import ActorHost
from nons.coordinator.service import Coordinator
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from tests.support.spans import capturing_provider

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient
    from opentelemetry.sdk.trace import TracerProvider

TRACEPARENT = re.compile(
    r"00-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})"
)
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@contextlib.asynccontextmanager
async def serving(
    url: str, network: NoN, provider: TracerProvider | None = None
) -> AsyncIterator[None]:
    serve_nc = await connect_nats(ConnectionSettings(url=url, name="nons-test-reply-tp"))
    try:
        async with (
            ActorHost(serve_nc, [network], tracer_provider=provider),
            Coordinator(serve_nc, [network], tracer_provider=provider),
        ):
            yield
    finally:
        await serve_nc.close()


def _network() -> NoN:
    return NoN.from_operators([Node("transform")], name=f"reply-tp-{uuid.uuid4().hex[:8]}")


async def test_reply_traceparent_names_the_execution_trace(nats_url: str, nc: NatsClient) -> None:
    network = _network()
    async with serving(nats_url, network):
        msg = await nc.request(f"nons.exec.{network.name}", b"hello", timeout=10)
    reply = json.loads(msg.data)
    assert reply["status"] == "completed"
    headers = msg.headers or {}
    assert headers["Nons-Execution-Id"] == reply["execution_id"]
    match = TRACEPARENT.fullmatch(headers.get("traceparent", ""))
    assert match, f"no valid traceparent on the reply: {headers}"
    assert match["trace"] == reply["trace_id"]


async def test_reply_continues_the_callers_trace_with_the_coordinator_span(
    nats_url: str, nc: NatsClient
) -> None:
    provider, exporter = capturing_provider("coordinator")
    network = _network()
    request_headers = {
        "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        "tracestate": "vendor=opaque",
    }
    async with serving(nats_url, network, provider):
        msg = await nc.request(
            f"nons.exec.{network.name}", b"hello", timeout=10, headers=request_headers
        )
    provider.force_flush()
    reply = json.loads(msg.data)
    headers = msg.headers or {}
    match = TRACEPARENT.fullmatch(headers.get("traceparent", ""))
    assert match, f"no valid traceparent on the reply: {headers}"
    assert match["trace"] == reply["trace_id"] == CALLER_TRACE
    assert match["flags"] == "01"
    assert headers.get("tracestate") == "vendor=opaque"
    (process,) = [
        s for s in exporter.get_finished_spans() if s.name.startswith("process nons.exec")
    ]
    assert match["span"] == format(process.context.span_id, "016x") != CALLER_SPAN
