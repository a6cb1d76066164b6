"""How one recorded event becomes rows: its event-log row, then the summaries.

The execution and node-call summary tables fold each newly recorded event in.

Split from `postgres.py` (connection, retries, schema) so each keeps one job.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from nons.core.events import (
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from nons.sinks import _postgres_sql as sql

if TYPE_CHECKING:
    import asyncpg

    from nons.sinks._consume import ReceivedEvent

__all__ = ("record",)

logger = logging.getLogger("nons.sinks.postgres")


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The fields every event has, readable even for types this version does not know."""

    type: str
    ts: float
    network: str
    execution_id: str
    trace_id: str | None = None
    span_id: str | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


async def record(connection: asyncpg.Connection, item: ReceivedEvent) -> bool | None:
    """Record one event: True when new, False when seen before, None when unreadable."""
    try:
        envelope = _ENVELOPE.decode(item.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        logger.warning("skipping event %d on %s: malformed", item.stream_sequence, item.subject)
        return None
    inserted = await connection.fetchval(
        sql.INSERT_EVENT,
        envelope.execution_id,
        item.stream_sequence,
        envelope.network,
        _text(envelope.type),
        _time(envelope.ts),
        envelope.trace_id,
        envelope.span_id,
        item.data.decode("utf-8", "replace").replace("\\u0000", "\\ufffd"),
    )
    if inserted is None:
        return False
    await _summarise(connection, item)
    return True


async def _summarise(connection: asyncpg.Connection, item: ReceivedEvent) -> None:
    """Fold one newly recorded event into `nons_executions` and `nons_node_calls`."""
    event = item.event
    if isinstance(event, ExecutionStarted):
        metadata = json.dumps(event.metadata) if event.metadata is not None else None
        await connection.execute(
            sql.EXECUTION_STARTED,
            event.execution_id,
            event.network,
            _time(event.ts),
            event.layers,
            event.trace_id,
            metadata,
        )
    elif isinstance(event, ExecutionCompleted | ExecutionFailed):
        failed = isinstance(event, ExecutionFailed)
        error = event.error if isinstance(event, ExecutionFailed) else None
        usage = event.usage
        await connection.execute(
            sql.EXECUTION_FINISHED,
            event.execution_id,
            event.network,
            "failed" if failed else getattr(event, "status", "completed"),
            _time(event.ts - event.duration_ms / 1000.0),
            _time(event.ts),
            event.duration_ms,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cache_read_tokens,
            usage.cache_creation_tokens,
            usage.total_tokens,
            event.cost_usd,
            getattr(event, "is_mock", False),
            error.type if error else None,
            _text(error.message) if error else None,
            event.layer_index if isinstance(event, ExecutionFailed) else None,
            event.trace_id,
        )
    elif isinstance(event, NodeStarted):
        await connection.execute(
            sql.NODE_STARTED,
            event.execution_id,
            event.layer_index,
            event.node_id,
            event.attempt,
            event.network,
            _time(event.ts),
        )
    elif isinstance(event, NodeCompleted | NodeFailed | NodeRetrying):
        await connection.execute(sql.NODE_FINISHED, *_node_row(event))


def _node_row(event: NodeCompleted | NodeFailed | NodeRetrying) -> tuple[object, ...]:
    if isinstance(event, NodeCompleted):
        usage = event.usage
        return (
            event.execution_id,
            event.layer_index,
            event.node_id,
            event.attempt,
            event.network,
            event.status,
            _time(event.ts - event.duration_ms / 1000.0),
            _time(event.ts),
            event.duration_ms,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            event.cost_usd,
            event.is_mock,
            None,
            None,
            usage.cache_read_tokens,
            usage.cache_creation_tokens,
        )
    # A retry announces attempt n + 1: the row it closes is attempt n's.
    attempt = event.attempt - 1 if isinstance(event, NodeRetrying) else event.attempt
    status = "retried" if isinstance(event, NodeRetrying) else "failed"
    return (
        event.execution_id,
        event.layer_index,
        event.node_id,
        attempt,
        event.network,
        status,
        None,
        _time(event.ts),
        None,
        0,
        0,
        0,
        0.0,
        False,
        event.error.type,
        _text(event.error.message),
        0,
        0,
    )


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return value.replace("\x00", "\ufffd")
