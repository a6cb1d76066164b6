"""Failure detection by default: a dead actor costs seconds, a dead coordinator is reported.

Real processes on a real nats-server, every setting at its default (no node timeout,
no retry policy): a SIGKILLed actor's calls are found lost by liveness and re-sent to
the other replica, and a SIGKILLed coordinator's callers get `coordinator_lost`
instead of waiting out their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import nats
import pytest

import nons
from nons.client._client import COORDINATOR_LIVENESS_S
from nons.core.errors import CoordinatorLostError
from tests.support.cluster import (
    READY_S,
    ExecClient,
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

    from nats.aio.msg import Msg

    from tests.support.processes import NonsProcess

EXECUTIONS = 50
ALL_DONE_WITHIN_S = 15.0
"""The issue's gross bound: today (no liveness) the lost ones took the 60 s layer timeout."""


def three_layer_spec(tmp_path: Path) -> tuple[str, str]:
    """transform -> [generate x2] -> synthesize, with no layer configuration at all."""
    name = unique_name("detect")
    path = write_spec(
        tmp_path,
        name,
        [
            layer({"node_id": "clean", "operator": "transform"}),
            layer(
                {"node_id": "draft_a", "operator": "generate"},
                {"node_id": "draft_b", "operator": "generate"},
            ),
            layer({"node_id": "merge", "operator": "synthesize"}),
        ],
    )
    return name, path


async def one_of_each(
    stack: contextlib.ExitStack, url: str, spec: str, tmp_path: Path, env: dict[str, str]
) -> tuple[NonsProcess, NonsProcess]:
    """One actor and one coordinator process for `spec`, both ready."""
    actor = start_actor(stack, url, spec, tmp_path, name="actor", env=env)
    coordinator = start_coordinator(stack, url, spec, tmp_path, env=env)
    for process in (actor, coordinator):
        await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
    return actor, coordinator


async def test_a_killed_actor_costs_seconds_not_the_layer_timeout(
    nats_url: str, tmp_path: Path
) -> None:
    name, spec = three_layer_spec(tmp_path)
    env = child_env(NONS_MOCK_LATENCY_S="0.2")
    nc = await nats.connect(nats_url)
    try:
        with contextlib.ExitStack() as stack:
            actors = [
                start_actor(stack, nats_url, spec, tmp_path, name=f"actor{i}", env=env)
                for i in range(2)
            ]
            coordinator = start_coordinator(stack, nats_url, spec, tmp_path, env=env)
            for process in (*actors, coordinator):
                await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
            async with ExecClient(nc, name).running() as client:
                warm = await client.execute("warm up", timeout=15)
                assert warm.status == "completed", warm.reply
                started = time.monotonic()
                pending = [
                    asyncio.ensure_future(
                        client.execute(f"ticket {i}", timeout=60, execution_id=f"kill-{i:02d}")
                    )
                    for i in range(EXECUTIONS)
                ]
                await asyncio.sleep(0.3)  # the scenario: the kill comes 0.3 s in, mid-layer
                assert not any(task.done() for task in pending)
                assert await asyncio.to_thread(actors[0].kill) == -9
                outcomes = await asyncio.gather(*pending)
                wall_s = time.monotonic() - started
                # Replies and events sent after the last reply: a barrier execution.
                barrier = await client.execute("barrier", timeout=15)
                assert barrier.status == "completed"
            assert coordinator.running, coordinator.output()[-2000:]
    finally:
        await nc.close()
    print(  # noqa: T201 - the figure goes into the README
        f"\nfailure detection: {EXECUTIONS} executions, actor killed 0.3 s in: all done in "
        f"{wall_s:.2f} s; node_lost re-sends {client.retry_reasons['node_lost']}"
    )
    statuses = [outcome.status for outcome in outcomes]
    assert statuses == ["completed"] * EXECUTIONS, statuses
    assert wall_s < ALL_DONE_WITHIN_S
    ids = [outcome.execution_id for outcome in outcomes]
    assert {i: len(client.replies[i]) for i in ids} == dict.fromkeys(ids, 1)
    assert client.retry_reasons["node_lost"] >= 1, client.retry_reasons
    assert client.retries["node_lost"] == client.retry_reasons["node_lost"]


async def test_a_killed_coordinators_callers_get_coordinator_lost(
    nats_url: str, tmp_path: Path
) -> None:
    name, spec = three_layer_spec(tmp_path)
    env = child_env(NONS_MOCK_LATENCY_S="20")
    started_layers: set[str] = set()

    async def on_layer(msg: Msg) -> None:
        started_layers.add(msg.subject.split(".")[3])

    client = await nons.connect(nats_url)
    try:
        await client.nc.subscribe(f"nons.events.{name}.*.layer.started", cb=on_layer)
        with contextlib.ExitStack() as stack:
            actor, coordinator = await one_of_each(stack, nats_url, spec, tmp_path, env)
            ids = [f"orphan-{i}" for i in range(5)]
            sent = time.monotonic()
            pending = [
                asyncio.ensure_future(client.execute(name, "text", execution_id=execution_id))
                for execution_id in ids
            ]
            await wait_until(lambda: set(ids) <= started_layers, timeout=15)
            # Past one liveness window: only the coordinator's beats keep them waiting.
            await asyncio.sleep(max(sent + COORDINATOR_LIVENESS_S + 0.5 - time.monotonic(), 0))
            assert not any(task.done() for task in pending), [
                t.result() for t in pending if t.done()
            ]
            assert await asyncio.to_thread(coordinator.kill) == -9
            killed = time.monotonic()
            outcomes = await asyncio.wait_for(
                asyncio.gather(*pending, return_exceptions=True), timeout=30
            )
            noticed_s = time.monotonic() - killed
            assert await asyncio.to_thread(actor.kill) == -9  # its calls would run 20 s on
    finally:
        await client.close()
    assert all(isinstance(outcome, CoordinatorLostError) for outcome in outcomes), outcomes
    assert noticed_s <= COORDINATOR_LIVENESS_S + 2.0, noticed_s
    for outcome, execution_id in zip(outcomes, ids, strict=True):
        assert isinstance(outcome, CoordinatorLostError)
        assert outcome.type == "coordinator_lost"
        assert outcome.details["execution_id"] == execution_id


@pytest.mark.slow
async def test_a_thirty_second_call_on_a_live_actor_is_never_lost(
    nats_url: str, tmp_path: Path
) -> None:
    name, spec = three_layer_spec(tmp_path)
    spec = write_spec(tmp_path, name, [layer({"node_id": "think", "operator": "generate"})])
    env = child_env(NONS_MOCK_LATENCY_S="30")
    retries: list[Msg] = []

    async def on_retry(msg: Msg) -> None:
        retries.append(msg)

    client = await nons.connect(nats_url)
    try:
        await client.nc.subscribe(f"nons.events.{name}.*.node.retrying", cb=on_retry)
        with contextlib.ExitStack() as stack:
            actor, coordinator = await one_of_each(stack, nats_url, spec, tmp_path, env)
            started = time.monotonic()
            result = await asyncio.wait_for(client.execute(name, "a long think"), timeout=60)
            elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert result.status == "completed", result.error
    assert elapsed >= 30.0
    assert retries == []  # neither the node call nor the execution was taken for lost
