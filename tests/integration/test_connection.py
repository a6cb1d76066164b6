from __future__ import annotations

import logging
import socket
import time

import pytest
from nats.aio.client import Client

from nons.core.errors import PayloadTooLargeError
from nons.runtime.connection import (
    ConnectionSettings,
    NatsUnavailableError,
    check_message_size,
    connect_nats,
    max_payload,
    message_size,
)
from nons.runtime.server import EmbeddedServer
from tests.support.wait import wait_until


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connect_to_closed_port_fails_fast_with_clear_error() -> None:
    url = f"nats://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(NatsUnavailableError) as info:
        await connect_nats(ConnectionSettings(url=url))
    elapsed = time.monotonic() - started

    assert elapsed < 5
    error = info.value
    assert isinstance(error, ConnectionError)
    assert error.type == "nats_unavailable"
    assert error.retryable
    assert f"no NATS server answers at {url}" in str(error)
    assert "nons server" in str(error)
    assert "NONS_NATS_URL" in str(error)
    assert error.details["attempts"] == 3
    assert isinstance(error.__cause__, OSError)


async def test_connect_error_never_shows_the_password() -> None:
    url = f"nats://alice:s3cret@127.0.0.1:{_closed_port()}"
    with pytest.raises(NatsUnavailableError) as info:
        await connect_nats(ConnectionSettings(url=url, max_connect_attempts=1))
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(info.value.details)
    assert info.value.details["attempts"] == 1


async def test_connected_client_reconnects_forever(nats_url: str) -> None:
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="nons-test-settings"))
    try:
        assert nc.is_connected
        assert nc.options["max_reconnect_attempts"] == -1
        assert max_payload(nc) == 1024 * 1024
    finally:
        await nc.close()


async def test_reconnect_is_logged(
    fresh_nats_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nons.runtime")
    settings = ConnectionSettings(url=fresh_nats_server.url, reconnect_time_wait_s=0.05)
    nc = await connect_nats(settings)
    try:
        fresh_nats_server.kill()
        await wait_until(lambda: not nc.is_connected, timeout=5, message="no disconnect seen")
        await fresh_nats_server.arestart()
        await wait_until(lambda: nc.is_connected, timeout=10, message="no reconnect")
        messages = [record.getMessage() for record in caplog.records]
        assert any(m.startswith("disconnected from NATS at") for m in messages)
        await wait_until(
            lambda: any(r.getMessage().startswith("reconnected to NATS") for r in caplog.records),
            timeout=5,
            message="reconnect not logged",
        )
    finally:
        await nc.close()


async def test_message_size_matches_the_server_limit_exactly() -> None:
    limit = 2048
    headers = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "Nons-Execution-Id": "x"}
    overhead = message_size(b"", headers)
    async with EmbeddedServer(max_payload=limit) as server:
        nc = await connect_nats(ConnectionSettings(url=server.url))
        try:
            assert max_payload(nc) == limit
            sub = await nc.subscribe("size.exact")
            at_limit = b"x" * (limit - overhead)
            assert check_message_size("size.exact", at_limit, headers, limit) == limit
            await nc.publish("size.exact", at_limit, headers=headers)
            received = await sub.next_msg(timeout=2)
            assert received.data == at_limit

            over = at_limit + b"x"
            with pytest.raises(PayloadTooLargeError) as info:
                check_message_size("size.exact", over, headers, max_payload(nc))
            assert info.value.details == {
                "subject": "size.exact",
                "size": limit + 1,
                "limit": limit,
            }
        finally:
            await nc.close()


async def test_headers_over_the_limit_make_the_server_drop_the_connection() -> None:
    """The pitfall check_message_size exists for: nats-py lets this message through."""
    limit = 1024
    headers = {"Padding": "p" * 100}
    payload = b"x" * (limit - 10)
    with pytest.raises(PayloadTooLargeError):
        check_message_size("size.over", payload, headers, limit)

    async def ignore(error: Exception) -> None:
        pass

    async with EmbeddedServer(max_payload=limit) as server:
        nc = Client()
        await nc.connect(server.url, allow_reconnect=False, error_cb=ignore)
        try:
            await nc.publish("size.over", payload, headers=headers)
            await wait_until(lambda: nc.is_closed, timeout=5, message="server kept the connection")
        finally:
            await nc.close()


async def test_nc_fixture_is_connected(nc: Client) -> None:
    sub = await nc.subscribe("fixture.check")
    await nc.publish("fixture.check", b"ok")
    assert (await sub.next_msg(timeout=2)).data == b"ok"
