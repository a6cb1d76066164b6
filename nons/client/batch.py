"""Many executions of one network with bounded concurrency: batches and result streams.

`NoN.forward_batch()` and `NoN.stream()` delegate here. Each input is one ordinary
execution (its own execution id, events and trace), so a batch is observable exactly
like single calls; this module only bounds how many run at once, reads inputs lazily
and keeps one item's failure from failing the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

from nons.core.errors import ConfigurationError, ExecutionError
from nons.core.executor import BatchInput
from nons.core.results import ErrorInfo, ExecutionMetadata, ExecutionResult, IndexedResult
from nons.runtime.messages import ExecRequest

if TYPE_CHECKING:
    from nons.core.modes import ExecutionMode
    from nons.core.network import NetworkExecutor, NoN
    from nons.core.types import Content

__all__ = (
    "DEFAULT_CONCURRENCY",
    "BatchInput",
    "IndexedResult",
    "run_batch",
    "stream_map",
    "stream_results",
)

DEFAULT_CONCURRENCY = 8
"""Executions in flight at once when the caller does not say."""

ItemT = TypeVar("ItemT")
"""The item type of `stream_map` (whatever its `run` function takes)."""

Runner: TypeAlias = Callable[[ItemT, str], Awaitable[ExecutionResult]]
"""Runs one item under the execution id the batch chose for it."""


async def run_batch(
    executor: NetworkExecutor,
    network: NoN,
    inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float | None = None,
    budget_usd: float | None = None,
    metadata: dict[str, str] | None = None,
    raise_on_failure: bool = False,
    mode: ExecutionMode | None = None,
) -> list[IndexedResult]:
    """Run `network` once per input and return the results in input order.

    A failed item is a result with `status == "failed"` and its `error`; the other
    items run on. Errors raised by the executor for one item (no coordinator, no
    reply) become such failed results too.

    Args:
        executor: a `Client`, a `LocalRuntime` or anything with `run_network`.
        network: the network to run.
        inputs: read lazily, never more than `concurrency` ahead of the finished ones.
        concurrency: executions in flight at once (at least 1).
        timeout_s: deadline of each execution.
        budget_usd: spending limit of each execution.
        metadata: labels of each execution.
        raise_on_failure: raise the first failure seen instead, cancelling the rest.
        mode: `batch` to run the model calls in Message Batches (see `nons.core.modes`).

    Raises:
        ConfigurationError: `concurrency` is below 1.
        ExecutionError: with `raise_on_failure`, the typed error of the first failed
            item (its `.result` is that item's `IndexedResult`).
    """
    collected: dict[int, IndexedResult] = {}
    stream = stream_results(
        executor,
        network,
        inputs,
        concurrency=concurrency,
        timeout_s=timeout_s,
        budget_usd=budget_usd,
        metadata=metadata,
        mode=mode,
    )
    async with contextlib.aclosing(stream) as results:
        async for result in results:
            if raise_on_failure:
                result.raise_for_status()
            collected[result.index] = result
    return [collected[index] for index in range(len(collected))]


async def stream_results(
    executor: NetworkExecutor,
    network: NoN,
    inputs: Iterable[BatchInput] | AsyncIterable[BatchInput],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float | None = None,
    budget_usd: float | None = None,
    metadata: dict[str, str] | None = None,
    mode: ExecutionMode | None = None,
) -> AsyncGenerator[IndexedResult, None]:
    """Run `network` once per input and yield each result as soon as it completes.

    Results come in completion order; `result.index` says which input each belongs to.
    Failed items are yielded as failed results, never raised. See `stream_map` for
    the concurrency and backpressure rules.

    Raises:
        ConfigurationError: `concurrency` is below 1.
    """

    async def run(item: BatchInput, execution_id: str) -> ExecutionResult:
        if isinstance(item, ExecRequest):
            return await executor.run_network(
                network,
                item.input,
                execution_id=item.execution_id or execution_id,
                timeout_s=item.timeout_s if item.timeout_s is not None else timeout_s,
                budget_usd=item.budget_usd if item.budget_usd is not None else budget_usd,
                metadata=item.metadata if item.metadata is not None else metadata,
                mode=item.mode if item.mode is not None else mode,
            )
        # Any other item is an input: core's `RunRequest` is only ever an `ExecRequest`.
        value = item.output if isinstance(item, ExecutionResult) else cast("Content", item)
        return await executor.run_network(
            network,
            value,
            execution_id=execution_id,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
            mode=mode,
        )

    async with contextlib.aclosing(
        stream_map(run, inputs, concurrency=concurrency, network=network.name)
    ) as results:
        async for result in results:
            yield result


async def stream_map(
    run: Runner[ItemT],
    items: Iterable[ItemT] | AsyncIterable[ItemT],
    *,
    concurrency: int,
    network: str,
) -> AsyncGenerator[IndexedResult, None]:
    """Call `run(item, execution_id)` for every item, `concurrency` at a time, yielding results.

    The engine under `stream_results` (and the CLI's `--batch`, which runs a network
    by name). Rules:

    - At most `concurrency` items are in flight or finished-but-not-yet-taken, so
      `items` is never read further ahead than that: a slow consumer slows the reads.
    - An async `items` is awaited in a task of its own, so results keep flowing while
      the next input is slow to arrive.
    - An `ExecutionError` raised by `run` becomes a failed result of that item under
      the execution id the engine chose (or the one the error names); any other
      exception, or one raised by `items`, cancels the items in flight and propagates.

    Tasks are plain asyncio tasks owned by this generator, not a task group: a task
    group cannot stay open across a `yield`. They are cancelled and awaited when the
    generator closes, however it closes.

    Raises:
        ConfigurationError: `concurrency` is below 1.
    """
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    sync_items = None if isinstance(items, AsyncIterable) else iter(items)
    async_items = aiter(items) if isinstance(items, AsyncIterable) else None
    running: set[asyncio.Task[IndexedResult]] = set()
    reader: asyncio.Task[ItemT | _End] | None = None
    count = 0

    def start(item: ItemT) -> None:
        nonlocal count
        running.add(asyncio.create_task(_run_one(run, item, count, network)))
        count += 1

    try:
        exhausted = False
        while True:
            while not exhausted and reader is None and len(running) < concurrency:
                if async_items is not None:
                    reader = asyncio.create_task(_next_async(async_items))
                    break
                assert sync_items is not None
                item = next(sync_items, _END)
                if isinstance(item, _End):
                    exhausted = True
                else:
                    start(item)
            waiting: set[asyncio.Future[Any]] = {*running, *([reader] if reader else [])}
            if not waiting:
                return
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if reader is not None and reader in done:
                read = reader.result()
                reader = None
                if isinstance(read, _End):
                    exhausted = True
                else:
                    start(read)
            finished = sorted((task for task in running if task in done), key=_task_order)
            running.difference_update(finished)
            for task in finished:
                yield task.result()
    finally:
        await _cancel_all([*running, *([reader] if reader else [])])


class _End:
    """Marks the end of the inputs."""


_END = _End()


async def _next_async(items: AsyncIterator[ItemT]) -> ItemT | _End:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END


async def _run_one(run: Runner[ItemT], item: ItemT, index: int, network: str) -> IndexedResult:
    execution_id = uuid.uuid4().hex
    try:
        result = await run(item, execution_id)
    except ExecutionError as exc:
        named = exc.details.get("execution_id")
        result = ExecutionResult(
            output=None,
            status="failed",
            metadata=ExecutionMetadata(
                execution_id=named if isinstance(named, str) else execution_id,
                network=network,
            ),
            error=ErrorInfo.from_exception(exc),
        )
    return _indexed(result, index)


def _indexed(result: ExecutionResult, index: int) -> IndexedResult:
    return IndexedResult(
        index=index,
        output=result.output,
        status=result.status,
        metadata=result.metadata,
        layer_results=result.layer_results,
        error=result.error,
    )


def _task_order(task: asyncio.Task[IndexedResult]) -> int:
    """Input order among results that finished in the same instant (deterministic)."""
    return task.result().index


async def _cancel_all(tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until they have all finished."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
