"""Node calls of an execution: attempts, retries, breakers, sub-networks, routers, selectors.

Split from `execution.py` so that each module keeps one job: `ExecutionRunner` walks
the layers and this base class makes one layer member's call, however many attempts
it takes. Every failure becomes a failed `NodeResult`; nothing here raises for a
node that failed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from nons.core.deadlines import CallDeadline, Limit, call_deadline, timeout_error
from nons.core.errors import (
    CircuitOpenError,
    ExecutionTimeoutError,
    InvalidRequestError,
    ModelSelectionError,
    PayloadTooLargeError,
)
from nons.core.layer import Layer, LayerMember, NetworkNode
from nons.core.names import exec_subject, node_subject
from nons.core.node import Node
from nons.core.results import ErrorInfo, NodeResult
from nons.core.router import Router
from nons.core.types import ErrorPolicy, ModelConfig
from nons.observability.events import (
    CircuitChanged,
    ModelSelected,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from nons.observability.propagation import inject_headers
from nons.runtime.bus import NoResponders, ReplyTimeout
from nons.runtime.failures import error_info
from nons.runtime.messages import (
    EXECUTION_ID_HEADER,
    NodeCall,
    decode_node_reply,
    encode,
)
from nons.runtime.model_stats import SelectionContext, get_model_stats, record_call, select_model
from nons.runtime.policies import backoff_delay, next_attempt_model, should_retry
from nons.runtime.routing import run_router
from nons.runtime.subnetworks import call_subnetwork

if TYPE_CHECKING:
    from nons.core.network import NoN
    from nons.providers.breaker import CircuitBreaker
    from nons.runtime.bus import Bus
    from nons.runtime.event_emitter import EventEmitter
    from nons.runtime.execution import ExecutionState
    from nons.runtime.routing import Routes

__all__ = ()

_STOPPING_POLICIES = (ErrorPolicy.FAIL_FAST, ErrorPolicy.RETRY_WITH_BACKOFF)
"""Policies under which a node's final failure cancels the rest of its layer."""


@dataclass(frozen=True, slots=True)
class Payload:
    """A node call's input: encoded once per layer, and as a value for sub-networks."""

    raw: msgspec.Raw
    value: Any


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
    stopped_by: ErrorInfo | None = None
    """The failure that cancelled the layer under a stopping policy (None: not cancelled)."""


class NodeCalls:
    """The node-call half of `ExecutionRunner` (it sets every attribute declared here)."""

    network: NoN
    state: ExecutionState
    bus: Bus
    events: EventEmitter
    tracer: trace.Tracer
    breakers: dict[str, CircuitBreaker] | None
    _traced: bool
    _headers: dict[str, str]
    _payload: Payload
    _routed: Payload
    _routes: Routes
    _budget_models: dict[str, ModelConfig]

    def _span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> Any:
        """A child span when this execution is sampled; nothing at all otherwise.

        The sampling decision is made once per execution (its span records or not),
        so an unsampled execution pays for no layer or node-call span.
        """
        if self._traced:
            return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)
        return contextlib.nullcontext(INVALID_SPAN)

    async def _call(
        self, context: LayerContext, slot: int, node: LayerMember, results: list[NodeResult | None]
    ) -> None:
        if isinstance(node, Router):
            await run_router(self, context, slot, node, results)
        else:
            await self._call_node(context, slot, node, results, self._payload)

    async def _select_model(
        self, context: LayerContext, node: Node, payload: Payload
    ) -> ModelConfig | None:
        """The node's selector's choice for this call (raises `ModelSelectionError`)."""
        assert node.model_selector is not None
        budget = self.state.budget_usd
        chosen = await select_model(
            node.model_selector,
            SelectionContext(
                network=self.state.network,
                node_id=node.node_id,
                operator=node.operator_name,
                input=payload.value,
                remaining_budget_usd=None
                if budget is None
                else max(budget - self.state.cost.total_cost_usd, 0.0),
                stats=get_model_stats(),
                default_model=node.model_config,
                layer_index=context.index,
            ),
        )
        if chosen is not None:
            await self.events.emit(
                ModelSelected,
                layer_index=context.index,
                node_id=node.node_id,
                model=chosen.model_name,
                provider=chosen.provider.value if chosen.provider else None,
                selector=node.model_selector,
            )
        return chosen

    async def _call_node(
        self,
        context: LayerContext,
        slot: int,
        node: Node | NetworkNode,
        results: list[NodeResult | None],
        payload: Payload,
    ) -> None:
        config = context.layer.layer_config
        attempt = 1
        model = self._budget_models.get(node.node_id)
        base_model = node.model_config if isinstance(node, Node) else None
        if model is None and isinstance(node, Node) and node.model_selector is not None:
            try:
                model = await self._select_model(context, node, payload)
            except ModelSelectionError as exc:
                await self._fail(context, slot, node, self._failed(node, exc), results)
                return
        has_fallback = base_model is not None and base_model.fallback is not None
        while True:
            await self.events.emit(
                NodeStarted, layer_index=context.index, node_id=node.node_id, attempt=attempt
            )
            started = time.perf_counter()
            result = await self._guarded_attempt(context, node, attempt, model, payload)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if isinstance(node, Node):
                record_call(model or base_model, result, elapsed_ms)
            if result.succeeded:
                results[slot] = (
                    result if attempt == 1 else msgspec.structs.replace(result, attempts=attempt)
                )
                await self.events.emit(
                    NodeCompleted,
                    layer_index=context.index,
                    node_id=node.node_id,
                    attempt=attempt,
                    duration_ms=elapsed_ms,
                    usage=result.usage,
                    cost_usd=result.cost.total_cost_usd,
                    is_mock=result.is_mock,
                    cached=result.cached,
                )
                return
            error = result.error or ErrorInfo(type="internal_error", message="no error given")
            delay = backoff_delay(config, attempt)
            # A retry that could not even start before the layer's deadline is not made:
            # it would only run out of a limit that has already passed.
            if should_retry(config, error, attempt, has_fallback) and (
                context.deadline - time.time() > delay
            ):
                fallback = next_attempt_model(config, base_model, attempt)
                model = fallback or model
                trace.get_current_span().add_event(
                    "node.fallback" if fallback else "node.retrying",
                    {
                        "nons.node_id": node.node_id,
                        "nons.attempt": attempt + 1,
                        "error.type": error.type,
                        "nons.delay_s": delay,
                    },
                )
                await self.events.emit(
                    NodeRetrying,
                    layer_index=context.index,
                    node_id=node.node_id,
                    attempt=attempt + 1,
                    delay_s=delay,
                    error=error,
                    model=fallback.model_name if fallback else None,
                )
                await anyio.sleep(delay)
                attempt += 1
                continue
            final = self._final_failure(node, result, attempt)
            if final.status == "fallback":
                results[slot] = final
                await self.events.emit(
                    NodeCompleted,
                    layer_index=context.index,
                    node_id=node.node_id,
                    attempt=attempt,
                    duration_ms=elapsed_ms,
                    status="fallback",
                )
                return
            await self._fail(context, slot, node, final, results)
            return

    async def _fail(
        self,
        context: LayerContext,
        slot: int,
        node: LayerMember,
        result: NodeResult,
        results: list[NodeResult | None],
    ) -> None:
        """Record a node's final failure, tell the world, and stop the layer if the policy says."""
        results[slot] = result
        await self.events.emit(
            NodeFailed,
            layer_index=context.index,
            node_id=node.node_id,
            attempt=result.attempts,
            error=result.error or ErrorInfo(type="internal_error", message="no error given"),
        )
        if context.layer.layer_config.error_policy in _STOPPING_POLICIES:
            context.stopped_by = result.error
            context.scope.cancel()

    @staticmethod
    def _final_failure(node: LayerMember, result: NodeResult, attempt: int) -> NodeResult:
        if isinstance(node, Node) and node.has_fallback_output:
            return NodeResult(
                node_id=node.node_id,
                operator=node.operator_name,
                status="fallback",
                output=node.fallback_output,
                error=result.error,
                attempts=attempt,
            )
        return msgspec.structs.replace(result, attempts=attempt)

    async def _guarded_attempt(
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
            return await self._attempt(context, node, attempt, model, payload)
        before = breaker.state
        try:
            ticket = breaker.admit()
        except CircuitOpenError as exc:
            result = self._failed(node, exc)
        else:
            result = await self._attempt(context, node, attempt, model, payload)
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

    async def _attempt(
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
            node_timeout_s=context.layer.layer_config.node_timeout_seconds,
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
        with self._span(
            f"send {subject}",
            SpanKind.PRODUCER,
            {
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.operation.type": "send",
                "nons.network": self.state.network,
                "nons.node_id": node.node_id,
                "nons.layer_index": context.index,
                "nons.attempt": attempt,
                "nons.execution_id": self.state.execution_id,
            },
        ) as span:
            try:
                if isinstance(node, NetworkNode):
                    max_depth = self.network.network_config.max_depth
                    result = await call_subnetwork(
                        self.bus, self.state, max_depth, node, payload.value, timeout
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
                    )
                    headers = (
                        inject_headers({EXECUTION_ID_HEADER: self.state.execution_id})
                        if self._traced
                        else self._headers
                    )
                    msg = await self.bus.request(subject, encode(call), headers, timeout)
                    result = decode_node_reply(msg.data)
            except ReplyTimeout:
                result = self._failed(
                    node,
                    timeout_error(
                        deadline.limit,
                        node_id=node.node_id,
                        layer_index=context.index,
                        limit_s=deadline.limit_s,
                    ),
                )
            except (NoResponders, PayloadTooLargeError, InvalidRequestError) as exc:
                result = self._failed(node, exc)
            if not result.succeeded and result.error is not None:
                span.set_status(Status(StatusCode.ERROR, result.error.message))
                span.set_attribute("error.type", result.error.type)
            elif not isinstance(node, NetworkNode):
                span.set_attribute("nons.cost_usd", result.cost.total_cost_usd)
        return result

    @staticmethod
    def _failed(node: LayerMember, exc: BaseException) -> NodeResult:
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="failed",
            error=error_info(exc),
        )


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
