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
import logging
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from nons.core.errors import ConfigurationError
from nons.sinks import _postgres_sql as sql
from nons.sinks._consume import SinkUnavailableError
from nons.sinks._postgres_rows import record

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
                counts = [await record(connection, item) for item in events]
            self._count(counts)
            return
        for item in events:
            try:
                async with connection.transaction():
                    count = await record(connection, item)
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
