"""Batch-mode progress from the actor: where a call's Message Batch stands, as events.

A node call in batch mode waits while its Message Batch is processed (minutes to
hours). The callback built here publishes each new state of that batch as a
`node.batch` event on `nons.events.<network>.<execution_id>.node.batch`, so the
caller's progress line (and any NATS subscriber) shows the batch's request counts.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from nons.core.events import NodeBatch, encode_event
from nons.core.names import event_subject
from nons.observability.propagation import inject_headers, span_id_hex, trace_id_hex
from nons.runtime.messages import EXECUTION_ID_HEADER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nons.providers.batches import BatchStatus
    from nons.runtime.bus import Bus
    from nons.runtime.messages import NodeCall

__all__ = ("BATCH_EVENT", "batch_publisher")

logger = logging.getLogger("nons.actor")

BATCH_EVENT = "node.batch"
"""Event type (and last subject tokens) of a batch's progress."""


def batch_publisher(
    bus: Bus, network: str, node_id: str, call: NodeCall
) -> Callable[[BatchStatus], Awaitable[None]]:
    """A callback publishing each `BatchStatus` of `call`'s batch as a `node.batch` event.

    Build it under the node call's span: the trace ids are taken once, from there.
    """
    subject = event_subject(network, call.execution_id, BATCH_EVENT)
    headers = inject_headers({EXECUTION_ID_HEADER: call.execution_id})
    trace_id, span_id = trace_id_hex(), span_id_hex()

    async def publish(status: BatchStatus) -> None:
        event = NodeBatch(
            ts=time.time(),
            network=network,
            execution_id=call.execution_id,
            trace_id=trace_id,
            span_id=span_id,
            layer_index=call.layer_index,
            node_id=node_id,
            attempt=call.attempt,
            batch_id=status.batch_id,
            processing_status=status.processing_status,
            processing=status.processing,
            succeeded=status.succeeded,
            errored=status.errored,
            canceled=status.canceled,
            expired=status.expired,
        )
        await bus.publish(subject, encode_event(event), headers)

    return publish
