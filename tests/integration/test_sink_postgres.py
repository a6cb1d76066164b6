"""`nons sink postgres` against a real PostgreSQL: rows, idempotency, a database restart."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from nons.core.results import ErrorInfo
from nons.core.types import ModelProvider, TokenUsage
from nons.observability.events import (
    Event,
    ExecutionCompleted,
    ExecutionStarted,
    NodeCompleted,
    NodeRetrying,
    NodeStarted,
    encode_event,
)
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.runtime.event_store import ensure_event_stream
from nons.sinks import SinkSettings, run_sink
from nons.sinks.postgres import PostgresSettings, PostgresSink, redact_dsn
from tests.support.postgres import PostgresServer, postgres_server
from tests.support.processes import nons_process
from tests.support.sinks import recorded_event_count, run_inputs, serving, sink_network, unique
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from nats.aio.client import Client as NatsClient


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def dsn(postgres: PostgresServer) -> str:
    """A fresh database of the test's own."""
    name = unique("db").replace("-", "_")
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return postgres.dsn(name)


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await connect_nats(ConnectionSettings(url=nats_url, name="nons-sink-pg-test"))
    try:
        yield client
    finally:
        await client.close()


async def query(dsn: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(statement, *args))
    finally:
        await connection.close()


async def counts(dsn: str) -> tuple[int, int, int]:
    rows = await query(
        dsn,
        "SELECT (SELECT count(*) FROM nons_executions), (SELECT count(*) FROM nons_events), "
        "(SELECT count(*) FROM nons_node_calls)",
    )
    return (rows[0][0], rows[0][1], rows[0][2])


def fast(dsn: str) -> PostgresSettings:
    return PostgresSettings(dsn=dsn, retry_initial_s=0.05, retry_max_s=0.5, max_outage_s=60)


async def test_executions_nodes_and_events_are_recorded_once(
    nats_url: str, nc: NatsClient, dsn: str
) -> None:
    name = unique("sink-pg")
    async with serving(nats_url, sink_network(name)) as client:
        results = await run_inputs(
            client, name, ["hello", "fail now", unique("flaky")], metadata={"who": "test"}
        )
    assert [result.status for result in results] == ["completed", "failed", "completed"]
    expected = await recorded_event_count(nc, name, results)

    settings = SinkSettings(name=unique("pg"), network=name, max_events=expected)
    async with PostgresSink(fast(dsn)) as sink:
        stats = await run_sink(nc, sink, settings)
    assert (stats.events, sink.written, sink.duplicates) == (expected, expected, 0)

    rows = {
        row["execution_id"]: row
        for row in await query(dsn, "SELECT * FROM nons_executions WHERE network = $1", name)
    }
    assert set(rows) == {result.execution_id for result in results}
    ok, failed, flaky = (rows[result.execution_id] for result in results)
    assert ok["status"] == "completed"
    assert ok["total_tokens"] == results[0].metadata.total_tokens > 0
    assert ok["input_tokens"] == results[0].metadata.token_usage.prompt_tokens > 0
    assert ok["output_tokens"] == results[0].metadata.token_usage.completion_tokens > 0
    assert ok["cost_usd"] == pytest.approx(results[0].metadata.cost_usd)
    assert ok["is_mock"] is True
    assert ok["trace_id"] == results[0].metadata.trace_id
    assert json.loads(ok["metadata"]) == {"who": "test"}
    assert ok["started_at"] <= ok["finished_at"]
    assert ok["duration_ms"] > 0
    assert (ok["error_type"], ok["layers"]) == (None, 2)
    assert results[1].error is not None
    assert failed["status"] == "failed"
    assert failed["error_type"] == results[1].error.type
    assert failed["error_message"] == results[1].error.message
    assert failed["finished_at"] is not None
    assert flaky["status"] == "completed"

    calls = await query(
        dsn,
        "SELECT execution_id, layer_index, attempt, status, error_type, total_tokens "
        "FROM nons_node_calls ORDER BY execution_id, layer_index, attempt",
    )
    by_execution: dict[str, list[tuple[Any, ...]]] = {}
    for call in calls:
        by_execution.setdefault(call["execution_id"], []).append(
            (call["layer_index"], call["attempt"], call["status"])
        )
    assert by_execution[results[0].execution_id] == [(0, 1, "ok"), (1, 1, "ok")]
    assert by_execution[results[1].execution_id] == [(0, 1, "failed")]
    assert by_execution[results[2].execution_id] == [(0, 1, "retried"), (0, 2, "ok"), (1, 1, "ok")]
    retried = next(call for call in calls if call["status"] == "retried")
    assert retried["error_type"] == "provider_overloaded"
    assert await counts(dsn) == (3, expected, len(calls))

    # A second sink replays every event into the same tables: nothing changes.
    before = [dict(row) for row in await query(dsn, "SELECT * FROM nons_executions")]
    replay = SinkSettings(name=unique("pg"), network=name, max_events=expected)
    async with PostgresSink(fast(dsn)) as sink:
        stats = await run_sink(nc, sink, replay)
    assert (stats.events, sink.written, sink.duplicates) == (expected, 0, expected)
    assert await counts(dsn) == (3, expected, len(calls))
    after = [dict(row) for row in await query(dsn, "SELECT * FROM nons_executions")]
    assert sorted(after, key=str) == sorted(before, key=str)


async def test_out_of_order_unknown_and_malformed_events(nc: NatsClient, dsn: str) -> None:
    name = unique("sink-pg-raw")
    execution_id = unique("exec")
    now = time.time()
    common: dict[str, Any] = {"network": name, "execution_id": execution_id, "trace_id": "ab" * 16}
    usage = TokenUsage(prompt_tokens=100, completion_tokens=40)
    events: list[Event] = [
        ExecutionCompleted(ts=now + 2, duration_ms=2000.0, usage=usage, cost_usd=0.0123, **common),
        NodeCompleted(ts=now + 1.5, layer_index=0, node_id="n", attempt=2, usage=usage, **common),
        NodeRetrying(
            ts=now + 1,
            layer_index=0,
            node_id="n",
            attempt=2,
            error=ErrorInfo(type="rate_limited", message="slow down", retryable=True),
            **common,
        ),
        NodeStarted(ts=now + 0.5, layer_index=0, node_id="n", attempt=2, **common),
        ExecutionStarted(ts=now, layers=1, metadata={"k": "v"}, **common),
    ]
    await ensure_event_stream(nc)  # raises without JetStream
    js = nc.jetstream()
    for event in events:
        await js.publish(f"nons.events.{name}.{execution_id}.{event.type}", encode_event(event))
    future = json.dumps({"type": "node.delta", "ts": now, **common, "text": "hi\u0000"})
    await js.publish(f"nons.events.{name}.{execution_id}.node.delta", future.encode())
    await js.publish(f"nons.events.{name}.{execution_id}.bad", b"not json at all")

    settings = SinkSettings(name=unique("pg"), network=name, max_events=7)
    async with PostgresSink(fast(dsn)) as sink:
        await run_sink(nc, sink, settings)
    assert (sink.written, sink.rejected) == (6, 1)

    [row] = await query(dsn, "SELECT * FROM nons_executions WHERE execution_id = $1", execution_id)
    assert row["status"] == "completed"  # the late `execution.started` did not reopen it
    assert row["cost_usd"] == pytest.approx(0.0123)
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (100, 40, 140)
    assert row["started_at"].timestamp() == pytest.approx(now, abs=1e-3)
    assert json.loads(row["metadata"]) == {"k": "v"}
    calls = await query(
        dsn,
        "SELECT attempt, status, error_type FROM nons_node_calls WHERE execution_id = $1 "
        "ORDER BY attempt",
        execution_id,
    )
    assert [tuple(call) for call in calls] == [(1, "retried", "rate_limited"), (2, "ok", None)]
    types = await query(dsn, "SELECT type FROM nons_events WHERE execution_id = $1", execution_id)
    assert "node.delta" in {record["type"] for record in types}


async def test_database_restart_mid_way_loses_nothing(
    nats_url: str, nc: NatsClient, dsn: str, postgres: PostgresServer
) -> None:
    name = unique("sink-pg-restart")
    stop = asyncio.Event()
    settings = SinkSettings(name=unique("pg"), network=name, fetch_timeout_s=0.2)
    async with serving(nats_url, sink_network(name)) as client, PostgresSink(fast(dsn)) as sink:
        task = asyncio.ensure_future(run_sink(nc, sink, settings, stop=stop))
        try:
            first = await run_inputs(client, name, ["before"])
            await wait_until(lambda: sink.written > 0, timeout=20, message="first batch")

            postgres.stop()
            during = await run_inputs(client, name, ["during one", "during two"])
            await wait_until(lambda: sink.failures > 0, timeout=20, message="write failures")
            postgres.start()

            results = first + during
            expected = await recorded_event_count(nc, name, results)
            await wait_until(lambda: sink.written == expected, timeout=30, message="catch up")
            assert sink.reconnects >= 1
        finally:
            stop.set()
            stats = await asyncio.wait_for(task, timeout=10)
    assert stats.stopped_by == "signal"
    assert stats.events >= expected  # a batch may have been delivered twice, never lost
    rows = await query(dsn, "SELECT execution_id, status FROM nons_executions")
    assert {(row["execution_id"], row["status"]) for row in rows} == {
        (result.execution_id, "completed") for result in results
    }
    assert (await counts(dsn))[1] == expected


async def test_cli_sink_records_and_never_shows_the_password(
    nats_url: str, nc: NatsClient, dsn: str, tmp_path: Path
) -> None:
    name = unique("sink-pg-cli")
    async with serving(nats_url, sink_network(name)) as client:
        results = await run_inputs(client, name, ["from the cli"])
    expected = await recorded_event_count(nc, name, results)
    secret = "s3cret-Pa55"
    with_password = dsn.replace("postgres@", f"postgres:{secret}@")
    args = ["--nats-url", nats_url, "sink", "postgres", "--dsn", with_password, name]
    with nons_process([*args, "--count", str(expected)], tmp_path=tmp_path) as sink:
        await wait_until(lambda: not sink.running, timeout=30, message=sink.output)
        assert sink.process.returncode == 0, sink.output()
        assert sink.find_line(rf"{expected} events \({expected} recorded")
        assert "postgres:***@" in sink.output()
        assert secret not in sink.output()
    rows = await query(dsn, "SELECT status FROM nons_executions")
    assert [row["status"] for row in rows] == ["completed"]

    unreachable = f"postgresql://postgres:{secret}@127.0.0.1:1/none"
    bad = ["--nats-url", nats_url, "sink", "postgres", "--dsn", unreachable, "--count", "1"]
    with nons_process(bad, tmp_path=tmp_path, name="unreachable") as sink:
        await wait_until(lambda: not sink.running, timeout=30, message=sink.output)
        assert sink.process.returncode == 3, sink.output()
        assert "unavailable" in sink.output()
        assert secret not in sink.output()


def test_redact_dsn() -> None:
    assert redact_dsn("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert (
        redact_dsn("postgresql://u@h/db?password=pw&x=1") == "postgresql://u@h/db?password=***&x=1"
    )
    assert redact_dsn("host=h password='p w' user=u") == "host=h password=*** user=u"
    assert "pw" not in repr(PostgresSettings(dsn="postgresql://u:pw@h/db"))


async def test_cache_tokens_are_recorded_per_node_and_execution(nc: NatsClient, dsn: str) -> None:
    name = unique("sink-pg-cache")
    execution_id = unique("exec")
    now = time.time()
    common: dict[str, Any] = {"network": name, "execution_id": execution_id, "trace_id": "cd" * 16}
    usage = TokenUsage(
        prompt_tokens=10, completion_tokens=5, cache_read_tokens=4000, cache_creation_tokens=1000
    )
    events: list[Event] = [
        ExecutionStarted(ts=now, layers=1, **common),
        NodeCompleted(ts=now + 1, layer_index=0, node_id="n", attempt=1, usage=usage, **common),
        ExecutionCompleted(ts=now + 2, duration_ms=2000.0, usage=usage, cost_usd=0.01, **common),
    ]
    await ensure_event_stream(nc)
    js = nc.jetstream()
    for event in events:
        await js.publish(f"nons.events.{name}.{execution_id}.{event.type}", encode_event(event))
    settings = SinkSettings(name=unique("pg"), network=name, max_events=len(events))
    async with PostgresSink(fast(dsn)) as sink:
        await run_sink(nc, sink, settings)
    columns = "cache_read_tokens, cache_creation_tokens"
    [node] = await query(
        dsn, f"SELECT {columns} FROM nons_node_calls WHERE execution_id = $1", execution_id
    )
    [execution] = await query(
        dsn, f"SELECT {columns} FROM nons_executions WHERE execution_id = $1", execution_id
    )
    assert tuple(node) == tuple(execution) == (4000, 1000)
