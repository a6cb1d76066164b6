"""Helpers of the scenarios: figure builders and the coordinator watch of the memory run."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

import msgspec

from benchmarks._procs import rss_mib
from benchmarks.report import Figure, Target, ratio

if TYPE_CHECKING:
    from benchmarks._harness import Bench

__all__ = ("cost", "floor", "free_port", "measure", "ms", "watch_peak")


def ms(seconds: float) -> float:
    return seconds * 1000.0


async def watch_peak(
    bench: Bench, pid: int, calls: asyncio.Future[list[float]]
) -> tuple[float, int]:
    peak = rss_mib(pid)
    seen = 0
    deadline = time.monotonic() + 60.0
    while not calls.done() and time.monotonic() < deadline:
        peak = max(peak, rss_mib(pid))
        seen = max(seen, await _coordinator_in_flight(bench))
        await asyncio.sleep(0.1)
    await asyncio.wait_for(calls, timeout=60.0)
    return peak, seen


async def _coordinator_in_flight(bench: Bench) -> int:
    try:
        msg = await bench.nc.request("$SRV.STATS.nons-coordinator", b"", timeout=1.0)
    except Exception:  # a busy coordinator may miss one poll: the next one counts
        return 0
    return _find_int(msgspec.json.decode(msg.data), "in_flight")


def _find_int(value: object, key: str) -> int:
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, int):
            return found
        return max((_find_int(v, key) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_find_int(v, key) for v in value), default=0)
    return 0


def free_port() -> int:
    from nons.runtime._process import free_port as pick

    return pick()


def floor(
    scenario: str, name: str, seconds_or_rate: float, *, unit: str = "ms", note: str = ""
) -> Figure:
    value = ms(seconds_or_rate) if unit == "ms" else seconds_or_rate
    return Figure(scenario=scenario, name=name, value=value, unit=unit, kind="floor", note=note)


def measure(
    scenario: str,
    name: str,
    seconds: float,
    floor_seconds: float,
    target: Target | None = None,
    *,
    note: str = "",
) -> Figure:
    return Figure(
        scenario=scenario,
        name=name,
        value=ms(seconds),
        unit="ms",
        floor=ms(floor_seconds),
        ratio=ratio(seconds, floor_seconds),
        target=target,
        note=note,
    )


def cost(name: str, with_it: float, without: float, target: Target | None = None) -> Figure:
    value = ratio(with_it, without)
    return Figure(
        scenario="tracing",
        name=name,
        value=value,
        unit="x",
        ratio=value,
        target=target,
        note="" if math.isnan(value) else f"{100 * (value - 1):+.0f}%",
    )
