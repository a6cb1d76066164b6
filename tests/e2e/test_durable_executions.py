"""Durable executions survive their coordinator: SIGKILL it mid-execution, start another,
and the caller gets its one reply with no model call paid for twice.

Real processes on a real nats-server with JetStream; the actor calls the fake
Anthropic Messages API (through the real SDK), whose request log is the count of
model calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import nats

import nons
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
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.msg import Msg

    from nons.client import Client
    from tests.support.fake_http import RecordedRequest, ScriptedResponse

API_KEY = "sk-ant-durable-test"
CALL_S = 0.3
"""The fake API's latency per model call."""
LEASE_S = 1.5
"""The coordinators' lease (`--lease`): how soon a dead one's executions are taken over."""
NODES = [1, 1, 2, 1, 1]
"""Nodes per layer of the 5-layer network; layer 3 (index 2) fans out."""


class SlowAnthropic(FakeAnthropic):
    """The fake Messages API, answering each request after `CALL_S`."""

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        time.sleep(CALL_S)
        return super().route(request)


def five_layer_spec(tmp_path: Path) -> tuple[str, str]:
    name = unique_name("durable")
    layers = [
        layer(*({"node_id": f"l{index}n{n}", "operator": "generate"} for n in range(count)))
        for index, count in enumerate(NODES)
    ]
    return name, write_spec(tmp_path, name, layers, durable=True)


async def _kill_and_resume(
    nats_url: str, tmp_path: Path, *, kill_when: str, caller: str
) -> tuple[dict[str, Any], list[dict[str, Any]], int, ExecClient | None, str]:
    """Run one execution, SIGKILL its coordinator at `kill_when`, let a second one finish.

    `caller`: `plain` waits on its own reply subject (any NATS client); `nons` is
    `nons.connect().execute()`, which hears the coordinator's `durable` progress and
    so waits for the resumed reply instead of raising `coordinator_lost`.
    """
    name, spec = five_layer_spec(tmp_path)
    events: list[dict[str, Any]] = []

    async def on_event(msg: Msg) -> None:
        events.append(json.loads(msg.data))

    with SlowAnthropic(api_key=API_KEY) as fake:
        env = child_env(ANTHROPIC_API_KEY=API_KEY, ANTHROPIC_BASE_URL=fake.base_url)
        lease = ["--lease", str(LEASE_S)]
        nc = await nats.connect(nats_url)
        try:
            await nc.subscribe(f"nons.events.{name}.>", cb=on_event)
            with contextlib.ExitStack() as stack:
                actor = start_actor(stack, nats_url, spec, tmp_path, name="actor", env=env)
                first = start_coordinator(
                    stack, nats_url, spec, tmp_path, name="coordinator-a", env=env, options=lease
                )
                for process in (actor, first):
                    await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
                async with ExecClient(nc, name).running() as client:
                    execution_id = unique_name("exec")
                    nons_client = await nons.connect(nats_url)
                    pending = asyncio.ensure_future(
                        _plain(client, execution_id)
                        if caller == "plain"
                        else _via_nons(nons_client, name, execution_id)
                    )
                    if kill_when == "in_flight":
                        # Layer 3's two calls are at the fake API (in the actor) right now.
                        await wait_until(lambda: len(fake.message_requests) >= 4, timeout=20)
                    else:
                        # Layer 3 done at the actor, its results recorded, not yet checkpointed.
                        await wait_until(
                            lambda: _completed_in(events, 2) >= 1, timeout=20, interval=0.002
                        )
                    assert await asyncio.to_thread(first.kill) == -9
                    killed_at_calls = len(fake.message_requests)
                    second = start_coordinator(
                        stack,
                        nats_url,
                        spec,
                        tmp_path,
                        name="coordinator-b",
                        env=env,
                        options=lease,
                    )
                    await second.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
                    reply = await asyncio.wait_for(pending, timeout=60)
                    await nons_client.close()
                    await wait_until(
                        lambda: any(e["type"] == "execution.completed" for e in events), timeout=10
                    )
                    calls = len(fake.message_requests)
                    assert killed_at_calls <= calls
        finally:
            await nc.close()
    return reply, events, calls, client if caller == "plain" else None, execution_id


async def _via_nons(client: Client, network: str, execution_id: str) -> dict[str, Any]:
    result = await client.execute(network, "a long task", execution_id=execution_id)
    return {
        "status": result.status,
        "execution_id": result.execution_id,
        "layers": result.layer_results,
        "trace_id": result.metadata.trace_id,
        "output": result.output,
        "error": result.error,
    }


async def _plain(client: ExecClient, execution_id: str) -> dict[str, Any]:
    outcome = await client.execute("a long task", timeout=60, execution_id=execution_id)
    assert outcome.reply is not None, outcome.status
    return outcome.reply


def _completed_in(events: list[dict[str, Any]], layer_index: int) -> int:
    return sum(
        e["type"] == "node.completed" and e.get("layer_index") == layer_index for e in events
    )


def _assert_resumed_once(
    reply: dict[str, Any],
    events: list[dict[str, Any]],
    calls: int,
    client: ExecClient | None,
    execution_id: str,
) -> None:
    assert reply["status"] == "completed", reply.get("error")
    assert reply["execution_id"] == execution_id
    assert len(reply["layers"]) == len(NODES)
    if client is not None:
        assert client.replies[execution_id] == [reply], "the caller got other than one reply"
    assert calls == sum(NODES), f"{calls} model calls for {sum(NODES)} nodes"
    resumed = [e for e in events if e["type"] == "execution.resumed"]
    assert len(resumed) == 1, resumed
    assert resumed[0]["layer_index"] == 2
    assert resumed[0]["trace_id"] == reply["trace_id"]  # the resumed spans: the same trace
    assert reply["output"].startswith("Hello"), reply["output"]  # the fake's answer text


async def test_coordinator_killed_while_layer_3_is_in_flight(nats_url: str, tmp_path: Path) -> None:
    _assert_resumed_once(
        *await _kill_and_resume(nats_url, tmp_path, kill_when="in_flight", caller="plain")
    )


async def test_coordinator_killed_after_layer_3_ran_before_its_checkpoint(
    nats_url: str, tmp_path: Path
) -> None:
    _assert_resumed_once(
        *await _kill_and_resume(nats_url, tmp_path, kill_when="answered", caller="nons")
    )
