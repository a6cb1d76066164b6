"""Load with failures: 500 executions, 10% injected node failures, one actor SIGKILLed midway.

The issue's load test: every execution gets exactly one reply and exactly one terminal
event, none is lost, and the large majority complete. The measured figures are printed
(`pytest -s`) for the README's Reliability section.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import TYPE_CHECKING

import nats

from tests.support.cluster import (
    READY_S,
    ExecClient,
    ExecOutcome,
    child_env,
    layer,
    start_actor,
    start_coordinator,
    unique_name,
    write_spec,
)
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

EXECUTIONS = 500
IN_FLIGHT = 100
KILL_AFTER_REPLIES = 150
REQUEST_TIMEOUT_S = 40.0
"""Client-side bound per request: above the execution's own deadline (`timeout_s`)."""
EXECUTION_TIMEOUT_S = 30.0

LAYER_CONFIG = {
    "error_policy": "retry_with_backoff",
    "max_retries": 3,
    "retry_delay_seconds": 0.05,
    "node_timeout_seconds": 2.0,
    "timeout_seconds": 20.0,
}


def three_layer_spec(tmp_path: Path) -> tuple[str, str]:
    """transform -> [generate x3] -> synthesize, each layer retrying with backoff."""
    name = unique_name("load")
    generate = [{"node_id": f"gen{index}", "operator": "generate"} for index in range(3)]
    path = write_spec(
        tmp_path,
        name,
        [
            layer({"node_id": "clean", "operator": "transform"}, **LAYER_CONFIG),
            layer(*generate, **LAYER_CONFIG),
            layer({"node_id": "merge", "operator": "synthesize"}, **LAYER_CONFIG),
        ],
    )
    return name, path


async def test_500_executions_with_failures_and_a_killed_actor(
    nats_url: str, tmp_path: Path
) -> None:
    name, spec = three_layer_spec(tmp_path)
    actor_env = child_env(NONS_MOCK_FAILURE_RATE="0.1", NONS_MOCK_LATENCY_S="0.02")
    nc = await nats.connect(nats_url, pending_size=8 * 1024 * 1024)
    try:
        with contextlib.ExitStack() as stack:
            actors = [
                start_actor(stack, nats_url, spec, tmp_path, name=f"actor{i}", env=actor_env)
                for i in range(2)
            ]
            coordinator = start_coordinator(stack, nats_url, spec, tmp_path)
            for process in (*actors, coordinator):
                await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)
            async with ExecClient(nc, name).running() as client:
                # Warm up (and wait out the instant a fresh queue subscription is unknown).
                await wait_until(
                    lambda: _completes(client), timeout=15, message="no warm-up execution"
                )
                outcomes, wall_s, killed_at = await _load(client, actors[0].kill)
                await wait_until(
                    lambda: all(client.terminal[o.execution_id] for o in outcomes),
                    timeout=15,
                    message=lambda: f"terminal events missing: {_missing(client, outcomes)}",
                )
                # A barrier: one more execution's reply and terminal event come after
                # anything the coordinator still had queued for the batch.
                await wait_until(lambda: _completes(client), timeout=15)
            assert coordinator.running, coordinator.output()[-2000:]
            assert actors[1].running, actors[1].output()[-2000:]
    finally:
        await nc.close()

    statuses = Counter(outcome.status for outcome in outcomes)
    failures = Counter(
        outcome.reply["error"]["type"]
        for outcome in outcomes
        if outcome.reply is not None and outcome.reply.get("error")
    )
    print(  # noqa: T201 - the measured figures go into the README
        f"\nload: {EXECUTIONS} executions, {IN_FLIGHT} in flight, actor killed after "
        f"{killed_at} replies; wall {wall_s:.2f} s; statuses {dict(statuses)}; "
        f"errors {dict(failures)}; retries by cause {dict(client.retries)}"
    )
    ids = [outcome.execution_id for outcome in outcomes]
    assert len(set(ids)) == EXECUTIONS
    lost = [o.execution_id for o in outcomes if o.reply is None]
    assert not lost, f"{len(lost)} executions got no reply: {[o.status for o in outcomes][:20]}"
    duplicated = {i: len(client.replies[i]) for i in ids if len(client.replies[i]) != 1}
    assert not duplicated, f"executions with other than one reply: {duplicated}"
    terminal = {i: client.terminal[i] for i in ids if len(client.terminal[i]) != 1}
    assert not terminal, f"executions with other than one terminal event: {terminal}"
    assert all(o.reply is not None and o.reply["execution_id"] == o.execution_id for o in outcomes)
    for outcome in outcomes:
        assert outcome.reply is not None
        expected = "execution.failed" if outcome.status == "failed" else "execution.completed"
        assert client.terminal[outcome.execution_id] == [expected]
    assert statuses["completed"] >= 0.95 * EXECUTIONS, statuses
    assert client.retries["injected_failure"] > 0, "the mock injected no failure"
    assert killed_at >= KILL_AFTER_REPLIES


async def _load(
    client: ExecClient, kill: Callable[[], int]
) -> tuple[list[ExecOutcome], float, int]:
    """Run the batch; SIGKILL the first actor once `KILL_AFTER_REPLIES` replies are in."""
    limiter = asyncio.Semaphore(IN_FLIGHT)
    done = 0

    async def one(index: int) -> ExecOutcome:
        nonlocal done
        async with limiter:
            outcome = await client.execute(
                f"ticket {index}: the app crashes on upload",
                timeout=REQUEST_TIMEOUT_S,
                execution_id=f"load-{index:04d}",
                request_timeout_s=EXECUTION_TIMEOUT_S,
            )
        done += 1
        return outcome

    async def killer() -> int:
        await wait_until(lambda: done >= KILL_AFTER_REPLIES, timeout=60)
        code = await asyncio.to_thread(kill)
        assert code == -9
        return done

    started = time.perf_counter()
    kill_task = asyncio.ensure_future(killer())
    outcomes = await asyncio.gather(*(one(index) for index in range(EXECUTIONS)))
    wall_s = time.perf_counter() - started
    killed_at = await asyncio.wait_for(kill_task, timeout=15)
    return list(outcomes), wall_s, killed_at


async def _completes(client: ExecClient) -> bool:
    outcome = await client.execute("warm up", timeout=10)
    if outcome.status != "completed":
        return False
    await wait_until(lambda: bool(client.terminal[outcome.execution_id]), timeout=10)
    return True


def _missing(client: ExecClient, outcomes: list[ExecOutcome]) -> list[str]:
    return [o.execution_id for o in outcomes if not client.terminal[o.execution_id]][:20]
