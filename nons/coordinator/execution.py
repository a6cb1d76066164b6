"""One execution of one network: walk the layers, fan each out, gather, apply the policy.

The runner composes the engine's parts: `NodeCaller` makes each member's call (its
attempts through `Attempts`), `routing` resolves routers, `budget` plans each layer.
The per-execution state is one serialisable Struct (`ExecutionState`) and each node
result is self-contained, so that checkpointing an execution to JetStream later is a
small step. Node calls of a layer run in one `asyncio.gather` under an anyio cancel
scope holding the layer deadline: a task per node is what the raw nats-py floor pays
too, and the cancel scope gives fail-fast and timeouts without more tasks.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from opentelemetry.trace import SpanKind, Status, StatusCode

from nons.coordinator._attempt import Attempts, LayerContext, Payload
from nons.coordinator._node_calls import NodeCaller
from nons.coordinator._warmup import plan_warmup, released_by_deltas
from nons.coordinator.budget import PricingDefaults, plan_layer
from nons.coordinator.durable import LeaseLost
from nons.coordinator.routing import Routes, budget_view, has_routers, resolve_routes
from nons.core.deadlines import TIMEOUT_TYPES, layer_limit, timeout_error
from nons.core.errors import (
    BudgetExceededError,
    DepthExceededError,
    NodeTimeoutError,
    PayloadTooLargeError,
)
from nons.core.events import (
    BudgetExceeded,
    CostAlert,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionResumed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    NodeRerouted,
)
from nons.core.modes import BATCH_WINDOW_S
from nons.core.results import ErrorInfo, ExecutionStatus, LayerResult, NodeResult
from nons.core.types import ErrorPolicy, ModelConfig
from nons.resilience.policies import layer_outcome
from nons.runtime.messages import ExecReply, encode

if TYPE_CHECKING:
    from opentelemetry import trace

    from nons.coordinator._state import ExecutionState
    from nons.coordinator.durable import Journal
    from nons.core.layer import Layer, LayerMember
    from nons.core.network import NoN
    from nons.resilience.breaker import CircuitBreaker
    from nons.runtime.bus import Bus
    from nons.runtime.event_emitter import EventEmitter
    from nons.runtime.liveness import Liveness
    from nons.runtime.payloads import Payloads

__all__ = ("ExecutionRunner",)

_PARTIAL_POLICIES = frozenset({ErrorPolicy.RETURN_PARTIAL, ErrorPolicy.SKIP_AND_CONTINUE})
"""Policies under which a budget stop returns what was done so far as `partial`."""


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
        *,
        pricing: PricingDefaults | None = None,
        liveness: Liveness | None = None,
        lost_call_resends: int = 0,
        journal: Journal | None = None,
        payloads: Payloads | None = None,
    ) -> None:
        self.network = network
        self.state = state
        self.events = events
        self.attempts = Attempts(network, state, bus, events, tracer, breakers, liveness)
        self.attempts.durable = journal is not None
        self.attempts.payloads = payloads
        self.calls = NodeCaller(state, events, self.attempts, lost_call_resends=lost_call_resends)
        self.journal = journal
        """The durable execution's record (None: not durable)."""
        self.payloads = payloads
        """Where layer inputs too large for a message go (None: nowhere, they fail)."""
        self._pricing = pricing
        self._alerted = False

    async def run(self, span: trace.Span) -> ExecReply:
        """Run every layer in order and build the reply.

        A router's layer first resolves each router's branch from its input (the
        route decision); the branches then run on the previous layer's input.
        """
        state = self.state
        if state.next_layer == 0:
            state.current_input = state.input
            state.previous_input = state.input
        self.attempts.trace_from(span)
        journal = self.journal
        await self._begin()
        status: ExecutionStatus = "completed"
        error: ErrorInfo | None = self._depth_refusal()
        if error is not None:
            return await self._finish(span, "failed", error)
        for index in range(state.next_layer, len(self.network.layers)):
            if journal is not None and journal.cancelled is not None:
                error, status = journal.cancelled, "failed"
                break
            layer = self.network.layers[index]
            payload = await self._payload(index, state.current_input)
            routed = payload
            budgeted: Layer | None = layer
            routes: Routes = {}
            if has_routers(layer):
                routes = resolve_routes(layer, state.current_input)
                routed = Payload.of(state.previous_input)
                budgeted = budget_view(layer, routes)
            input_bytes = max(len(payload.raw), len(routed.raw))
            refusal, models = await self._check_budget(index, budgeted, input_bytes)
            if refusal is not None:
                error = refusal
                partial = layer.layer_config.error_policy in _PARTIAL_POLICIES
                status = "partial" if partial and state.layers else "failed"
                break
            if journal is None:
                layer_result, error = await self._run_layer(
                    index, layer, payload, routed, routes, models
                )
            else:
                with anyio.CancelScope() as journal.scope:
                    layer_result, error = await self._run_layer(
                        index, layer, payload, routed, routes, models
                    )
                if self._stopped(journal):
                    error, status = journal.cancelled, "failed"
                    break
            state.layers.append(layer_result)
            state.usage = state.usage + layer_result.usage
            state.cost = state.cost + layer_result.cost
            state.next_layer = index + 1
            if (
                journal is not None
                and error is None
                and state.next_layer < len(self.network.layers)
            ):
                await journal.checkpoint(state)  # the last layer's is the final record
            await self._check_cost_alert()
            if error is not None:
                status = "failed"
                break
            if layer_result.status == "partial":
                status = "partial"
            state.previous_input = state.current_input
            state.current_input = layer_result.output
        return await self._finish(span, status, error)

    async def _begin(self) -> None:
        """Say that the execution started, or that it resumed here (durable takeover)."""
        state, journal = self.state, self.journal
        if journal is not None and journal.resume_layer is not None:
            await self.events.emit(
                ExecutionResumed,
                layer_index=state.next_layer,
                resumes=journal.record.resumes,
                previous_owner=journal.resumed_from,
            )
            # Calls the dead coordinator had sent: results are reused, not paid again.
            self.calls.recorded = await journal.recorded(state.next_layer)
        else:
            await self.events.emit(
                ExecutionStarted, layers=len(self.network.layers), metadata=state.metadata
            )

    def _stopped(self, journal: Journal) -> bool:
        """After a durable layer: whether it was cancelled (or taken over elsewhere).

        Raises:
            LeaseLost: another coordinator owns the execution now; it replies.
        """
        journal.scope = None
        self.calls.recorded = {}
        if journal.lost:
            raise LeaseLost(self.state.execution_id)
        return journal.cancelled is not None

    async def _payload(self, index: int, value: Any) -> Payload:
        """The layer's input, by reference when it is too large for one message."""
        payload = Payload.of(value)
        if self.payloads is None or len(payload.raw) <= self.payloads.threshold:
            return payload
        name = f"{self.state.execution_id}.{index}.input"
        try:
            ref, _ = await self.payloads.offload_if_large(name, bytes(payload.raw), value)
        except PayloadTooLargeError:
            return payload  # no object store: a call that does not fit fails typed, as ever
        return Payload(msgspec.Raw(encode(ref)), value)

    def _depth_refusal(self) -> ErrorInfo | None:
        """Refuse, on entry, an execution nested deeper than this network's `max_depth`.

        The parent checks before calling a sub-network too; this check also stops a
        client (or a cycle of coordinators) that sends `Nons-Depth` past the bound.
        """
        max_depth = self.network.network_config.max_depth
        depth = self.state.depth
        if depth <= max_depth:
            return None
        return ErrorInfo.from_exception(
            DepthExceededError(
                f"network {self.state.network!r} was called at nesting depth {depth}, "
                f"deeper than its max_depth={max_depth}",
                details={"depth": depth, "max_depth": max_depth},
            )
        )

    async def _check_budget(
        self, index: int, layer: Layer | None, input_bytes: int
    ) -> tuple[ErrorInfo | None, dict[str, ModelConfig]]:
        """Refuse a layer whose worst case would pass the budget, or the nodes' budget models.

        `input_bytes` is the larger of the layer's input and what its routers hand on.
        """
        budget = self.state.budget_usd
        if budget is None or layer is None:
            return None, {}
        spent = self.state.cost.total_cost_usd
        plan = plan_layer(layer, input_bytes, spent, budget, self._pricing)
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
            ), {}
        for node_id, model in plan.models.items():
            await self.events.emit(
                NodeRerouted,
                layer_index=index,
                node_id=node_id,
                model=model.model_name,
                provider=model.provider.value if model.provider else None,
            )
        return None, plan.models

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

    async def _run_layer(
        self,
        index: int,
        layer: Layer,
        payload: Payload,
        routed: Payload,
        routes: Routes,
        models: dict[str, ModelConfig],
    ) -> tuple[LayerResult, ErrorInfo | None]:
        config = layer.layer_config
        started = time.time()
        # A batch-mode layer waits for Message Batches: up to a day, not the online timeout.
        layer_timeout_s = BATCH_WINDOW_S if self.state.batch else config.timeout_seconds
        deadline = min(self.state.deadline, started + layer_timeout_s)
        limit = layer_limit(started, layer_timeout_s, self.state.deadline)
        limit_s = (
            layer_timeout_s
            if limit == "layer"
            else self.state.deadline - self.state.started_at
        )
        node_ids = [node.node_id for node in layer.nodes]
        results: list[NodeResult | None] = [None] * len(layer.nodes)
        with self.attempts.span(
            f"layer {index}",
            SpanKind.INTERNAL,
            {"nons.network": self.state.network, "nons.layer_index": index},
        ) as span:
            await self.events.emit(LayerStarted, layer_index=index, node_ids=node_ids)
            with anyio.move_on_after(max(deadline - time.time(), 0.0)) as scope:
                context = LayerContext(
                    index=index,
                    layer=layer,
                    deadline=deadline,
                    limit=limit,
                    limit_s=limit_s,
                    scope=scope,
                    payload=payload,
                    routed=routed,
                    routes=routes,
                    budget_models=models,
                    warmup=plan_warmup(
                        layer, self.network.network_config, len(payload.raw), self._pricing
                    ),
                )
                if context.warmup is not None and context.warmup.streaming:
                    async with released_by_deltas(
                        self.attempts.bus,
                        self.state.network,
                        self.state.execution_id,
                        context.warmup,
                    ):
                        await self._gather(context, layer, results)
                elif len(layer.nodes) == 1:
                    # No task for a lone node: its NodeStarted event and its request then
                    # leave in the same socket write as LayerStarted (one syscall, not two).
                    await self.calls.call(context, 0, layer.nodes[0], results)
                else:
                    await self._gather(context, layer, results)
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

    async def _gather(
        self, context: LayerContext, layer: Layer, results: list[NodeResult | None]
    ) -> None:
        calls = self.calls
        await asyncio.gather(
            *(calls.call(context, slot, node, results) for slot, node in enumerate(layer.nodes))
        )

    def _unfinished(self, context: LayerContext, node: LayerMember) -> NodeResult:
        """The result of a node that had no answer when its layer stopped waiting.

        Named by why the layer stopped, never by the clock: its deadline passed (or a
        sibling ran out of that same deadline), so this node ran out of the layer's
        limit too; or a sibling failed otherwise under a stopping policy, so this
        node was cancelled. A sibling's own `node_timeout` is not this node's limit.
        """
        stop = context.stopped_by
        if stop is None or stop.type in _SHARED_TIMEOUTS:
            return NodeResult(
                node_id=node.node_id,
                operator=node.operator_name,
                status="failed",
                error=ErrorInfo.from_exception(
                    timeout_error(
                        context.limit,
                        node_id=node.node_id,
                        layer_index=context.index,
                        limit_s=context.limit_s,
                    )
                ),
            )
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="skipped",
            error=ErrorInfo(
                type="cancelled",
                message="cancelled: another node of the layer failed "
                f"({stop.type}) and the policy stops the layer",
                details={"layer_index": context.index, "node_id": node.node_id},
            ),
        )


_SHARED_TIMEOUTS = TIMEOUT_TYPES - {NodeTimeoutError.type}
"""Timeouts of a limit every node of a layer shares (the layer's, the execution's)."""
