"""The batch engine on its own: ordering, bounds, laziness and failures, with a fake executor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from nons import NoN
from nons.client.batch import IndexedResult, run_batch, stream_map, stream_results
from nons.core.errors import ConfigurationError, NetworkUnavailableError, OperatorError
from nons.core.results import ErrorInfo, ExecutionMetadata, ExecutionResult
from nons.runtime.messages import ExecRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nons.core.modes import ExecutionMode
    from nons.core.types import Content

NETWORK = NoN.from_operators(["transform"], name="batch-unit")


class FakeExecutor:
    """Runs nothing: each input is a dict naming a delay, and optionally a failure."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: list[dict[str, Any]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.cancelled = 0

    async def run_network(
        self,
        network: NoN,
        input: Content,
        *,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        mode: ExecutionMode | None = None,
    ) -> ExecutionResult:
        assert isinstance(input, dict)
        assert execution_id is not None
        self.calls.append(
            {"input": input, "execution_id": execution_id, "timeout_s": timeout_s,
             "budget_usd": budget_usd, "metadata": metadata}
        )  # fmt: skip
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            gate = input.get("gate")
            if isinstance(gate, str):
                await asyncio.wait_for(self.gates.setdefault(gate, asyncio.Event()).wait(), 10)
            else:
                await asyncio.sleep(float(input.get("delay", 0.0)))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        if input.get("raise") == "unavailable":
            raise NetworkUnavailableError("nobody home", details={"network": network.name})
        if input.get("raise") == "bug":
            raise RuntimeError("a bug in the executor")
        failed = input.get("fail", False)
        return ExecutionResult(
            output=None if failed else input.get("value"),
            status="failed" if failed else "completed",
            metadata=ExecutionMetadata(execution_id=execution_id, network=network.name),
            error=ErrorInfo.from_exception(OperatorError("it broke")) if failed else None,
        )


def item(value: object, delay: float = 0.0, **extra: object) -> dict[str, Any]:
    return {"value": value, "delay": delay, **extra}


async def test_batch_keeps_input_order_when_completions_are_reversed() -> None:
    executor = FakeExecutor()
    inputs = [item(i, delay=0.05 * (5 - i)) for i in range(6)]
    results = await run_batch(executor, NETWORK, inputs, concurrency=6)
    assert [r.output for r in results] == list(range(6))
    assert [r.index for r in results] == list(range(6))
    assert all(isinstance(r, ExecutionResult) for r in results)
    assert len({r.execution_id for r in results}) == 6


async def test_stream_yields_in_completion_order() -> None:
    executor = FakeExecutor()
    inputs = [item("slow", delay=0.3), item("fast")]
    seen = [r.index async for r in stream_results(executor, NETWORK, inputs, concurrency=2)]
    assert seen == [1, 0]


async def test_concurrency_is_a_bound_and_reached() -> None:
    executor = FakeExecutor()
    await run_batch(executor, NETWORK, [item(i, delay=0.02) for i in range(12)], concurrency=3)
    assert executor.max_in_flight == 3
    assert len(executor.calls) == 12


async def test_a_failed_item_and_an_executor_error_do_not_fail_the_others() -> None:
    executor = FakeExecutor()
    inputs = [item(0), {"value": 1, "raise": "unavailable"}, item(2), item(3, fail=True)]
    results = await run_batch(executor, NETWORK, inputs, concurrency=2)
    assert [r.status for r in results] == ["completed", "failed", "completed", "failed"]
    assert results[3].error is not None
    assert results[3].error.type == "operator_error"
    failed = results[1]
    assert failed.error is not None
    assert failed.error.type == "network_unavailable"
    assert failed.metadata.network == "batch-unit"
    assert failed.execution_id == executor.calls[1]["execution_id"]


async def test_raise_on_failure_raises_the_typed_error_and_cancels_the_rest() -> None:
    executor = FakeExecutor()
    inputs: list[Content] = [
        {"value": 0, "raise": "unavailable"},
        {"gate": "never"},
        {"gate": "never"},
    ]
    with pytest.raises(NetworkUnavailableError) as info:
        await run_batch(executor, NETWORK, inputs, concurrency=3, raise_on_failure=True)
    assert isinstance(info.value.result, IndexedResult)  # type: ignore[attr-defined]
    assert info.value.result.index == 0  # type: ignore[attr-defined]
    assert executor.cancelled == 2
    assert executor.in_flight == 0


async def test_an_unexpected_exception_propagates_and_cancels_in_flight_items() -> None:
    executor = FakeExecutor()
    inputs: list[Content] = [{"gate": "never"}, {"value": 1, "raise": "bug"}]
    with pytest.raises(RuntimeError, match="a bug in the executor"):
        await run_batch(executor, NETWORK, inputs, concurrency=2)
    assert executor.cancelled == 1
    assert executor.in_flight == 0


async def test_sync_inputs_are_read_lazily_never_more_than_concurrency_ahead() -> None:
    executor = FakeExecutor()
    pulled = 0

    def endless() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        while True:
            pulled += 1
            yield item(pulled)

    taken = 0
    async with contextlib.aclosing(
        stream_results(executor, NETWORK, endless(), concurrency=4)
    ) as results:
        async for _ in results:
            taken += 1
            assert pulled <= taken + 4
            if taken == 10:
                break
    assert pulled <= 14
    assert executor.in_flight == 0


async def test_async_inputs_are_read_lazily_and_results_flow_while_inputs_wait() -> None:
    executor = FakeExecutor()
    pulled = 0
    release = asyncio.Event()

    async def trickle() -> AsyncIterator[dict[str, Any]]:
        nonlocal pulled
        for value in range(3):
            pulled += 1
            yield item(value)
        await asyncio.wait_for(release.wait(), 10)  # the source stalls
        pulled += 1
        yield item(3)

    got: list[int] = []
    async for result in stream_results(executor, NETWORK, trickle(), concurrency=2):
        got.append(result.index)
        assert pulled <= len(got) + 2
        if len(got) == 3:
            release.set()  # only reached if results kept flowing while the source stalled
    assert sorted(got) == [0, 1, 2, 3]


async def test_exec_request_items_carry_their_own_settings() -> None:
    executor = FakeExecutor()
    inputs: list[Any] = [
        ExecRequest(input=item("a"), execution_id="mine-1", timeout_s=2.0, budget_usd=0.5),
        item("b"),
    ]
    results = await run_batch(
        executor, NETWORK, inputs, concurrency=1, timeout_s=9.0, metadata={"k": "v"}
    )
    assert [r.output for r in results] == ["a", "b"]
    first, second = executor.calls
    assert (first["execution_id"], first["timeout_s"], first["budget_usd"]) == ("mine-1", 2.0, 0.5)
    assert first["metadata"] == {"k": "v"}
    assert (second["timeout_s"], second["budget_usd"]) == (9.0, None)


async def test_result_inputs_run_on_their_output_and_empty_input_gives_nothing() -> None:
    executor = FakeExecutor()
    previous = ExecutionResult(
        output=item("from before"),
        status="completed",
        metadata=ExecutionMetadata(execution_id="x", network="n"),
    )
    [result] = await run_batch(executor, NETWORK, [previous], concurrency=1)
    assert result.output == "from before"
    assert await run_batch(executor, NETWORK, [], concurrency=1) == []


async def test_concurrency_below_one_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        await run_batch(FakeExecutor(), NETWORK, [item(0)], concurrency=0)


async def test_stream_map_runs_any_item_type() -> None:
    async def run(text: str, execution_id: str) -> ExecutionResult:
        if text == "bad":
            raise OperatorError("bad item", details={"execution_id": "named-by-error"})
        return ExecutionResult(
            output=text.upper(),
            status="completed",
            metadata=ExecutionMetadata(execution_id=execution_id, network="n"),
        )

    results = {
        r.index: r async for r in stream_map(run, ["a", "bad", "c"], concurrency=2, network="n")
    }
    assert [results[i].output for i in range(3)] == ["A", None, "C"]
    assert results[1].status == "failed"
    assert results[1].execution_id == "named-by-error"
    with pytest.raises(OperatorError, match="bad item"):
        results[1].raise_for_status()
