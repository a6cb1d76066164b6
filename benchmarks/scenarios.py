"""The six scenarios of the issue, plus the 50 ms repeat that shows overlap.

Each scenario starts the processes it needs through the bench, measures its raw floor
right before the runtime figure, and returns figures (floors first). Figures are
ratios of medians (or of p99s) of the same run.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from benchmarks import networks
from benchmarks._harness import RAW_PAYLOAD, Bench
from benchmarks._procs import rss_mib
from benchmarks._tools import cost, floor, free_port, measure, ms, watch_peak
from benchmarks.floors import (
    RELAY_SUBJECT,
    RESPONDER_SUBJECT,
    closed_loop,
    gather_times,
    round_trip_times,
    throughput,
)
from benchmarks.prompt_cache import prompt_cache
from benchmarks.report import Figure, Target, percentile, ratio, summarize
from nons.client import Client
from nons.runtime.messages import encode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("SCENARIOS",)

THREE_RTT = 4
"""Round trips per execution of the 3-layer network: client-coordinator plus 3 node calls."""

OVERLAP_LATENCY_S = 0.05
"""Mock latency of the overlap and scale-out scenarios."""

SCALEOUT_CONCURRENCY = 100
"""Concurrent clients of the scale-out scenario."""

SCALEOUT_ACTOR_SLOTS = 16
"""Calls of one node an actor process runs at once in the scale-out scenario.

Low on purpose: like a provider rate limit, it makes each process's capacity the
limit, so adding processes adds capacity until the CPU (2 cores here) saturates.
"""

MEMORY_LATENCY_S = 2.0
"""Mock latency that keeps the memory scenario's executions in flight."""

_T = "benchmarks.networks:"


async def latency(bench: Bench) -> list[Figure]:
    """End-to-end latency of one node and per layer of ten, against raw round trips."""
    sizes = bench.sizes
    chain = summarize(
        await round_trip_times(
            bench.nc, RELAY_SUBJECT, RAW_PAYLOAD, count=sizes.latency_count, time_limit_s=10
        )
    )
    single_rt = summarize(
        await round_trip_times(
            bench.nc, RESPONDER_SUBJECT, RAW_PAYLOAD, count=sizes.latency_count, time_limit_s=10
        )
    )
    async with bench.runtime([_T + "SINGLE", _T + "DEEP_10"]):
        single = summarize(
            await bench.execute_times(
                networks.SINGLE.name, count=sizes.latency_count, time_limit_s=20
            )
        )
        deep = summarize(
            await bench.execute_times(
                networks.DEEP_10.name, count=sizes.deep_count, time_limit_s=20
            )
        )
    per_layer = deep.p50 / 10
    return [
        floor("latency", "2 chained round trips p50 (client>relay>responder)", chain.p50),
        floor("latency", "2 chained round trips p99", chain.p99),
        floor("latency", "1 round trip p50 (client>responder)", single_rt.p50),
        measure("latency", "single node p50", single.p50, chain.p50, Target(op="<=", bound=1.5)),
        measure("latency", "single node p99", single.p99, chain.p99, Target(op="<=", bound=2.0)),
        measure(
            "latency",
            "10-layer network, per layer p50",
            per_layer,
            single_rt.p50,
            note=f"whole execution p50 {ms(deep.p50):.2f} ms",
        ),
    ]


async def fanout(bench: Bench) -> list[Figure]:
    """One layer of W nodes against a raw gather of W requests; and 10 layers of 100."""
    sizes = bench.sizes
    figures: list[Figure] = []
    floors: dict[int, float] = {}
    for width, count in sizes.fanout_counts.items():
        samples = await gather_times(
            bench.nc, RESPONDER_SUBJECT, RAW_PAYLOAD, width=width, count=count, time_limit_s=10
        )
        floors[width] = percentile(samples, 50)
        figures.append(floor("fanout", f"gather {width} requests p50", floors[width]))
    # Layers 2..10 of the grid carry the 100 outputs of the previous layer.
    wide_input = encode(["[mock] transform #0123abcd: " + "x" * 80] * 100)
    first = await gather_times(
        bench.nc, RESPONDER_SUBJECT, RAW_PAYLOAD, width=100, count=sizes.grid_count, time_limit_s=5
    )
    rest = await gather_times(
        bench.nc, RESPONDER_SUBJECT, wide_input, width=100, count=sizes.grid_count, time_limit_s=5
    )
    grid_floor = percentile(first, 50) + 9 * percentile(rest, 50)
    figures.append(
        floor("fanout", "10 sequential gathers of 100 p50", grid_floor, note="payload as the grid")
    )
    targets = [networks.wide_target(w) for w in sizes.fanout_counts] + [_T + "GRID_10X100"]
    async with bench.runtime(targets):
        for width, count in sizes.fanout_counts.items():
            name = networks.WIDE[width].name
            samples = await bench.execute_times(name, count=count, time_limit_s=20, warmup=2)
            target = Target(op="<=", bound=2.0) if width == 1000 else None
            figures.append(
                measure(
                    "fanout",
                    f"1 layer x {width} nodes p50",
                    percentile(samples, 50),
                    floors[width],
                    target,
                )
            )
        grid = await bench.execute_times(
            networks.GRID_10X100.name, count=sizes.grid_count, time_limit_s=20, warmup=1
        )
        figures.append(
            measure("fanout", "10 layers x 100 nodes p50", percentile(grid, 50), grid_floor)
        )
    return figures


async def throughput_scenario(bench: Bench) -> list[Figure]:
    """Executions/s of the 3-layer network at C clients, 1 and 2 actors, against raw req/s."""
    sizes = bench.sizes
    figures: list[Figure] = []
    raw: dict[int, float] = {}
    for concurrency in sizes.concurrencies:
        raw[concurrency] = await throughput(
            bench.nc,
            RESPONDER_SUBJECT,
            RAW_PAYLOAD,
            concurrency=concurrency,
            duration_s=sizes.throughput_s,
        )
        figures.append(
            floor("throughput", f"raw req/s at C={concurrency}", raw[concurrency], unit="req/s")
        )
    for actors in (1, 2):
        async with bench.runtime([_T + "THREE_LAYER"], actors=actors) as runtime:
            for concurrency in sizes.concurrencies:
                runtime.mark_cpu()
                started = time.perf_counter()
                rate = await closed_loop(
                    lambda: bench.execute(networks.THREE_LAYER.name),
                    concurrency=concurrency,
                    duration_s=sizes.throughput_s,
                )
                note = runtime.cpu_note(time.perf_counter() - started)
                target = Target(op=">=", bound=0.4) if concurrency == 100 else None
                figures.append(
                    Figure(
                        scenario="throughput",
                        name=f"3-layer exec/s, C={concurrency}, {actors} actor(s)",
                        value=rate,
                        unit="exec/s",
                        floor=raw[concurrency],
                        ratio=ratio(rate * THREE_RTT, raw[concurrency]),
                        target=target,
                        note=f"ratio = exec/s x {THREE_RTT} / raw; {note}",
                    )
                )
    return figures


async def tracing(bench: Bench) -> list[Figure]:
    """Single-node latency and C=10 throughput with events off, on, and on plus OTLP export."""
    sizes = bench.sizes
    count = max(sizes.latency_count // 2, 50)
    chain = summarize(
        await round_trip_times(bench.nc, RELAY_SUBJECT, RAW_PAYLOAD, count=count, time_limit_s=10)
    )
    raw_rate = await throughput(
        bench.nc, RESPONDER_SUBJECT, RAW_PAYLOAD, concurrency=10, duration_s=sizes.throughput_s
    )
    figures = [
        floor("tracing", "2 chained round trips p50", chain.p50),
        floor("tracing", "2 chained round trips p99", chain.p99),
        floor("tracing", "raw req/s at C=10", raw_rate, unit="req/s"),
    ]
    port = free_port()
    sink = bench.start_child("otlp-sink", ["sink", str(port)])
    await asyncio.to_thread(sink.wait_ready)
    export_env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRICS_EXPORTER": "none",
    }
    variants = (
        ("events off, export off", False, None),
        ("events on, export off", True, None),
        ("events on, export on", True, export_env),
    )
    p50s: dict[str, float] = {}
    rates: dict[str, float] = {}
    try:
        for label, events, env in variants:
            async with bench.runtime([_T + "SINGLE"], events=events, env=env):
                run = summarize(
                    await bench.execute_times(networks.SINGLE.name, count=count, time_limit_s=15)
                )
                rates[label] = await closed_loop(
                    lambda: bench.execute(networks.SINGLE.name),
                    concurrency=10,
                    duration_s=sizes.throughput_s,
                )
            p50s[label] = run.p50
            export_target = Target(op="<=", bound=2.0) if env else Target(op="<=", bound=1.5)
            figures.append(
                measure(
                    "tracing",
                    f"{label}: p50",
                    run.p50,
                    chain.p50,
                    export_target if events else None,
                )
            )
            figures.append(
                measure(
                    "tracing",
                    f"{label}: p99",
                    run.p99,
                    chain.p99,
                    None if env or not events else Target(op="<=", bound=2.0),
                )
            )
            figures.append(
                Figure(
                    scenario="tracing",
                    name=f"{label}: exec/s at C=10",
                    value=rates[label],
                    unit="exec/s",
                    floor=raw_rate,
                    ratio=ratio(rates[label] * 2, raw_rate),
                    note="ratio = exec/s x 2 / raw",
                )
            )
    finally:
        bench.stop_child(sink)
    on, off, export = (p50s[v[0]] for v in (variants[1], variants[0], variants[2]))
    figures.append(cost("events on vs off, p50", on, off))
    figures.append(cost("export on vs off, p50", export, on, Target(op="<=", bound=1.15)))
    figures.append(
        cost(
            "export on vs off, C=10 time per exec",
            rates[variants[1][0]],
            rates[variants[2][0]],
            Target(op="<=", bound=1.15),
        )
    )
    return figures


async def scaleout(bench: Bench) -> list[Figure]:
    """Throughput of the 3-layer network with 50 ms calls as actor processes go 1, 2, 4."""
    sizes = bench.sizes
    figures: list[Figure] = []
    client_bound = SCALEOUT_CONCURRENCY / (3 * OVERLAP_LATENCY_S)
    base: float | None = None
    for actors in sizes.scaleout_actors:
        async with bench.runtime(
            [_T + "THREE_LAYER"],
            actors=actors,
            latency_s=OVERLAP_LATENCY_S,
            concurrency=SCALEOUT_ACTOR_SLOTS,
            backlog=1000,
        ) as runtime:
            runtime.mark_cpu()
            started = time.perf_counter()
            rate = await closed_loop(
                lambda: bench.execute(networks.THREE_LAYER.name),
                concurrency=SCALEOUT_CONCURRENCY,
                duration_s=sizes.scaleout_s,
            )
            note = runtime.cpu_note(time.perf_counter() - started)
        ideal = min(actors * SCALEOUT_ACTOR_SLOTS / OVERLAP_LATENCY_S, client_bound)
        base = base or rate
        figures.append(
            Figure(
                scenario="scaleout",
                name=f"3-layer exec/s, 50 ms calls, {actors} actor(s)",
                value=rate,
                unit="exec/s",
                floor=ideal,
                ratio=ratio(rate, ideal),
                note=f"floor = ideal (min of {SCALEOUT_ACTOR_SLOTS} slots/node/actor, "
                f"C={SCALEOUT_CONCURRENCY}); x{rate / base:.2f} of 1 actor; {note}",
            )
        )
    return figures


async def memory(bench: Bench) -> list[Figure]:
    """RSS of a coordinator with 1000 executions in flight, and of an idle actor."""
    in_flight = bench.sizes.memory_in_flight
    async with bench.runtime(
        [_T + "SINGLE"], latency_s=MEMORY_LATENCY_S, concurrency=in_flight, backlog=in_flight
    ) as runtime:
        await bench.execute(networks.SINGLE.name)
        idle_coordinator = rss_mib(runtime.coordinator.pid)
        idle_actor = rss_mib(runtime.actors[0].pid)
        calls = asyncio.gather(*(bench.execute(networks.SINGLE.name) for _ in range(in_flight)))
        peak, seen = await watch_peak(bench, runtime.coordinator.pid, calls)
    return [
        Figure(scenario="memory", name="idle actor RSS", value=idle_actor, unit="MiB"),
        Figure(scenario="memory", name="idle coordinator RSS", value=idle_coordinator, unit="MiB"),
        Figure(
            scenario="memory",
            name=f"coordinator RSS, {in_flight} executions in flight",
            value=peak,
            unit="MiB",
            target=Target(op="<=", bound=64.0),
            note=f"peak while in flight; coordinator reported up to {seen} in flight",
        ),
    ]


async def overlap(bench: Bench) -> list[Figure]:
    """The latency and fan-out networks again with 50 ms per call: time above the ideal."""
    sizes = bench.sizes
    widths = list(sizes.fanout_counts)
    targets = [_T + "SINGLE", _T + "DEEP_10", *(networks.wide_target(w) for w in widths)]
    figures: list[Figure] = []
    cases = [
        (networks.SINGLE.name, "single node", 1, 20),
        (networks.DEEP_10.name, "10 layers x 1 node", 10, 5),
    ]
    cases += [(networks.WIDE[w].name, f"1 layer x {w} nodes", 1, 5) for w in widths]
    async with bench.runtime(targets, latency_s=OVERLAP_LATENCY_S, concurrency=1000):
        for name, label, layers, count in cases:
            samples = await bench.execute_times(name, count=count, time_limit_s=10, warmup=1)
            value = percentile(samples, 50)
            ideal = layers * OVERLAP_LATENCY_S
            figures.append(
                Figure(
                    scenario="overlap 50ms",
                    name=f"{label} p50",
                    value=ms(value),
                    unit="ms",
                    floor=ms(ideal),
                    ratio=ratio(value, ideal),
                    note=f"floor = {layers} x 50 ms; overhead {ms(value - ideal):.1f} ms",
                )
            )
    return figures


async def liveness(bench: Bench) -> list[Figure]:
    """What failure detection costs: single node and 1000-wide, liveness on against off.

    "Off" is a coordinator with `node_liveness_s=None` and a client with
    `liveness_s=None` (no `Nons-Liveness` header anywhere, so no actor beats either).
    """
    sizes = bench.sizes
    wide = max(sizes.fanout_counts)
    targets = [_T + "SINGLE", networks.wide_target(wide)]
    plain = Client(bench.nc, liveness_s=None)
    medians: dict[bool, tuple[float, float]] = {}
    for on in (False, True):
        client = bench.client if on else plain
        async with bench.runtime(targets, liveness=on, concurrency=1000):
            single = await bench.execute_times(
                networks.SINGLE.name, count=sizes.latency_count, time_limit_s=15, client=client
            )
            fan = await bench.execute_times(
                networks.WIDE[wide].name,
                count=sizes.fanout_counts[wide],
                time_limit_s=20,
                warmup=2,
                client=client,
            )
        medians[on] = (percentile(single, 50), percentile(fan, 50))
    await plain.close()
    (single_off, wide_off), (single_on, wide_on) = medians[False], medians[True]
    return [
        floor("liveness", "single node p50, liveness off", single_off),
        floor("liveness", f"1 layer x {wide} nodes p50, liveness off", wide_off),
        measure("liveness", "single node p50, liveness on (default)", single_on, single_off),
        measure("liveness", f"1 layer x {wide} nodes p50, liveness on", wide_on, wide_off),
    ]


async def durability(bench: Bench) -> list[Figure]:
    """What durability costs: durable single-node and 10-layer against the same, not durable."""
    sizes = bench.sizes
    targets = [_T + "SINGLE", _T + "DEEP_10", _T + "SINGLE_DURABLE", _T + "DEEP_10_DURABLE"]
    async with bench.runtime(targets):
        medians: dict[str, float] = {}
        for network in (
            networks.SINGLE,
            networks.SINGLE_DURABLE,
            networks.DEEP_10,
            networks.DEEP_10_DURABLE,
        ):
            count = sizes.latency_count // 2 if "single" in network.name else sizes.deep_count
            samples = await bench.execute_times(network.name, count=count, time_limit_s=15)
            medians[network.name] = percentile(samples, 50)
    single, single_durable = medians[networks.SINGLE.name], medians[networks.SINGLE_DURABLE.name]
    deep, deep_durable = medians[networks.DEEP_10.name], medians[networks.DEEP_10_DURABLE.name]
    return [
        floor("durability", "single node p50, not durable", single),
        floor("durability", "10 layers p50, not durable", deep),
        measure("durability", "single node p50, durable", single_durable, single),
        measure("durability", "10 layers p50, durable", deep_durable, deep),
    ]


SCENARIOS: dict[str, Callable[[Bench], Awaitable[list[Figure]]]] = {
    "latency": latency,
    "fanout": fanout,
    "throughput": throughput_scenario,
    "tracing": tracing,
    "scaleout": scaleout,
    "memory": memory,
    "overlap": overlap,
    "liveness": liveness,
    "durability": durability,
    "prompt-cache": prompt_cache,
}
"""Every scenario by name, in the order a full run executes them."""
