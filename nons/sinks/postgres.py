"""`nons sink postgres --dsn DSN`: record every execution in PostgreSQL tables, with asyncpg.

The tables (created when missing) are `nons_executions` (one row per execution: status,
timings, tokens, cost, error, trace id, the caller's metadata), `nons_node_calls` (one
row per node call attempt) and `nons_events` (every event's wire JSON). Events carry no
outputs, so neither do the tables: the output goes back to the caller only.

Each batch is one transaction, and `run_sink` acknowledges it after the commit; with
the idempotent statements of `_postgres_sql`, a redelivered batch changes nothing.
When the database goes away (a restart, a failover), the sink reconnects with a
bounded backoff and writes the batch again; it gives up with `SinkUnavailableError`
only after `max_outage_s`, still without acknowledging.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from nons.core.errors import ConfigurationError
from nons.observability.events import (
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from nons.sinks import _postgres_sql as sql
from nons.sinks._consume import SinkUnavailableError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from nons.sinks._consume import ReceivedEvent

__all__ = ("PostgresSettings", "PostgresSink", "redact_dsn")

logger = logging.getLogger("nons.sinks.postgres")

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.UndefinedTableError,  # dropped under us: a new connection recreates it
)
"""Errors after which reconnecting and writing again may succeed."""

_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class PostgresSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where and how the PostgreSQL sink writes (the DSN never appears in its repr)."""

    dsn: str
    """libpq connection string or URI; asyncpg also reads `PGPASSWORD` and `~/.pgpass`."""
    connect_timeout_s: float = 5.0
    """Bound on one connection attempt."""
    first_connect_attempts: int = 3
    """Attempts on start before `SinkUnavailableError` (a wrong DSN fails fast)."""
    command_timeout_s: float = 30.0
    """Bound on one statement."""
    retry_initial_s: float = 0.2
    """First pause before reconnecting; doubled after each failure."""
    retry_max_s: float = 5.0
    """Longest pause between reconnection attempts."""
    max_outage_s: float = 600.0
    """How long one batch may wait for the database before the sink gives up."""

    def __post_init__(self) -> None:
        if not self.dsn.strip():
            raise ConfigurationError("the PostgreSQL DSN is empty")
        if self.first_connect_attempts < 1:
            raise ConfigurationError("first_connect_attempts must be at least 1")
        for field in ("connect_timeout_s", "command_timeout_s", "retry_initial_s"):
            if not getattr(self, field) > 0:
                raise ConfigurationError(f"{field} must be positive")
        if self.retry_max_s < self.retry_initial_s or self.max_outage_s < 0:
            raise ConfigurationError("need retry_max_s >= retry_initial_s and max_outage_s >= 0")

    def __repr__(self) -> str:
        return f"PostgresSettings(dsn={redact_dsn(self.dsn)!r})"

    @property
    def redacted_dsn(self) -> str:
        """The DSN with its password replaced by `***`, for messages and logs."""
        return redact_dsn(self.dsn)


class PostgresSink:
    """An `EventWriter` recording executions in PostgreSQL; use as an async context manager.

    Attributes:
        written: events recorded for the first time by this instance.
        duplicates: redelivered events that were already recorded.
        rejected: events the database refused as data (logged and skipped).
        reconnects: connections made after a lost one.
        failures: writes that failed because the database was unreachable.
    """

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.written = 0
        self.duplicates = 0
        self.rejected = 0
        self.reconnects = 0
        self.failures = 0
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> PostgresSink:
        """Connect (bounded attempts) and create the tables.

        Raises:
            SinkUnavailableError: no database answered.
            ConfigurationError: the database refused (authentication, no such database...).
        """
        last: BaseException | None = None
        for attempt in range(self.settings.first_connect_attempts):
            if attempt:
                await asyncio.sleep(self.settings.retry_initial_s * 2**attempt)
            try:
                self._connection = await self._connect()
                return self
            except _TRANSIENT as exc:
                last = exc
            except asyncpg.PostgresError as exc:
                raise ConfigurationError(
                    f"PostgreSQL at {self.settings.redacted_dsn} refused the sink: "
                    f"{self._describe(exc)}"
                ) from exc
        raise SinkUnavailableError(
            f"PostgreSQL at {self.settings.redacted_dsn} is unavailable: {self._describe(last)}"
        ) from last

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._drop_connection()

    async def write(self, events: Sequence[ReceivedEvent]) -> None:
        """Record a batch in one transaction, reconnecting while the database is away.

        Raises:
            SinkUnavailableError: the database stayed away longer than `max_outage_s`.
            asyncpg.PostgresError: any other refusal (the batch stays unacknowledged).
        """
        deadline = time.monotonic() + self.settings.max_outage_s
        delay = self.settings.retry_initial_s
        isolate = False
        while True:
            try:
                connection = self._connection
                if connection is None or connection.is_closed():
                    connection = self._connection = await self._connect()
                    self.reconnects += 1
                    logger.warning("reconnected to PostgreSQL at %s", self.settings.redacted_dsn)
                await self._write(connection, events, isolate=isolate)
                return
            except asyncpg.DataError:
                if isolate:
                    raise
                isolate = True  # find the event the database refuses; write the others
            except _TRANSIENT as exc:
                self.failures += 1
                await self._drop_connection()
                if time.monotonic() + delay > deadline:
                    raise SinkUnavailableError(
                        f"PostgreSQL at {self.settings.redacted_dsn} unavailable for "
                        f"{self.settings.max_outage_s:g} s: {self._describe(exc)}"
                    ) from exc
                logger.warning(
                    "PostgreSQL unavailable (%s); retrying in %.1f s", self._describe(exc), delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self.settings.dsn,
            timeout=self.settings.connect_timeout_s,
            command_timeout=self.settings.command_timeout_s,
            server_settings={"application_name": "nons-sink"},
        )
        try:
            async with connection.transaction():
                await connection.execute(sql.SCHEMA_LOCK)
                await connection.execute(sql.CREATE_SCHEMA)
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), self.settings.connect_timeout_s)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                connection.terminate()

    async def _write(
        self, connection: asyncpg.Connection, events: Sequence[ReceivedEvent], *, isolate: bool
    ) -> None:
        if not isolate:
            async with connection.transaction():
                counts = [await _record(connection, item) for item in events]
            self._count(counts)
            return
        for item in events:
            try:
                async with connection.transaction():
                    count = await _record(connection, item)
            except asyncpg.DataError as exc:
                logger.warning(
                    "PostgreSQL refused event %d on %s (%s): skipped",
                    item.stream_sequence,
                    item.subject,
                    type(exc).__name__,
                )
                self.rejected += 1
                continue
            self._count([count])

    def _count(self, counts: list[bool | None]) -> None:
        self.written += counts.count(True)
        self.duplicates += counts.count(False)
        self.rejected += counts.count(None)

    def _describe(self, exc: BaseException | None) -> str:
        text = f"{type(exc).__name__}: {exc}" if exc is not None else "no attempt made"
        return text.replace(self.settings.dsn, self.settings.redacted_dsn)


class _Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The fields every event has, readable even for types this version does not know."""

    type: str
    ts: float
    network: str
    execution_id: str
    trace_id: str | None = None
    span_id: str | None = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def redact_dsn(dsn: str) -> str:
    """The DSN with its password (URI or `password=` keyword form) replaced by `***`."""
    if "://" not in dsn:
        return _KEYWORD_PASSWORD.sub(r"\1***", dsn)
    try:
        parts = urlsplit(dsn)
        password = parts.password
    except ValueError:
        return "<unparsable DSN>"
    netloc = parts.netloc
    if password is not None:
        user_info, _, host = netloc.rpartition("@")
        user = user_info.split(":", 1)[0]
        netloc = f"{user}:***@{host}"
    query = _KEYWORD_PASSWORD.sub(r"\1***", parts.query.replace("&", " ")).replace(" ", "&")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


async def _record(connection: asyncpg.Connection, item: ReceivedEvent) -> bool | None:
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
    )


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return value.replace("\x00", "\ufffd")
