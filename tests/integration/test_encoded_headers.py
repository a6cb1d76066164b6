"""Pre-encoded headers: the bus writes what nats-py would, with the same refusals.

An execution's events and unsampled node calls repeat one set of headers; the bus
encodes them once (`EncodedHeaders`) and writes the protocol line itself. A real
nats-server and a plain nats-py subscriber must not be able to tell the difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from nats import errors as nats_errors

from nons.core.errors import PayloadTooLargeError
from nons.runtime.bus import Bus, EncodedHeaders
from nons.runtime.connection import ConnectionSettings, connect_nats

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

HEADERS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "Nons-Execution-Id": "e1",
    "Nons-Liveness": " 0.5 ",
    "X-Broken": "line\r\nbreak",
}


async def test_encoded_and_dict_headers_arrive_the_same(nc: Client) -> None:
    bus = Bus(nc)
    subscription = await nc.subscribe("encoded.same")
    await nc.flush()
    encoded = EncodedHeaders(HEADERS)
    await bus.publish("encoded.same", b"payload", HEADERS, reply="reply.to")
    await bus.publish("encoded.same", b"payload", encoded, reply="reply.to")
    await bus.publish("encoded.same", b"", HEADERS)
    await bus.publish("encoded.same", b"", encoded)
    plain, fast, plain_empty, fast_empty = [
        await subscription.next_msg(timeout=5) for _ in range(4)
    ]
    await subscription.unsubscribe()
    assert (fast.data, fast.reply, fast.headers) == (plain.data, plain.reply, plain.headers)
    assert fast.headers == {
        "traceparent": HEADERS["traceparent"],
        "Nons-Execution-Id": "e1",
        "Nons-Liveness": "0.5",
        "X-Broken": "line  break",
    }
    assert (fast_empty.data, fast_empty.reply, fast_empty.headers) == (
        plain_empty.data,
        plain_empty.reply,
        plain_empty.headers,
    )
    assert fast_empty.reply == ""


async def test_a_request_with_encoded_headers_gets_its_reply(nc: Client) -> None:
    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data + (msg.headers or {}).get("Nons-Execution-Id", "").encode())

    subscription = await nc.subscribe("encoded.echo", cb=echo)
    bus = Bus(nc)
    await bus.start()
    try:
        reply = await bus.request("encoded.echo", b"id:", EncodedHeaders(HEADERS), 5.0)
    finally:
        await bus.close()
        await subscription.unsubscribe()
    assert reply.data == b"id:e1"


async def test_encoded_headers_are_refused_like_plain_ones(nats_url: str) -> None:
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="encoded-refusals"))
    bus = Bus(nc)
    with pytest.raises(PayloadTooLargeError):
        await bus.publish("encoded.big", b"x" * bus.limit, EncodedHeaders(HEADERS))
    await nc.close()
    with pytest.raises(nats_errors.ConnectionClosedError):
        await bus.publish("encoded.closed", b"x", EncodedHeaders(HEADERS))


def test_a_header_name_nats_refuses_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="invalid NATS header name"):
        EncodedHeaders({"bad name": "v"})
