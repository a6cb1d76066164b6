"""The consuming loop every sink shares: a durable JetStream pull consumer on `NONS_EVENTS`.

A sink must not lose an event when it or its database restarts, and must not record
one twice when JetStream delivers it again. So events are read from the stream the
coordinator records them in (never from the live subjects), through a durable consumer
named after the sink, and each batch is acknowledged only after the sink's writer
returned: a sink that stops resumes at the first unacknowledged event, and writers are
idempotent by the event's stream sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from nons.core.errors import ConfigurationError, ExecutionError
from nons.core.events import Event, decode_event
from nons.core.names import events_filter, validate_token
from nons.runtime.event_store import EVENT_STREAM, ensure_event_stream

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = (
    "CONSUMER_PREFIX",
    "EventWriter",
    "ReceivedEvent",
    "SinkSettings",
    "SinkStats",
    "SinkUnavailableError",
    "StopReason",
    "run_sink",
)

CONSUMER_PREFIX = "nons-sink-"
"""Durable consumer names are this prefix plus the sink's name."""

_ACK_FLUSH_TIMEOUT_S = 5
"""Bound on pushing a batch's acknowledgements to the server (lost ones mean redelivery)."""

_MIN_FETCH_S = 0.05
"""Shortest fetch request worth sending."""

logger = logging.getLogger("nons.sinks")

StopReason = Literal["count", "idle", "signal"]
"""Why `run_sink` returned: enough events, nothing new for a while, or asked to stop."""


class SinkUnavailableError(ExecutionError, ConnectionError):
    """A sink's destination (or JetStream) stayed unreachable; nothing was acknowledged."""

    type = "sink_unavailable"
    retryable = True


class SinkSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a sink consumes and when it stops."""

    name: str
    """Sink name: the durable consumer is `nons-sink-<name>`; one name, one position."""
    network: str | None = None
    """Only this network's events (default: every network)."""
    batch_size: int = 64
    """Events fetched, written and acknowledged together."""
    fetch_timeout_s: float = 1.0
    """Bound on one fetch; also how soon a stop request is noticed."""
    max_events: int | None = None
    """Stop after this many events (`--count`)."""
    idle_timeout_s: float | None = None
    """Stop after this many seconds without an event (`--timeout`)."""
    ack_wait_s: float = 30.0
    """How long JetStream waits for an acknowledgement before redelivering (set on creation)."""

    def __post_init__(self) -> None:
        validate_token(self.name, "sink name")
        if self.network is not None:
            validate_token(self.network, "network name")
        if self.batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_events is not None and self.max_events < 1:
            raise ConfigurationError(f"max_events must be at least 1, got {self.max_events}")
        for field, value in (
            ("fetch_timeout_s", self.fetch_timeout_s),
            ("ack_wait_s", self.ack_wait_s),
            ("idle_timeout_s", self.idle_timeout_s),
        ):
            if value is not None and not value > 0:
                raise ConfigurationError(f"{field} must be positive, got {value}")

    @property
    def durable(self) -> str:
        """The durable consumer's name."""
        return f"{CONSUMER_PREFIX}{self.name}"

    @property
    def filter_subject(self) -> str:
        """The event subjects this sink consumes."""
        return events_filter(self.network)


class ReceivedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event as delivered from the stream, before a writer records it."""

    stream_sequence: int
    """Its sequence in `NONS_EVENTS`: unique and increasing, the key of idempotency."""
    subject: str
    """`nons.events.<network>.<execution_id>.<event>`."""
    data: bytes
    """The wire JSON as published."""
    event: Event | None
    """The decoded event; `None` for a type this version does not know or a malformed one."""


class SinkStats(msgspec.Struct, frozen=True, kw_only=True):
    """What one `run_sink` call did."""

    events: int
    """Events handed to the writer and acknowledged."""
    batches: int
    """Batches written."""
    stopped_by: StopReason
    """Why it returned."""


class EventWriter(Protocol):
    """Records events somewhere; `run_sink` acknowledges a batch only after `write` returns."""

    async def write(self, events: Sequence[ReceivedEvent]) -> None:
        """Record a batch durably and idempotently (the same sequence may come again).

        Raising leaves the whole batch unacknowledged, so JetStream delivers it again.
        """
        ...


async def run_sink(
    nc: Client,
    writer: EventWriter,
    settings: SinkSettings,
    *,
    stop: asyncio.Event | None = None,
) -> SinkStats:
    """Consume events into `writer` until `stop` is set, `max_events` or `idle_timeout_s`.

    Creates the event stream when no coordinator has yet, and the durable consumer when
    this sink name is new (it then starts at the oldest recorded event).

    Raises:
        JetStreamUnavailableError: the server has no JetStream.
        SinkUnavailableError: the writer's destination stayed down.
        ConfigurationError: the durable consumer exists with another filter.
    """
    stop = stop or asyncio.Event()
    await ensure_event_stream(nc, needed_for="a sink")
    js = nc.jetstream()
    subscription = await _subscribe(js, settings)
    try:
        return await _consume(nc, subscription, writer, settings, stop)
    finally:
        with contextlib.suppress(nats.errors.Error, ValueError):
            await subscription.unsubscribe()  # the durable consumer (the position) stays


async def _subscribe(
    js: JetStreamContext, settings: SinkSettings
) -> JetStreamContext.PullSubscription:
    try:
        info = await js.consumer_info(EVENT_STREAM, settings.durable)
    except nats.js.errors.NotFoundError:
        info = None
    if info is not None and info.config.filter_subject not in (None, settings.filter_subject):
        raise ConfigurationError(
            f"consumer {settings.durable} already follows {info.config.filter_subject}, "
            f"not {settings.filter_subject}: give this sink another name"
        )
    config = ConsumerConfig(
        description=f"nons sink {settings.name}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_ack_pending=max(1000, settings.batch_size * 4),
    )
    return await js.pull_subscribe(
        settings.filter_subject, durable=settings.durable, stream=EVENT_STREAM, config=config
    )


async def _consume(
    nc: Client,
    subscription: JetStreamContext.PullSubscription,
    writer: EventWriter,
    settings: SinkSettings,
    stop: asyncio.Event,
) -> SinkStats:
    handled = batches = 0
    last_event = time.monotonic()
    reason: StopReason
    while True:
        if stop.is_set():
            reason = "signal"
            break
        if settings.max_events is not None and handled >= settings.max_events:
            reason = "count"
            break
        wait = settings.fetch_timeout_s
        if settings.idle_timeout_s is not None:
            remaining = settings.idle_timeout_s - (time.monotonic() - last_event)
            if remaining <= 0:
                reason = "idle"
                break
            wait = max(min(wait, remaining), _MIN_FETCH_S)
        wanted = settings.batch_size
        if settings.max_events is not None:
            wanted = min(wanted, settings.max_events - handled)
        try:
            messages = await subscription.fetch(wanted, timeout=wait)
        except TimeoutError:  # nats.errors.TimeoutError, or asyncio's from some fetch paths
            continue
        if not messages:
            continue
        if not await _write_holding(writer, messages, settings, stop):
            reason = "signal"
            break
        await _acknowledge(nc, messages)
        handled += len(messages)
        batches += 1
        last_event = time.monotonic()
    return SinkStats(events=handled, batches=batches, stopped_by=reason)


async def _write_holding(
    writer: EventWriter, messages: list[Msg], settings: SinkSettings, stop: asyncio.Event
) -> bool:
    """Write a batch while telling JetStream it is in progress; `False` if stopped first.

    A write that waits for a restarting database may outlast the ack wait; marking the
    messages in progress keeps them from being redelivered meanwhile. A stop request
    cancels the write: nothing is acknowledged, so the batch is delivered again later.
    """
    events = [_received(message) for message in messages]
    write = asyncio.ensure_future(writer.write(events))
    stopping = asyncio.ensure_future(stop.wait())
    holding = asyncio.ensure_future(_hold(messages, settings.ack_wait_s / 3))
    try:
        await asyncio.wait((write, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (write, stopping, holding):
            if not task.done():
                task.cancel()
        await asyncio.gather(write, stopping, holding, return_exceptions=True)
    if write.cancelled():
        return False
    write.result()  # raises the writer's error: nothing is acknowledged
    return True


async def _hold(messages: list[Msg], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for message in messages:
            with contextlib.suppress(nats.errors.Error):
                await message.in_progress()


async def _acknowledge(nc: Client, messages: list[Msg]) -> None:
    for message in messages:
        with contextlib.suppress(nats.errors.Error):
            await message.ack()
    try:
        await nc.flush(timeout=_ACK_FLUSH_TIMEOUT_S)
    except (nats.errors.Error, TimeoutError):
        logger.info("acknowledgements not confirmed; JetStream may deliver that batch again")


def _received(message: Msg) -> ReceivedEvent:
    event: Event | None
    try:
        event = decode_event(message.data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        event = None
    return ReceivedEvent(
        stream_sequence=message.metadata.sequence.stream,
        subject=message.subject,
        data=message.data,
        event=event,
    )
