"""`nons exec NETWORK --batch FILE.jsonl`: many executions, a progress line, replies in order.

Each non-blank line is what a NATS client would send on `nons.exec.<network>`: a JSON
request object (`{"input": ..., "timeout_s": ...}`), any other JSON value, or plain
text. Lines are read lazily and run `--concurrency` at a time through the batch engine
(`nons.runtime.batch.stream_map`); a bad line is a failed item, never the batch's end.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import anyio
import msgspec

from nons.actors.batch_progress import BATCH_EVENT
from nons.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    MOCK_NOTICE,
    connect,
    emit,
    telemetry,
)
from nons.cli._format import reply_json
from nons.client import Client
from nons.client.batch import stream_map
from nons.core.errors import ConfigurationError
from nons.core.events import NodeBatch, decode_event
from nons.core.names import EVENTS_PREFIX
from nons.runtime.messages import decode_exec_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from nons.cli._common import CliContext
    from nons.client.batch import IndexedResult
    from nons.core.modes import ExecutionMode
    from nons.core.results import ExecutionResult

__all__ = ("BatchProgress", "count_lines", "item_line", "run_exec_batch")

TTY_REFRESH_S = 0.1
"""Least time between two redraws of the progress line on a terminal."""

LOG_INTERVAL_S = 2.0
"""Time between two progress lines when stderr is not a terminal (a log file, CI)."""

_UNAVAILABLE = "network_unavailable"


class BatchProgress:
    """Counts finished items and shows `batch: 37/100 done, 2 failed, 12.3 exec/s`.

    On a terminal the line is redrawn in place (at most every `TTY_REFRESH_S`);
    elsewhere a plain line is written every `LOG_INTERVAL_S`, so logs stay readable.
    """

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        *,
        interactive: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total
        self.interactive = interactive
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.failed = 0
        self.mock = False
        self.batches: dict[str, NodeBatch] = {}
        """The latest `node.batch` event of each Message Batch (batch mode)."""
        self._shown_at: float | None = None
        self._drawn = False

    def line(self) -> str:
        """The progress in words."""
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        of = f"/{self.total}" if self.total is not None else ""
        line = f"batch: {self.done}{of} done, {self.failed} failed, {rate:.1f} exec/s"
        if self.batches:
            latest = max(self.batches.values(), key=lambda event: event.ts)
            total = (
                latest.processing
                + latest.succeeded
                + latest.errored
                + latest.canceled
                + latest.expired
            )
            line += (
                f"; Message Batch {latest.batch_id} (layer {latest.layer_index}, "
                f"{len(self.batches)} so far): {latest.processing}/{total} processing, "
                f"{latest.succeeded} succeeded, {latest.errored} errored, "
                f"{latest.expired} expired"
            )
        return line

    def batch_seen(self, event: NodeBatch) -> None:
        """Note where a Message Batch stands and show it if it is time to."""
        known = self.batches.get(event.batch_id)
        if known is not None and known.ts > event.ts:
            return
        self.batches[event.batch_id] = event
        now = self.clock()
        interval = TTY_REFRESH_S if self.interactive else LOG_INTERVAL_S
        if self._shown_at is None or now - self._shown_at >= interval:
            self._show(now)

    def add(self, result: ExecutionResult) -> None:
        """Count one finished item and show the progress if it is time to."""
        self.done += 1
        self.failed += result.status == "failed"
        self.mock = self.mock or result.is_mock
        now = self.clock()
        interval = TTY_REFRESH_S if self.interactive else LOG_INTERVAL_S
        if self._shown_at is None or now - self._shown_at >= interval:
            self._show(now)

    def clear(self) -> None:
        """Erase the progress line before other output goes to the same terminal."""
        if self.interactive and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def finish(self) -> None:
        """Show the final count on a line of its own, with the elapsed time."""
        self.clear()
        elapsed = self.clock() - self.started
        emit(f"{self.line()} in {elapsed:.1f} s", self.stream)

    def _show(self, now: float) -> None:
        self._shown_at = now
        if self.interactive:
            self.stream.write(f"\r{self.line()}\x1b[K")
            self.stream.flush()
            self._drawn = True
        else:
            emit(self.line(), self.stream)


async def run_exec_batch(
    context: CliContext,
    network: str,
    path: str,
    *,
    concurrency: int,
    as_json: bool,
    timeout_s: float | None,
    budget_usd: float | None,
    mode: ExecutionMode = "online",
) -> int:
    """Run `network` once per line of `path` (`-`: stdin); print results in line order.

    Exit code: 0 when no item failed, 1 when one did, 3 when no coordinator answered.

    Raises:
        ConfigurationError: the file cannot be read.
    """
    total = count_lines(path) if path != "-" else None
    progress = BatchProgress(sys.stderr, total, interactive=sys.stderr.isatty())
    with telemetry(context, "nons", actors=False):
        nc = await connect(context, "nons-exec-batch")
        client = Client(nc, owns_connection=True)
        try:
            settings = _Settings(concurrency, as_json, timeout_s, budget_usd, mode)
            watch = await _watch_batches(nc, network, progress) if mode == "batch" else None
            try:
                unavailable = await _run(client, network, path, progress, settings)
            finally:
                if watch is not None:
                    with contextlib.suppress(Exception):
                        await watch.unsubscribe()
        finally:
            await client.close()
    progress.finish()
    if progress.mock:
        emit(MOCK_NOTICE, sys.stderr)
    if progress.done and unavailable == progress.done:
        emit(f"nons exec: no coordinator serves network {network!r}", sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_FAILED if progress.failed else EXIT_OK


def item_line(result: IndexedResult) -> str:
    """One line per item for people: `#3 completed: <output>` or `#4 failed: <error>`."""
    number = result.index + 1
    if result.status == "failed":
        error = result.error
        what = f"{error.type}: {error.message}" if error else "failed"
        return f"#{number} failed: {what} (execution {result.execution_id})"
    output = result.output
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    one_line = text.replace("\n", "\\n")
    return f"#{number} {result.status}: {one_line}"


def count_lines(path: str) -> int:
    """Non-blank lines of the file (the batch size shown in the progress line).

    Raises:
        ConfigurationError: the file cannot be read.
    """
    try:
        with open(path, encoding="utf-8") as file:
            return sum(1 for line in file if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"--batch {path}: cannot read it ({exc})") from exc


async def _lines(path: str) -> AsyncIterator[str]:
    """Non-blank lines, read in a worker thread so a slow pipe never blocks the loop."""
    if path == "-":
        async for line in anyio.wrap_file(sys.stdin):
            if line.strip():
                yield line.rstrip("\r\n")
        return
    async with await anyio.open_file(path, encoding="utf-8") as file:
        async for line in file:
            if line.strip():
                yield line.rstrip("\r\n")


@dataclass(frozen=True)
class _Settings:
    concurrency: int
    as_json: bool
    timeout_s: float | None
    budget_usd: float | None
    mode: ExecutionMode = "online"


async def _watch_batches(nc: NatsClient, network: str, progress: BatchProgress) -> Subscription:
    """Feed `node.batch` events of `network` to the progress line."""

    async def on_event(msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if isinstance(event, NodeBatch):
            progress.batch_seen(event)

    return await nc.subscribe(f"{EVENTS_PREFIX}.{network}.*.{BATCH_EVENT}", cb=on_event)


async def _run(
    client: Client, network: str, path: str, progress: BatchProgress, settings: _Settings
) -> int:
    """Run every line, print replies in line order; returns how many found no coordinator."""

    async def run(line: str, execution_id: str) -> ExecutionResult:
        request = decode_exec_request(line.encode())
        timeout_s = request.timeout_s if request.timeout_s is not None else settings.timeout_s
        budget_usd = request.budget_usd if request.budget_usd is not None else settings.budget_usd
        return await client.execute(
            network,
            request.input,
            execution_id=request.execution_id or execution_id,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=request.metadata,
            mode=request.mode or settings.mode,
        )

    waiting: dict[int, IndexedResult] = {}
    printed = 0
    unavailable = 0
    stream = stream_map(run, _lines(path), concurrency=settings.concurrency, network=network)
    async with contextlib.aclosing(stream) as results:
        async for result in results:
            progress.add(result)
            unavailable += result.error is not None and result.error.type == _UNAVAILABLE
            waiting[result.index] = result
            if printed in waiting:
                progress.clear()
            while printed in waiting:
                ready = waiting.pop(printed)
                emit(reply_json(ready) if settings.as_json else item_line(ready))
                printed += 1
    return unavailable
