"""Failover of the infrastructure: a nats-server restart and a coordinator killed mid-execution.

A restart must never leave a caller hanging: each execution in flight either gets a
reply or its caller sees a clear error within its own timeout, and the processes
reconnect by themselves. A coordinator that dies loses only its in-flight executions,
whose callers see a timeout; a second replica goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import nats
import nats.errors
import pytest

from tests.support.cluster import (
    READY_S,
    child_env,
    layer,
    start_actor,
    start_coordinator,
    unique_name,
    write_spec,
)
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from nons.runtime.server import EmbeddedServer

REQUEST_TIMEOUT_S = 12.0
"""The caller's bound on one request in flight across the restart or the kill."""

LOG_INFO = ("--log-level", "info")
"""Processes log their reconnects at info level."""

HANG_MARGIN_S = 3.0
"""Slack over `REQUEST_TIMEOUT_S` before a request counts as hanging."""


def two_layer_spec(tmp_path: Path, *, node_timeout: float) -> tuple[str, str]:
    """transform -> generate, node calls retried after `node_timeout`."""
    name = unique_name("restart")
    config = {
        "error_policy": "retry_with_backoff",
        "max_retries": 3,
        "retry_delay_seconds": 0.1,
        "node_timeout_seconds": node_timeout,
        "timeout_seconds": 10.0,
    }
    path = write_spec(
        tmp_path,
        name,
        [
            layer({"node_id": "clean", "operator": "transform"}, **config),
            layer({"node_id": "answer", "operator": "generate"}, **config),
        ],
    )
    return name, path


async def client_for(url: str) -> Client:
    """A caller that reconnects quickly and forever, as a long-lived client should."""
    return await nats.connect(
        url, reconnect_time_wait=0.2, max_reconnect_attempts=-1, connect_timeout=2
    )


async def request_outcome(
    nc: Client, network: str, text: str, execution_id: str | None = None
) -> tuple[str, float]:
    """Send one execution; the reply's status or the error the caller saw, and the time."""
    body: dict[str, Any] = {"input": text, "timeout_s": REQUEST_TIMEOUT_S - 1}
    if execution_id is not None:
        body["execution_id"] = execution_id
    started = time.monotonic()
    try:
        msg = await nc.request(
            f"nons.exec.{network}", json.dumps(body).encode(), timeout=REQUEST_TIMEOUT_S
        )
    except nats.errors.TimeoutError:
        return "timeout", time.monotonic() - started
    except nats.errors.NoRespondersError:
        return "no_responders", time.monotonic() - started
    except nats.errors.ConnectionClosedError:
        return "connection_closed", time.monotonic() - started
    reply: dict[str, Any] = json.loads(msg.data)
    return str(reply["status"]), time.monotonic() - started


async def no_responders(nc: Client, network: str) -> bool:
    """Nobody serves the network any more (the server noticed every dead replica)."""
    try:
        await nc.request(f"nons.exec.{network}", b"anyone?", timeout=2)
    except nats.errors.NoRespondersError:
        return True
    except nats.errors.TimeoutError:
        return False
    return False


async def completes(nc: Client, network: str, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """A new execution completes (false on any error, for `wait_until`)."""
    try:
        msg = await nc.request(f"nons.exec.{network}", b"after", timeout=timeout)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return False
    return bool(json.loads(msg.data)["status"] == "completed")


@pytest.mark.slow  # about 10 s of waiting: CI runs it beside `make test`
async def test_executions_survive_a_server_restart(
    fresh_nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    url = fresh_nats_server.url
    name, spec = two_layer_spec(tmp_path, node_timeout=2.0)
    started_layers: set[str] = set()

    async def on_layer(msg: Msg) -> None:
        started_layers.add(json.loads(msg.data)["execution_id"])

    nc = await client_for(url)
    try:
        await nc.subscribe(f"nons.events.{name}.*.layer.started", cb=on_layer)
        with contextlib.ExitStack() as stack:
            env = child_env(NONS_MOCK_LATENCY_S="0.5")
            actors = [
                start_actor(stack, url, spec, tmp_path, name=f"actor{i}", env=env, extra=LOG_INFO)
                for i in range(2)
            ]
            coordinator = start_coordinator(stack, url, spec, tmp_path, extra=LOG_INFO)
            for process in (*actors, coordinator):
                await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
            await wait_until(lambda: completes(nc, name), timeout=15)

            ids = {f"in-flight-{index}" for index in range(8)}
            pending = [
                asyncio.ensure_future(request_outcome(nc, name, "in flight", execution_id))
                for execution_id in sorted(ids)
            ]
            await wait_until(lambda: ids <= started_layers, timeout=10)
            await fresh_nats_server.arestart()
            done, hanging = await asyncio.wait(pending, timeout=REQUEST_TIMEOUT_S + HANG_MARGIN_S)
            assert not hanging, f"{len(hanging)} requests hung past their timeout"
            outcomes = [task.result() for task in done]

            await wait_until(
                lambda: completes(nc, name), timeout=30, message="no execution after restart"
            )
            for process in (*actors, coordinator):
                assert process.running, process.output()[-2000:]
                await process.wait_for_line_async("reconnected to NATS", timeout=10)
    finally:
        await nc.close()
    statuses = Counter(status for status, _ in outcomes)
    print(f"\nserver restart: in-flight outcomes {dict(statuses)}")  # noqa: T201
    assert set(statuses) <= {"completed", "failed", "timeout", "no_responders"}, statuses
    assert all(elapsed <= REQUEST_TIMEOUT_S + HANG_MARGIN_S for _, elapsed in outcomes)


@pytest.mark.slow  # about 10 s of waiting: CI runs it beside `make test`
async def test_killed_coordinator_loses_only_its_executions(nats_url: str, tmp_path: Path) -> None:
    name, spec = two_layer_spec(tmp_path, node_timeout=6.0)
    started_layers: set[str] = set()

    async def on_layer(msg: Msg) -> None:
        started_layers.add(json.loads(msg.data)["execution_id"])

    nc = await client_for(nats_url)
    try:
        await nc.subscribe(f"nons.events.{name}.*.layer.started", cb=on_layer)
        with contextlib.ExitStack() as stack:
            actor = start_actor(
                stack,
                nats_url,
                spec,
                tmp_path,
                name="actor",
                env=child_env(NONS_MOCK_LATENCY_S="4"),
            )
            first = start_coordinator(stack, nats_url, spec, tmp_path, name="coordinator-a")
            for process in (actor, first):
                await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
            # Only the first replica runs yet: these executions are all its own.
            ids = {f"doomed-{index}" for index in range(4)}
            pending = [
                asyncio.ensure_future(request_outcome(nc, name, "doomed", execution_id))
                for execution_id in sorted(ids)
            ]
            await wait_until(lambda: ids <= started_layers, timeout=10)
            second = start_coordinator(stack, nats_url, spec, tmp_path, name="coordinator-b")
            await second.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
            assert not any(task.done() for task in pending), "executions ended too early"
            assert await asyncio.to_thread(first.kill) == -9

            await wait_until(lambda: completes(nc, name, timeout=12), timeout=30)
            done, hanging = await asyncio.wait(pending, timeout=REQUEST_TIMEOUT_S + HANG_MARGIN_S)
            assert not hanging, f"{len(hanging)} requests hung past their timeout"
            assert await asyncio.to_thread(second.kill) == -9
            await wait_until(lambda: no_responders(nc, name), timeout=10)
    finally:
        await nc.close()
    doomed = [task.result() for task in done]
    assert [status for status, _ in doomed] == ["timeout"] * 4
    assert all(elapsed <= REQUEST_TIMEOUT_S + 1 for _, elapsed in doomed)
