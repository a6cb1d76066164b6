"""Token streaming from the actor: each text delta of a node's model call as an event.

A streaming node (`Node(..., stream=True)`) hands every piece of text to a callback
while the model generates it; the callback built here publishes it as a `node.delta`
event on `nons.events.<network>.<execution_id>.node.delta`, with the trace headers of
the node call, so any NATS subscriber can show the text as it is written.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from nons.core.errors import PayloadTooLargeError
from nons.core.events import NodeDelta, encode_event
from nons.core.names import event_subject
from nons.observability.propagation import inject_headers, span_id_hex, trace_id_hex
from nons.runtime.messages import EXECUTION_ID_HEADER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nons.runtime.bus import Bus
    from nons.runtime.messages import NodeCall

__all__ = ("DELTA_EVENT", "delta_publisher")

logger = logging.getLogger("nons.actor")

DELTA_EVENT = "node.delta"
"""Event type (and last subject tokens) of a text delta."""


def delta_publisher(
    bus: Bus, network: str, node_id: str, call: NodeCall
) -> Callable[[str], Awaitable[None]]:
    """A callback that publishes each text delta of `call` as a numbered `node.delta`.

    Call it under the node call's span: the trace headers and ids are taken once,
    from the current context, and put on every delta.
    """
    subject = event_subject(network, call.execution_id, DELTA_EVENT)
    headers = inject_headers({EXECUTION_ID_HEADER: call.execution_id})
    trace_id, span_id = trace_id_hex(), span_id_hex()
    index = 0

    async def publish(text: str) -> None:
        nonlocal index
        event = NodeDelta(
            ts=time.time(),
            network=network,
            execution_id=call.execution_id,
            trace_id=trace_id,
            span_id=span_id,
            layer_index=call.layer_index,
            node_id=node_id,
            attempt=call.attempt,
            index=index,
            text=text,
        )
        index += 1
        try:
            await bus.publish(subject, encode_event(event), headers)
        except PayloadTooLargeError:
            # A delta is a few tokens; one this large is skipped, the final output is not.
            logger.warning("node.delta %d of %s is too large to publish; skipped", index, node_id)

    return publish
