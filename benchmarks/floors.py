"""Raw nats-py floors: what the same traffic costs with no runtime at all.

A floor is measured in the same run, on the same nats-server and from the same client
connection as the runtime figure it divides, against a `responder` process (echoes)
and a `relay` process (forwards to the responder, as a coordinator forwards to an
actor). Every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client

__all__ = (
    "RELAY_SUBJECT",
    "RESPONDER_SUBJECT",
    "closed_loop",
    "gather_times",
    "round_trip_times",
    "throughput",
)

RESPONDER_SUBJECT = "bench.raw.echo"
"""Subject of the responder process."""

RELAY_SUBJECT = "bench.raw.relay"
"""Subject of the relay process (which requests `RESPONDER_SUBJECT`)."""

REQUEST_TIMEOUT_S = 30.0
"""Bound on one raw request."""


async def round_trip_times(
    nc: Client, subject: str, payload: bytes, *, count: int, time_limit_s: float, warmup: int = 20
) -> list[float]:
    """Seconds of `count` sequential requests (fewer if `time_limit_s` runs out)."""
    for _ in range(warmup):
        await nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S)
    samples: list[float] = []
    deadline = time.perf_counter() + time_limit_s
    for _ in range(count):
        started = time.perf_counter()
        await nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S)
        samples.append(time.perf_counter() - started)
        if started > deadline:
            break
    return samples


async def gather_times(
    nc: Client,
    subject: str,
    payload: bytes,
    *,
    width: int,
    count: int,
    time_limit_s: float,
) -> list[float]:
    """Seconds to gather `width` concurrent requests, `count` times (bounded by time)."""

    async def one_gather() -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S) for _ in range(width))
        )
        return time.perf_counter() - started

    await one_gather()
    samples: list[float] = []
    deadline = time.perf_counter() + time_limit_s
    for _ in range(count):
        samples.append(await one_gather())
        if time.perf_counter() > deadline:
            break
    return samples


async def throughput(
    nc: Client, subject: str, payload: bytes, *, concurrency: int, duration_s: float
) -> float:
    """Requests per second of `concurrency` callers each requesting back to back."""
    return await closed_loop(
        lambda: nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S),
        concurrency=concurrency,
        duration_s=duration_s,
    )


async def closed_loop(
    call: Callable[[], Awaitable[object]],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.3,
) -> float:
    """Completed calls per second of `concurrency` back-to-back callers.

    Counting starts after `warmup_s` and stops at `duration_s`; callers then finish
    the call in hand, which is not counted.
    """
    counting = False
    stopping = False
    done = 0

    async def caller() -> None:
        nonlocal done
        while not stopping:
            await call()
            if counting and not stopping:
                done += 1

    tasks = [asyncio.ensure_future(caller()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(warmup_s)
        counting = True
        started = time.perf_counter()
        await asyncio.sleep(duration_s)
        stopping = True
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=REQUEST_TIMEOUT_S)
    finally:
        for task in tasks:
            task.cancel()
    return done / elapsed
