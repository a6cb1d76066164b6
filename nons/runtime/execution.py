"""One execution of one network: fan each layer out over NATS, gather, apply the policy.

The per-execution state is one serialisable Struct (`ExecutionState`) and each node
result is self-contained, so that checkpointing an execution to JetStream later is a
small step. Node calls of a layer run in one `asyncio.gather` under an anyio cancel
scope holding the layer deadline: a task per node is what the raw nats-py floor pays
too, and the cancel scope gives fail-fast and timeouts without more tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from nons.core.errors import (
    BudgetExceededError,
    CircuitOpenError,
    ExecutionError,
    ExecutionTimeoutError,
    InvalidRequestError,
    LayerTimeoutError,
    NodeTimeoutError,
    PayloadTooLargeError,
)
from nons.core.layer import Layer, LayerMember, NetworkNode
from nons.core.names import exec_subject, node_subject
from nons.core.node import Node
from nons.core.results import ErrorInfo, ExecutionStatus, LayerResult, NodeResult
from nons.core.types import CostInfo, ErrorPolicy, ModelConfig, TokenUsage
from nons.observability.events import (
    BudgetExceeded,
    CircuitChanged,
    CostAlert,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    NodeCompleted,
    NodeFailed,
    NodeRerouted,
    NodeRetrying,
    NodeStarted,
)
from nons.observability.propagation import inject_headers, span_id_hex, trace_id_hex
from nons.runtime.budget import plan_layer
from nons.runtime.bus import NoResponders, ReplyTimeout
from nons.runtime.failures import error_info
from nons.runtime.messages import (
    DEPTH_HEADER,
    EXECUTION_ID_HEADER,
    ExecReply,
    ExecRequest,
    NodeCall,
    decode_exec_reply,
    decode_node_reply,
    encode,
)
from nons.runtime.policies import backoff_delay, layer_outcome, next_attempt_model, should_retry

if TYPE_CHECKING:
    from nons.core.network import NoN
    from nons.providers.breaker import CircuitBreaker
    from nons.runtime.bus import Bus
    from nons.runtime.event_emitter import EventEmitter

__all__ = ("ExecutionRunner", "ExecutionState")

_PARTIAL_POLICIES = frozenset({ErrorPolicy.RETURN_PARTIAL, ErrorPolicy.SKIP_AND_CONTINUE})
"""Policies under which a budget stop returns what was done so far as `partial`."""


class ExecutionState(msgspec.Struct, kw_only=True):
    """Everything a coordinator knows about one execution in flight."""

    execution_id: str
    """Id of the execution."""
    network: str
    """Network name."""
    fingerprint: str
    """Spec fingerprint the execution runs under."""
    input: Any
    """The execution's input."""
    started_at: float
    """Unix time of acceptance."""
    deadline: float
    """Unix time after which nothing new is started."""
    depth: int = 0
    """Nesting depth (0 for a top-level execution)."""
    budget_usd: float | None = None
    """Spending limit, if any."""
    metadata: dict[str, str] | None = None
    """Caller's labels."""
    trace_id: str | None = None
    """Trace of the execution."""
    next_layer: int = 0
    """First layer that has not finished."""
    current_input: Any = None
    """Input of `next_layer`."""
    layers: list[LayerResult] = msgspec.field(default_factory=list)
    """Finished layers."""
    usage: TokenUsage = TokenUsage()
    """Tokens so far."""
    cost: CostInfo = CostInfo()
    """Cost so far."""


@dataclass(frozen=True)
class _Layer:
    index: int
    layer: Layer
    deadline: float
    scope: anyio.CancelScope


class ExecutionRunner:
    """Runs one execution; `run()` always returns a reply, never raises for bad input."""

    def __init__(
        self,
        network: NoN,
        state: ExecutionState,
        bus: Bus,
        events: EventEmitter,
        tracer: trace.Tracer,
        breakers: dict[str, CircuitBreaker] | None = None,
    ) -> None:
        self.network = network
        self.breakers = breakers
        self.state = state
        self.bus = bus
        self.events = events
        self.tracer = tracer
        self._headers: dict[str, str] = {}
        self._traced = False
        self._input_raw = msgspec.Raw(b"null")
        self._budget_models: dict[str, ModelConfig] = {}
        self._alerted = False

    def _span(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> Any:
        """A child span when this execution is sampled; nothing at all otherwise.

        The sampling decision is made once per execution (its span records or not),
        so an unsampled execution pays for no layer or node-call span.
        """
        if self._traced:
            return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)
        return contextlib.nullcontext(INVALID_SPAN)

    async def run(self, span: trace.Span) -> ExecReply:
        """Run every layer in order and build the reply."""
        state = self.state
        state.current_input = state.input
        self._traced = span.is_recording()
        self._headers = inject_headers({EXECUTION_ID_HEADER: state.execution_id})
        await self.events.emit(
            ExecutionStarted, layers=len(self.network.layers), metadata=state.metadata
        )
        status: ExecutionStatus = "completed"
        error: ErrorInfo | None = None
        for index in range(state.next_layer, len(self.network.layers)):
            layer = self.network.layers[index]
            self._input_raw = msgspec.Raw(encode(state.current_input))
            refusal = await self._check_budget(index, layer)
            if refusal is not None:
                error = refusal
                partial = layer.layer_config.error_policy in _PARTIAL_POLICIES
                status = "partial" if partial and state.layers else "failed"
                break
            layer_result, error = await self._run_layer(index, layer)
            state.layers.append(layer_result)
            state.usage = state.usage + layer_result.usage
            state.cost = state.cost + layer_result.cost
            state.next_layer = index + 1
            await self._check_cost_alert()
            if error is not None:
                status = "failed"
                break
            if layer_result.status == "partial":
                status = "partial"
            state.current_input = layer_result.output
        return await self._finish(span, status, error)

    async def _check_budget(self, index: int, layer: Layer) -> ErrorInfo | None:
        """Refuse a layer whose worst case would pass the budget; route nodes to budget models."""
        self._budget_models = {}
        budget = self.state.budget_usd
        if budget is None:
            return None
        spent = self.state.cost.total_cost_usd
        plan = plan_layer(layer, len(self._input_raw), spent, budget)
        if not plan.fits:
            await self.events.emit(
                BudgetExceeded,
                layer_index=index,
                spent_usd=spent,
                budget_usd=budget,
                worst_case_usd=plan.worst_case_usd,
            )
            return ErrorInfo.from_exception(
                BudgetExceededError(
                    f"budget of ${budget:.4f} would be exceeded by layer {index}: spent "
                    f"${spent:.4f}, layer worst case ${plan.worst_case_usd:.4f}",
                    details={
                        "layer_index": index,
                        "spent_usd": spent,
                        "budget_usd": budget,
                        "worst_case_usd": plan.worst_case_usd,
                    },
                )
            )
        self._budget_models = plan.models
        for node_id, model in plan.models.items():
            await self.events.emit(
                NodeRerouted,
                layer_index=index,
                node_id=node_id,
                model=model.model_name,
                provider=model.provider.value if model.provider else None,
            )
        return None

    async def _check_cost_alert(self) -> None:
        threshold = self.network.network_config.cost_alert_usd
        spent = self.state.cost.total_cost_usd
        if threshold is not None and not self._alerted and spent > threshold:
            self._alerted = True
            await self.events.emit(CostAlert, spent_usd=spent, threshold_usd=threshold)

    async def _finish(
        self, span: trace.Span, status: ExecutionStatus, error: ErrorInfo | None
    ) -> ExecReply:
        state = self.state
        duration_ms = (time.time() - state.started_at) * 1000.0
        is_mock = any(node.is_mock for layer in state.layers for node in layer.nodes)
        cost_usd = state.cost.total_cost_usd
        span.set_attribute("nons.cost_usd", cost_usd)
        span.set_attribute("nons.status", status)
        if status == "failed" and error is not None:
            span.set_status(Status(StatusCode.ERROR, error.message))
            span.set_attribute("error.type", error.type)
            await self.events.emit(
                ExecutionFailed,
                error=error,
                duration_ms=duration_ms,
                layer_index=error.details.get("layer_index"),
                usage=state.usage,
                cost_usd=cost_usd,
            )
        else:
            await self.events.emit(
                ExecutionCompleted,
                status=status,
                duration_ms=duration_ms,
                usage=state.usage,
                cost_usd=cost_usd,
                is_mock=is_mock,
                error=error,
            )
        return ExecReply(
            execution_id=state.execution_id,
            network=state.network,
            status=status,
            output=None if status == "failed" else state.current_input,
            usage=state.usage,
            cost_usd=cost_usd,
            duration_ms=duration_ms,
            error=error,
            trace_id=state.trace_id,
            is_mock=is_mock,
            layers=state.layers,
        )

    async def _run_layer(self, index: int, layer: Layer) -> tuple[LayerResult, ErrorInfo | None]:
        config = layer.layer_config
        started = time.time()
        deadline = min(self.state.deadline, started + config.timeout_seconds)
        node_ids = [node.node_id for node in layer.nodes]
        results: list[NodeResult | None] = [None] * len(layer.nodes)
        with self._span(
            f"layer {index}",
            SpanKind.INTERNAL,
            {"nons.network": self.state.network, "nons.layer_index": index},
        ) as span:
            await self.events.emit(LayerStarted, layer_index=index, node_ids=node_ids)
            with anyio.move_on_after(max(deadline - time.time(), 0.0)) as scope:
                context = _Layer(index, layer, deadline, scope)
                if len(layer.nodes) == 1:
                    # No task for a lone node: its NodeStarted event and its request then
                    # leave in the same socket write as LayerStarted (one syscall, not two).
                    await self._call(context, 0, layer.nodes[0], results)
                else:
                    await asyncio.gather(
                        *(
                            self._call(context, slot, node, results)
                            for slot, node in enumerate(layer.nodes)
                        )
                    )
            final = [
                result if result is not None else self._unfinished(context, node)
                for node, result in zip(layer.nodes, results, strict=True)
            ]
            status, error = layer_outcome(config, index, final)
            duration_ms = (time.time() - started) * 1000.0
            layer_result = LayerResult(
                layer_index=index, status=status, nodes=final, duration_ms=duration_ms
            )
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error.message))
            await self.events.emit(
                LayerCompleted,
                layer_index=index,
                status=status,
                duration_ms=duration_ms,
                successful_nodes=layer_result.successful_nodes,
                failed_nodes=layer_result.failed_nodes,
            )
        return layer_result, error

    def _unfinished(self, context: _Layer, node: LayerMember) -> NodeResult:
        """The result of a node that had no answer when its layer stopped waiting."""
        now = time.time()
        details = {"layer_index": context.index, "node_id": node.node_id}
        error: ExecutionError
        if now >= self.state.deadline - 1e-3:
            error = ExecutionTimeoutError(
                f"execution ran out of time in layer {context.index} waiting for "
                f"node {node.node_id!r}",
                details=details,
            )
        elif now >= context.deadline - 1e-3:
            error = LayerTimeoutError(
                f"layer {context.index} timed out waiting for node {node.node_id!r}",
                details=details,
            )
        else:
            return NodeResult(
                node_id=node.node_id,
                operator=node.operator_name,
                status="skipped",
                error=ErrorInfo(
                    type="cancelled",
                    message="cancelled: another node of the layer failed "
                    "and the policy is fail_fast",
                    details=details,
                ),
            )
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="failed",
            error=ErrorInfo.from_exception(error),
        )

    async def _call(
        self, context: _Layer, slot: int, node: LayerMember, results: list[NodeResult | None]
    ) -> None:
        config = context.layer.layer_config
        attempt = 1
        model = self._budget_models.get(node.node_id)
        base_model = getattr(node, "model_config", None)
        has_fallback = base_model is not None and base_model.fallback is not None
        while True:
            await self.events.emit(
                NodeStarted, layer_index=context.index, node_id=node.node_id, attempt=attempt
            )
            started = time.perf_counter()
            result = await self._guarded_attempt(context, node, attempt, model)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
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
                )
                return
            error = result.error or ErrorInfo(type="internal_error", message="no error given")
            remaining = context.deadline - time.time()
            if should_retry(config, error, attempt, has_fallback) and remaining > 0:
                delay = min(backoff_delay(config, attempt), remaining)
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
            results[slot] = self._final_failure(node, result, attempt)
            final = results[slot]
            if final is not None and final.status == "fallback":
                await self.events.emit(
                    NodeCompleted,
                    layer_index=context.index,
                    node_id=node.node_id,
                    attempt=attempt,
                    duration_ms=elapsed_ms,
                    status="fallback",
                )
                return
            await self.events.emit(
                NodeFailed,
                layer_index=context.index,
                node_id=node.node_id,
                attempt=attempt,
                error=error,
            )
            if config.error_policy in (ErrorPolicy.FAIL_FAST, ErrorPolicy.RETRY_WITH_BACKOFF):
                context.scope.cancel()
            return

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
        self, context: _Layer, node: LayerMember, attempt: int, model: Any
    ) -> NodeResult:
        """One attempt through the node's circuit breaker, when the network has them."""
        breaker = self.breakers.get(node.node_id) if self.breakers is not None else None
        if breaker is None:
            return await self._attempt(context, node, attempt, model)
        before = breaker.state
        try:
            ticket = breaker.admit()
        except CircuitOpenError as exc:
            result = self._failed(node, exc)
        else:
            result = await self._attempt(context, node, attempt, model)
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
        self, context: _Layer, node: LayerMember, attempt: int, model: Any
    ) -> NodeResult:
        """One call of one node; every failure becomes a failed `NodeResult`."""
        config = context.layer.layer_config
        timeout = context.deadline - time.time()
        if config.node_timeout_seconds is not None:
            timeout = min(timeout, config.node_timeout_seconds)
        is_network = isinstance(node, NetworkNode)
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
                    result = await self._call_network(node, timeout)
                else:
                    call = NodeCall(
                        network=self.state.network,
                        node_id=node.node_id,
                        fingerprint=self.state.fingerprint,
                        execution_id=self.state.execution_id,
                        layer_index=context.index,
                        attempt=attempt,
                        input=self._input_raw,
                        timeout_s=timeout,
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
                    NodeTimeoutError(
                        f"node {node.node_id!r} gave no reply within {max(timeout, 0):.2f}s",
                        details={"node_id": node.node_id, "layer_index": context.index},
                    ),
                )
            except (NoResponders, PayloadTooLargeError, InvalidRequestError) as exc:
                result = self._failed(node, exc)
            if not result.succeeded and result.error is not None:
                span.set_status(Status(StatusCode.ERROR, result.error.message))
                span.set_attribute("error.type", result.error.type)
            elif not is_network:
                span.set_attribute("nons.cost_usd", result.cost.total_cost_usd)
        return result

    async def _call_network(self, node: NetworkNode, timeout_s: float) -> NodeResult:
        """Run a sub-network through its own exec subject, as any client would."""
        child = node.network
        max_depth = self.network.network_config.max_depth
        if self.state.depth + 1 > max_depth:
            return self._failed(
                node,
                InvalidRequestError(
                    f"sub-network {child.name!r} would nest deeper than max_depth={max_depth}",
                    details={"node_id": node.node_id, "max_depth": max_depth},
                ),
            )
        request = ExecRequest(
            input=self.state.current_input,
            execution_id=f"{self.state.execution_id}-{node.node_id}"[-128:],
            timeout_s=max(timeout_s, 1e-3),
            budget_usd=None
            if self.state.budget_usd is None
            else max(self.state.budget_usd - self.state.cost.total_cost_usd, 0.0),
            metadata=self.state.metadata,
        )
        headers = inject_headers(
            {
                EXECUTION_ID_HEADER: self.state.execution_id,
                DEPTH_HEADER: str(self.state.depth + 1),
            }
        )
        msg = await self.bus.request(exec_subject(child.name), encode(request), headers, timeout_s)
        reply = decode_exec_reply(msg.data)
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="failed" if reply.status == "failed" else "ok",
            output=reply.output,
            usage=reply.usage,
            cost=CostInfo(total_cost_usd=reply.cost_usd),
            is_mock=reply.is_mock,
            duration_ms=reply.duration_ms,
            error=reply.error,
        )

    @staticmethod
    def _failed(node: LayerMember, exc: BaseException) -> NodeResult:
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="failed",
            error=error_info(exc),
        )


def execution_deadline(now: float, request_timeout: float | None, network_timeout: float) -> float:
    """The unix time an execution must end by."""
    timeout = request_timeout if request_timeout is not None else network_timeout
    return now + (timeout if math.isfinite(timeout) else network_timeout)


def current_ids(span: trace.Span) -> tuple[str | None, str | None]:
    """Trace and span id of a span as hex."""
    return trace_id_hex(span), span_id_hex(span)


def _health_signal(result: NodeResult) -> BaseException:
    """What a failed call tells a node's breaker: retryable failures count, others do not."""
    error = result.error
    if error is not None and error.retryable:
        return TimeoutError(error.message)  # counted as "the node is unhealthy"
    return ValueError(error.message if error else "failed")
