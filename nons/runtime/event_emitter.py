"""Publishes one execution's events, in order, with its trace context in the headers.

All events of an execution leave the coordinator over one connection, so NATS keeps
their order. A failure to publish an event is logged and counted; it never breaks
the execution it describes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from nons.core.events import Event, encode_event
from nons.core.names import EVENTS_PREFIX
from nons.observability.propagation import inject_headers, span_id_hex
from nons.runtime.bus import EncodedHeaders
from nons.runtime.messages import EXECUTION_ID_HEADER

if TYPE_CHECKING:
    from nons.runtime.bus import Bus

__all__ = ("EventEmitter",)

logger = logging.getLogger("nons.events")


class EventEmitter:
    """Builds and publishes the events of one execution (or does nothing when disabled)."""

    def __init__(
        self, bus: Bus, network: str, execution_id: str, trace_id: str | None, *, enabled: bool
    ) -> None:
        self.bus = bus
        self.network = network
        self.execution_id = execution_id
        self.trace_id = trace_id
        self.enabled = enabled
        self.failures = 0
        # Built once, inside the execution's span: every event carries the execution's
        # trace context, and an unsampled execution pays for no per-event lookup.
        current = trace.get_current_span()
        self._traced = current.is_recording()
        self._span_id = span_id_hex(current)
        self._headers = EncodedHeaders(inject_headers({EXECUTION_ID_HEADER: execution_id}))
        self._prefix = f"{EVENTS_PREFIX}.{network}.{execution_id}."

    async def emit(self, event_class: type[Event], **fields: Any) -> None:
        """Publish one event; the common fields are filled in here."""
        if not self.enabled:
            return
        span_id = span_id_hex(trace.get_current_span()) if self._traced else self._span_id
        event = event_class(
            ts=time.time(),
            network=self.network,
            execution_id=self.execution_id,
            trace_id=self.trace_id,
            span_id=span_id,
            **fields,
        )
        subject = self._prefix + event.type
        try:
            await self.bus.publish(subject, encode_event(event), self._headers)
        except Exception:
            self.failures += 1
            logger.warning("could not publish %s on %s", event.type, subject, exc_info=True)
