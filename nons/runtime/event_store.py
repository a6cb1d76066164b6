"""Keeps execution events in a JetStream stream so `nons trace` can read them afterwards.

Events are published on plain subjects (any client can follow them live); a stream
over `nons.events.>` records them too, bounded in age and size, when the server has
JetStream. Without JetStream nothing is recorded and `nons trace` says so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from nons.core.events import Event, decode_event
from nons.core.names import EVENTS_PREFIX
from nons.runtime.connection import JetStreamUnavailableError

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ("EVENT_STREAM", "ensure_event_stream", "read_execution_events")

EVENT_STREAM = "NONS_EVENTS"
"""Name of the stream recording `nons.events.>`."""

_MAX_AGE_S = 24 * 3600.0
"""How long events are kept."""

_MAX_BYTES = 256 * 1024 * 1024
"""How much the stream may hold before dropping the oldest events."""

logger = logging.getLogger("nons.events")


async def ensure_event_stream(nc: Client, needed_for: str = "recording events") -> None:
    """Create (or keep) the event stream.

    Raises:
        JetStreamUnavailableError: the server has no JetStream (a coordinator that
            records events, `nons up` and sinks need it: they say so and stop, rather
            than run without what `nons trace` and the sinks read).
    """
    js = nc.jetstream()
    config = StreamConfig(
        name=EVENT_STREAM,
        subjects=[f"{EVENTS_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        max_age=_MAX_AGE_S,
        max_bytes=_MAX_BYTES,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        logger.debug("event stream %s exists with other settings; kept as is", EVENT_STREAM)
    except (
        nats.js.errors.ServiceUnavailableError,
        nats.js.errors.NoStreamResponseError,
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
    ):
        raise JetStreamUnavailableError.at(nc, needed_for) from None


async def read_execution_events(
    nc: Client, execution_id: str, *, network: str | None = None, timeout_s: float = 2.0
) -> list[Event]:
    """Every recorded event of one execution, in publication order.

    Raises:
        LookupError: the server has no event stream (no JetStream, or nothing served yet).
    """
    js = nc.jetstream()
    subject = f"{EVENTS_PREFIX}.{network or '*'}.{execution_id}.>"
    try:
        subscription = await js.subscribe(subject, stream=EVENT_STREAM, ordered_consumer=True)
    except (
        nats.js.errors.NotFoundError,
        nats.errors.NoRespondersError,
        nats.js.errors.NoStreamResponseError,
    ) as exc:
        raise LookupError(
            f"no event stream {EVENT_STREAM} on this server (JetStream off?)"
        ) from exc
    events: list[Event] = []
    try:
        while True:
            try:
                msg = await subscription.next_msg(timeout=timeout_s if not events else 0.3)
            except nats.errors.TimeoutError:
                break
            try:
                events.append(decode_event(msg.data))
            except (msgspec.ValidationError, msgspec.DecodeError):
                logger.warning("skipping malformed recorded event on %s", msg.subject)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await subscription.unsubscribe()
    return events
