"""The bench: one nats-server, one client connection, the raw floor processes, and runtimes.

A scenario asks the bench for a runtime (a coordinator process and actor processes
with some settings), measures it and the matching floor, and leaves; everything the
bench starts it stops by PID, even when a scenario fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import nats

from benchmarks._procs import Child, cpu_seconds
from benchmarks.floors import RELAY_SUBJECT, RESPONDER_SUBJECT
from benchmarks.profiling import Profiler
from nons.client import Client
from nons.runtime.messages import ExecRequest, encode
from nons.runtime.server import EmbeddedServer

if TYPE_CHECKING:
    import subprocess
    from collections.abc import AsyncIterator, Mapping, Sequence

    from nats.aio.client import Client as NatsClient

__all__ = ("INPUT_TEXT", "RAW_PAYLOAD", "Bench", "Runtime", "Sizes")

INPUT_TEXT = ("Summarise the incident report for the on-call engineer. " * 18).strip()
"""The input of every execution: about 1 KB of text, like a short prompt."""

RAW_PAYLOAD = encode(ExecRequest(input=INPUT_TEXT, execution_id=uuid.uuid4().hex))
"""Raw floor payload: the bytes of the exec request the runtime client sends."""

EXEC_TIMEOUT_S = 120.0
"""Deadline of one benchmark execution."""

MAX_PAYLOAD = 8 * 1024 * 1024
"""Server max_payload: a 1000-node reply carries every node result."""


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How much each scenario samples: full run or `--quick`."""

    quick: bool
    latency_count: int
    deep_count: int
    fanout_counts: dict[int, int]
    grid_count: int
    throughput_s: float
    concurrencies: tuple[int, ...]
    scaleout_s: float
    scaleout_actors: tuple[int, ...]
    memory_in_flight: int

    @classmethod
    def for_run(cls, *, quick: bool) -> Sizes:
        """The full or the quick sizes."""
        if quick:
            return cls(
                quick=True,
                latency_count=200,
                deep_count=30,
                fanout_counts={10: 30, 100: 10, 1000: 3},
                grid_count=2,
                throughput_s=1.0,
                concurrencies=(1, 10, 100),
                scaleout_s=1.5,
                scaleout_actors=(1, 2),
                memory_in_flight=1000,
            )
        return cls(
            quick=False,
            latency_count=1000,
            deep_count=150,
            fanout_counts={10: 100, 100: 40, 1000: 12},
            grid_count=6,
            throughput_s=3.0,
            concurrencies=(1, 10, 100),
            scaleout_s=3.0,
            scaleout_actors=(1, 2, 4),
            memory_in_flight=1000,
        )


@dataclass
class Runtime:
    """A running coordinator and its actors."""

    coordinator: Child
    actors: list[Child]
    cpu_start: dict[int, float] = field(default_factory=dict)

    def mark_cpu(self) -> None:
        """Remember the CPU time of every process, to report use since this moment."""
        self.cpu_start = {c.pid: cpu_seconds(c.pid) for c in [self.coordinator, *self.actors]}

    def cpu_note(self, elapsed_s: float) -> str:
        """CPU use since `mark_cpu` as percent of one core, coordinator then actors."""
        parts = []
        for child in [self.coordinator, *self.actors]:
            used = cpu_seconds(child.pid) - self.cpu_start.get(child.pid, 0.0)
            parts.append(f"{child.label} {100.0 * used / elapsed_s:.0f}%")
        return "cpu " + ", ".join(parts)


class Bench:
    """The shared pieces of a run; use as an async context manager."""

    def __init__(self, sizes: Sizes, profiler: Profiler | None = None) -> None:
        self.sizes = sizes
        self.profiler = profiler
        """Records py-spy profiles of every runtime's processes (`--profile`), if set."""
        self.server = EmbeddedServer(max_payload=MAX_PAYLOAD)
        self._children: list[Child] = []
        self._nc: NatsClient | None = None
        self._client: Client | None = None

    @property
    def nc(self) -> NatsClient:
        """The driver's raw NATS connection."""
        assert self._nc is not None
        return self._nc

    @property
    def client(self) -> Client:
        """The driver's NoN client (over the same connection)."""
        assert self._client is not None
        return self._client

    async def __aenter__(self) -> Bench:
        await self.server.astart()
        try:
            responder = self._start("responder", ["responder", self.server.url, RESPONDER_SUBJECT])
            relay = self._start(
                "relay", ["relay", self.server.url, RELAY_SUBJECT, RESPONDER_SUBJECT]
            )
            await asyncio.to_thread(responder.wait_ready)
            await asyncio.to_thread(relay.wait_ready)
            self._nc = await nats.connect(self.server.url, name="bench-driver")
            self._client = Client(self._nc)
            await self._client.__aenter__()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the client, every child (by PID) and the server."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None
        await asyncio.to_thread(self._stop_children, list(self._children))
        await self.server.astop()

    @contextlib.asynccontextmanager
    async def runtime(
        self,
        targets: Sequence[str],
        *,
        actors: int = 1,
        latency_s: float = 0.0,
        events: bool = True,
        liveness: bool = True,
        concurrency: int = 64,
        backlog: int = 256,
        env: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Runtime]:
        """A coordinator and `actors` actor processes serving `targets`, stopped on exit."""
        common = {"NONS_MOCK_LATENCY_S": str(latency_s), **(env or {})}
        started: list[Child] = []
        recorders: list[subprocess.Popen[bytes]] = []
        try:
            actor_args = ["--concurrency", str(concurrency), "--backlog", str(backlog)]
            for index in range(actors):
                started.append(
                    self._start(
                        f"actor{index + 1}",
                        ["actor", self.server.url, *targets, *actor_args],
                        common,
                    )
                )
            flags = ([] if events else ["--no-events"]) + ([] if liveness else ["--no-liveness"])
            coordinator = self._start(
                "coordinator", ["coordinator", self.server.url, *targets, *flags], common
            )
            started.append(coordinator)
            for child in started:
                await asyncio.to_thread(child.wait_ready, 120.0)
            if self.profiler is not None:
                recorders = self.profiler.attach((c.label, c.pid) for c in started)
            yield Runtime(coordinator=coordinator, actors=started[:-1])
        finally:
            if recorders:
                await asyncio.to_thread(Profiler.detach, recorders)
            await asyncio.to_thread(self._stop_children, started)

    def start_child(self, label: str, args: Sequence[str]) -> Child:
        """Start another child (a sink...); the bench stops it at the latest on close."""
        return self._start(label, list(args))

    def stop_child(self, child: Child) -> None:
        """Stop a child started with `start_child`."""
        self._stop_children([child])

    async def execute(
        self, network: str, input: str = INPUT_TEXT, *, client: Client | None = None
    ) -> float:
        """Run one execution through `nons.exec.<network>`; its wall time in seconds.

        Raises:
            RuntimeError: the execution did not complete (a benchmark must not time failures).
        """
        started = time.perf_counter()
        result = await (client or self.client).execute(network, input, timeout_s=EXEC_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if result.status != "completed":
            detail = msgspec.json.encode(result.error).decode() if result.error else "?"
            raise RuntimeError(f"execution of {network} ended {result.status}: {detail}")
        return elapsed

    async def execute_times(
        self,
        network: str,
        *,
        count: int,
        time_limit_s: float,
        warmup: int = 10,
        client: Client | None = None,
    ) -> list[float]:
        """Wall times of `count` sequential executions (fewer if time runs out)."""
        for _ in range(warmup):
            await self.execute(network, client=client)
        samples: list[float] = []
        deadline = time.perf_counter() + time_limit_s
        for _ in range(count):
            samples.append(await self.execute(network, client=client))
            if time.perf_counter() > deadline:
                break
        return samples

    def _start(self, label: str, args: list[str], env: Mapping[str, str] | None = None) -> Child:
        child = Child(label, args, env)
        self._children.append(child)
        return child

    def _stop_children(self, children: list[Child]) -> None:
        for child in children:
            child.stop()
            if child in self._children:
                self._children.remove(child)
