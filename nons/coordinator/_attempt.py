"""One attempt of one node call: through the node's breaker, over NATS, under a span.

`NodeCaller` decides how many attempts a call takes (retries, fallback); this module
makes one and turns every way it can fail into a failed `NodeResult`, so the caller
only ever reads results. The deadline of the attempt, and so the name of its
timeout, comes from `nons.core.deadlines`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from nons.coordinator.subnetworks import call_subnetwork
from nons.core.deadlines import CallDeadline, Limit, call_deadline, timeout_error
from nons.core.errors import (
    CircuitOpenError,
    ExecutionTimeoutError,
    InvalidRequestError,
    NodeLostError,
    PayloadTooLargeError,
)
from nons.core.events import CircuitChanged
from nons.core.layer import Layer, NetworkNode
from nons.core.names import exec_subject, node_subject
from nons.observability.propagation import inject_headers
from nons.runtime.bus import EncodedHeaders, NoResponders, ReplyLost, ReplyTimeout
from nons.runtime.failures import error_info, failed_result
from nons.runtime.liveness import LIVENESS_HEADER
from nons.runtime.messages import EXECUTION_ID_HEADER, NodeCall, decode_node_reply, encode
from nons.runtime.payloads import is_ref

if TYPE_CHECKING:
    import anyio

    from nons.coordinator._state import ExecutionState
    from nons.coordinator._warmup import Warmup
    from nons.coordinator.routing import Routes
    from nons.core.network import NoN
    from nons.core.node import Node
    from nons.core.results import ErrorInfo, NodeResult
    from nons.core.types import ModelConfig
    from nons.resilience.breaker import CircuitBreaker
    from nons.runtime.bus import Bus
    from nons.runtime.event_emitter import EventEmitter
    from nons.runtime.liveness import Liveness
    from nons.runtime.payloads import Payloads

__all__ = ("Attempts", "LayerContext", "Payload")


@dataclass(frozen=True, slots=True)
class Payload:
    """A node call's input: encoded once per layer, and as a value for sub-networks."""

    raw: msgspec.Raw
    value: Any

    @classmethod
    def of(cls, value: Any) -> Payload:
        """`value` and its JSON encoding."""
        return cls(msgspec.Raw(encode(value)), value)


@dataclass(slots=True)
class LayerContext:
    """What a node call needs of its layer, and why the layer stopped early, if it did."""

    index: int
    layer: Layer
    deadline: float
    """Unix time the layer stops waiting: the earlier of its own and its execution's."""
    limit: Limit
    """Which limit `deadline` is (`layer` or `execution`)."""
    limit_s: float
    """The configured length of that limit."""
    scope: anyio.CancelScope
    payload: Payload
    """The layer's input."""
    routed: Payload
    """What a router's branch receives: the input of the layer before."""
    routes: Routes
    """Each router's resolved branch, by router node id."""
    budget_models: dict[str, ModelConfig]
    """Cheaper models the budget moved nodes to, by node id."""
    stopped_by: ErrorInfo | None = None
    """The failure that cancelled the layer under a stopping policy (None: not cancelled)."""
    warmup: Warmup | None = None
    """Prompt-cache warm-up of the layer: who goes first, who waits (None: nobody waits)."""


class Attempts:
    """Makes single attempts of the node calls of one execution."""

    def __init__(
        self,
        network: NoN,
        state: ExecutionState,
        bus: Bus,
        events: EventEmitter,
        tracer: trace.Tracer,
        breakers: dict[str, CircuitBreaker] | None,
        liveness: Liveness | None = None,
    ) -> None:
        self.network = network
        self.state = state
        self.bus = bus
        self.events = events
        self.tracer = tracer
        self.breakers = breakers
        self.liveness = liveness
        """How long an actor (or child coordinator) may stay silent before a call is lost."""
        self.durable = False
        """Calls of a durable execution: actors record their results before replying."""
        self.payloads: Payloads | None = None
        """Resolves node outputs that actors sent by reference."""
        self.traced = False
        """Whether the execution's span records (decided once, by `trace_from`)."""
        self.headers = EncodedHeaders({})
        """Headers of every call of an unsampled execution, encoded once."""
        self._base = {EXECUTION_ID_HEADER: state.execution_id}
        if liveness is not None:
            self._base[LIVENESS_HEADER] = liveness.header

    def trace_from(self, span: trace.Span) -> None:
        """Take the execution's sampling decision and trace headers from its span."""
        self.traced = span.is_recording()
        self.headers = EncodedHeaders(inject_headers(dict(self._base)))

    def span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> Any:
        """A child span when this execution is sampled; nothing at all otherwise.

        The sampling decision is made once per execution (its span records or not),
        so an unsampled execution pays for no layer or node-call span.
        """
        if self.traced:
            return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)
        return contextlib.nullcontext(INVALID_SPAN)

    async def guarded(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        model: ModelConfig | None,
        payload: Payload,
    ) -> NodeResult:
        """One attempt through the node's circuit breaker, when the network has them."""
        breaker = self.breakers.get(node.node_id) if self.breakers is not None else None
        if breaker is None:
            return await self.send(context, node, attempt, model, payload)
        before = breaker.state
        try:
            ticket = breaker.admit()
        except CircuitOpenError as exc:
            result = failed_result(node, exc)
        else:
            result = await self.send(context, node, attempt, model, payload)
            breaker.record(ticket, None if result.succeeded else _health_signal(result))
        if breaker.state != before:
            await self.events.emit(
                CircuitChanged,
                node_id=node.node_id,
                old_state=str(before),
                new_state=str(breaker.state),
            )
            trace.get_current_span().add_event(
                "circuit.changed", {"nons.node_id": node.node_id, "state": str(breaker.state)}
            )
        return result

    async def send(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        model: ModelConfig | None,
        payload: Payload,
    ) -> NodeResult:
        """One call of one node; every failure becomes a failed `NodeResult`."""
        now = time.time()
        deadline = call_deadline(
            now,
            node_timeout_s=None
            if self.state.batch
            else context.layer.layer_config.node_timeout_seconds,
            layer_deadline=context.deadline,
            layer_deadline_limit=context.limit,
            layer_deadline_s=context.limit_s,
        )
        timeout = deadline.remaining(now)
        subject = (
            exec_subject(node.network.name)
            if isinstance(node, NetworkNode)
            else node_subject(self.state.network, node.node_id)
        )
        # Attributes are built only for a span that records (an unsampled call has none).
        sending = (
            self.tracer.start_as_current_span(
                f"send {subject}",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": subject,
                    "messaging.operation.type": "send",
                    "nons.network": self.state.network,
                    "nons.node_id": node.node_id,
                    "nons.layer_index": context.index,
                    "nons.attempt": attempt,
                    "nons.execution_id": self.state.execution_id,
                },
            )
            if self.traced
            else contextlib.nullcontext(INVALID_SPAN)
        )
        with sending as span:
            try:
                if isinstance(node, NetworkNode):
                    max_depth = self.network.network_config.max_depth
                    result = await call_subnetwork(
                        self.bus, self.state, max_depth, node, payload.value, timeout, self.liveness
                    )
                    result = _child_timeout_renamed(result, deadline, context.index)
                else:
                    call = NodeCall(
                        network=self.state.network,
                        node_id=node.node_id,
                        fingerprint=self.state.fingerprint,
                        execution_id=self.state.execution_id,
                        layer_index=context.index,
                        attempt=attempt,
                        input=payload.raw,
                        timeout_s=timeout,
                        timeout_limit=deadline.limit,
                        timeout_limit_s=deadline.limit_s,
                        model=model,
                        durable=self.durable,
                        batch=self.state.batch,
                    )
                    # A sampled call carries its own span as parent: its headers differ.
                    headers = inject_headers(dict(self._base)) if self.traced else self.headers
                    msg = await self.bus.request(
                        subject, encode(call), headers, timeout, liveness=self.liveness
                    )
                    result = decode_node_reply(msg.data)
                    if self.payloads is not None and is_ref(result.output):
                        output = await self.payloads.resolve(result.output)
                        result = msgspec.structs.replace(result, output=output)
            except ReplyLost as exc:
                result = failed_result(
                    node,
                    NodeLostError(
                        f"node {node.node_id!r} (layer {context.index}) was lost: {exc}",
                        details={
                            "node_id": node.node_id,
                            "layer_index": context.index,
                            "silent_s": exc.silent_s,
                        },
                    ),
                )
            except ReplyTimeout:
                result = failed_result(
                    node,
                    timeout_error(
                        deadline.limit,
                        node_id=node.node_id,
                        layer_index=context.index,
                        limit_s=deadline.limit_s,
                    ),
                )
            except (NoResponders, PayloadTooLargeError, InvalidRequestError) as exc:
                result = failed_result(node, exc)
            if not result.succeeded and result.error is not None:
                span.set_status(Status(StatusCode.ERROR, result.error.message))
                span.set_attribute("error.type", result.error.type)
            elif not isinstance(node, NetworkNode):
                span.set_attribute("nons.cost_usd", result.cost.total_cost_usd)
        return result


def _child_timeout_renamed(result: NodeResult, deadline: CallDeadline, index: int) -> NodeResult:
    """A sub-network that ran out of the time its parent gave it names the parent's limit.

    The child's execution limit is the calling node's remaining time, so its
    `execution_timeout` means that the parent's node, layer or execution limit ran out.
    """
    error = result.error
    if error is None or error.type != ExecutionTimeoutError.type:
        return result
    renamed = timeout_error(
        deadline.limit, node_id=result.node_id, layer_index=index, limit_s=deadline.limit_s
    )
    return msgspec.structs.replace(result, error=error_info(renamed))


def _health_signal(result: NodeResult) -> BaseException:
    """What a failed call tells a node's breaker: retryable failures count, others do not."""
    error = result.error
    if error is not None and error.retryable:
        return TimeoutError(error.message)  # counted as "the node is unhealthy"
    return ValueError(error.message if error else "failed")
