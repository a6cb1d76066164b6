"""The NATS connection: fail fast when no server answers, then reconnect forever.

nats-py's first connect to a dead server retries for about two minutes, even with
reconnects off, and its payload check ignores headers (the server then closes the
connection for good). This module bounds the first connect, logs connection events
through `logging` and checks a message's whole size before it is published.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import nats.errors
from nats.aio.client import Client

from nons.core.errors import ConfigurationError, ExecutionError, PayloadTooLargeError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nats.micro.service import Service

__all__ = (
    "DEFAULT_URL",
    "URL_ENV_VAR",
    "ConnectionSettings",
    "JetStreamUnavailableError",
    "NatsUnavailableError",
    "check_message_size",
    "connect_nats",
    "disconnect",
    "max_payload",
    "message_size",
    "redact_url",
    "stop_service",
)

URL_ENV_VAR = "NONS_NATS_URL"
"""Environment variable naming the NATS server to use instead of an embedded one."""

DEFAULT_URL = "nats://127.0.0.1:4222"
"""Where `nats-server` listens when started with no options."""

_HEADER_LINE = b"NATS/1.0\r\n"
_CRLF = b"\r\n"
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_URL_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})

logger = logging.getLogger("nons.runtime")


class NatsUnavailableError(ExecutionError, ConnectionError):
    """No NATS server answered the first connect within the configured attempts."""

    type = "nats_unavailable"
    retryable = True


class JetStreamUnavailableError(NatsUnavailableError):
    """The NATS server answers, but without JetStream (events, caches and sinks need it)."""

    type = "jetstream_unavailable"
    retryable = False

    @classmethod
    def at(cls, nc: Client, needed_for: str) -> JetStreamUnavailableError:
        """The error for server `nc` is connected to, saying what needed JetStream."""
        url = nc.connected_url
        where = redact_url(url.geturl()) if url is not None else "the NATS server"
        return cls(
            f"JetStream is not enabled on the NATS server at {where} ({needed_for} needs it): "
            "start the server with `nats-server -js`, or run `nons up` without --nats-url "
            "to start the embedded server, which has it",
            details={"needed_for": needed_for},
        )


class ConnectionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach NATS: a bounded first connect, then reconnects that never give up."""

    url: str = DEFAULT_URL
    """Server URL (`nats://host:port`; credentials in the URL are never logged)."""
    name: str | None = None
    """Connection name shown in the server's monitoring (`nons-coordinator`, ...)."""
    connect_timeout_s: float = 2.0
    """Bound on one TCP connect plus handshake."""
    max_connect_attempts: int = 3
    """Attempts of the FIRST connect before `NatsUnavailableError`."""
    connect_retry_wait_s: float = 0.2
    """Pause between two attempts of the first connect."""
    reconnect_time_wait_s: float = 1.0
    """Pause between reconnect attempts once connected (reconnects never stop)."""
    ping_interval_s: float = 20.0
    """Interval of client pings that detect a dead server."""
    max_outstanding_pings: int = 3
    """Unanswered pings after which the connection counts as lost."""
    drain_timeout_s: float = 10.0
    """Bound on `drain()` when a process shuts down."""
    pending_size: int = 2 * 1024 * 1024
    """Bytes buffered while reconnecting before publishes fail."""

    def __post_init__(self) -> None:
        """Reject settings that would hang or never connect.

        Raises:
            ConfigurationError: on a URL with another scheme or a non-positive number.
        """
        parts = urlsplit(self.url)
        if parts.scheme not in _URL_SCHEMES or not parts.hostname:
            raise ConfigurationError(
                f"invalid NATS URL {redact_url(self.url)!r}: expected nats://host:port "
                f"(set {URL_ENV_VAR} or pass url=)"
            )
        if self.max_connect_attempts < 1 or self.max_outstanding_pings < 1:
            raise ConfigurationError("max_connect_attempts and max_outstanding_pings must be >= 1")
        waits = (
            self.connect_timeout_s,
            self.connect_retry_wait_s,
            self.reconnect_time_wait_s,
            self.ping_interval_s,
            self.drain_timeout_s,
        )
        if min(waits) <= 0 or self.pending_size < 0:
            raise ConfigurationError("connection timeouts and waits must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, name: str | None = None) -> ConnectionSettings:
        """Settings with the URL from `NONS_NATS_URL` (or the default), named `name`.

        Raises:
            ConfigurationError: when `NONS_NATS_URL` is not a NATS URL.
        """
        url = environ.get(URL_ENV_VAR, "").strip() or DEFAULT_URL
        return cls(url=url, name=name)


async def connect_nats(settings: ConnectionSettings) -> Client:
    """Connect to NATS, failing within a few seconds when no server answers.

    The first connect makes at most `max_connect_attempts` attempts; once connected the
    client reconnects forever, waiting `reconnect_time_wait_s` between attempts, and
    buffers up to `pending_size` bytes meanwhile. Events are logged on `nons.runtime`.

    Raises:
        NatsUnavailableError: when no attempt of the first connect succeeds.
    """
    client = Client()
    events = _ConnectionEvents(client, settings)
    # nats-py annotates these durations as int but passes them to asyncio (floats work).
    options: dict[str, Any] = {
        "connect_timeout": settings.connect_timeout_s,
        "reconnect_time_wait": settings.connect_retry_wait_s,
        "ping_interval": settings.ping_interval_s,
        "drain_timeout": settings.drain_timeout_s,
    }
    try:
        await client.connect(
            servers=[settings.url],
            name=settings.name,
            allow_reconnect=True,
            # Counted by our error callback, which stops the first connect in time.
            max_reconnect_attempts=settings.max_connect_attempts + 1,
            max_outstanding_pings=settings.max_outstanding_pings,
            pending_size=settings.pending_size,
            error_cb=events.on_error,
            disconnected_cb=events.on_disconnected,
            reconnected_cb=events.on_reconnected,
            closed_cb=events.on_closed,
            **options,
        )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        await _close_quietly(client)
        url = redact_url(settings.url)
        last = events.last_error or exc
        raise NatsUnavailableError(
            f"no NATS server answers at {url} after {events.failures or 1} attempt(s) "
            f"({_describe(last)}): start one with `nons server` or set {URL_ENV_VAR}",
            details={"url": url, "attempts": events.failures or 1},
        ) from last
    events.connected = True
    client.options["max_reconnect_attempts"] = -1  # never give up once connected
    client.options["reconnect_time_wait"] = settings.reconnect_time_wait_s
    logger.info("connected to NATS at %s", redact_url(settings.url))
    return client


def max_payload(client: Client) -> int:
    """The largest message (payload plus headers) the connected server accepts."""
    return client.max_payload


def message_size(payload: bytes, headers: Mapping[str, str] | None = None) -> int:
    r"""Bytes the server counts against `max_payload`: payload plus the header block.

    Mirrors nats-py's encoding: `NATS/1.0\r\n`, then `Name: value\r\n` per header
    (names and values stripped, empty names skipped), then `\r\n`. With `headers=None`
    the message has no header block at all; with `{}` it has the empty block.
    """
    size = len(payload)
    if headers is None:
        return size
    size += len(_HEADER_LINE) + len(_CRLF)
    for name, value in headers.items():
        key = name.strip()
        if not key:
            continue
        size += len(key.encode()) + 2 + len(value.strip().translate(_NEWLINES).encode())
        size += len(_CRLF)
    return size


def check_message_size(
    subject: str, payload: bytes, headers: Mapping[str, str] | None, limit: int
) -> int:
    """Return the message's size, or raise when the server would refuse it.

    Publishing a message over the limit makes the server close the connection, so
    callers check first and answer with a typed error instead.

    Raises:
        PayloadTooLargeError: when payload plus headers exceed `limit` bytes.
    """
    size = message_size(payload, headers)
    if size > limit:
        raise PayloadTooLargeError(
            f"message on {subject!r} is {size} bytes with headers, over the server's "
            f"max_payload of {limit} bytes",
            details={"subject": subject, "size": size, "limit": limit},
        )
    return size


def redact_url(url: str) -> str:
    """The URL without its password or token, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _ConnectionEvents:
    """nats-py callbacks that log, and that bound the first connect's attempts."""

    def __init__(self, client: Client, settings: ConnectionSettings) -> None:
        self._client = client
        self._settings = settings
        self._url = redact_url(settings.url)
        self.connected = False
        self.failures = 0
        self.last_error: BaseException | None = None

    async def on_error(self, error: Exception) -> None:
        if self.connected:
            # While reconnecting every refused attempt lands here: keep those quiet.
            level = logging.WARNING if self._client.is_connected else logging.DEBUG
            logger.log(level, "NATS connection error (%s): %s", self._url, _describe(error))
            return
        self.failures += 1
        self.last_error = error
        logger.debug(
            "NATS connect attempt %d/%d to %s failed: %s",
            self.failures,
            self._settings.max_connect_attempts,
            self._url,
            _describe(error),
        )
        if self.failures >= self._settings.max_connect_attempts:
            # nats-py ends the first connect when this error leaves its callback.
            raise nats.errors.NoServersError

    async def on_disconnected(self) -> None:
        if self.connected and not self._client.is_closed:
            logger.warning("disconnected from NATS at %s; reconnecting", self._url)

    async def on_reconnected(self) -> None:
        logger.info("reconnected to NATS at %s", self._url)

    async def on_closed(self) -> None:
        if self.connected:
            logger.info("NATS connection to %s closed", self._url)


async def disconnect(client: Client) -> None:
    """Drain the connection when it is up (what is in flight is delivered), else close it.

    A drain on a connection that is reconnecting raises, and a process stopping while
    its server is down (everything stopped at once) must exit cleanly, not with a
    traceback: its subscriptions and messages are gone with the connection anyway.
    """
    if client.is_closed:
        return
    if client.is_connected:
        try:
            await client.drain()
        except (nats.errors.Error, OSError) as exc:
            logger.debug("draining the NATS connection failed: %s", _describe(exc))
        else:
            return
    await _close_quietly(client)


async def stop_service(service: Service) -> None:
    """Stop a micro service; on a lost connection its unsubscribes cannot be flushed.

    The server drops a dead connection's subscriptions by itself, so the service is
    as stopped as it can be; the failure is logged, not raised.
    """
    try:
        await service.stop()
    except (nats.errors.Error, OSError) as exc:
        logger.warning("service %s stopped without NATS: %s", service.info().name, _describe(exc))


async def _close_quietly(client: Client) -> None:
    try:
        await client.close()
    except (nats.errors.Error, OSError) as exc:  # already broken: nothing more to free
        logger.debug("closing a failed NATS client: %s", _describe(exc))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
