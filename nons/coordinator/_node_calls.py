"""The node calls of a layer: model selection, retries, fallback, routers, failures.

`ExecutionRunner` walks the layers and hands each member of a layer to
`NodeCaller.call`, which makes as many attempts as the layer's policy allows through
an `AttemptMaker` (in production `Attempts`: breaker, NATS, span). Every failure
becomes a failed `NodeResult`; nothing here raises for a node that failed. The
attempt maker is the seam a unit test drives the retry logic through, without NATS.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import anyio
import msgspec
from opentelemetry import trace

from nons.coordinator.model_stats import (
    SelectionContext,
    get_model_stats,
    record_call,
    select_model,
)
from nons.core.errors import ModelSelectionError, NodeLostError
from nons.core.events import (
    ModelSelected,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
    RetryReason,
    RouteSelected,
)
from nons.core.node import Node
from nons.core.results import ErrorInfo, NodeResult
from nons.core.router import ROUTER_OPERATOR, RouteChoice, Router
from nons.core.types import ErrorPolicy, ModelConfig
from nons.resilience.policies import backoff_delay, next_attempt_model, should_retry
from nons.runtime.failures import failed_result

if TYPE_CHECKING:
    from nons.coordinator._attempt import LayerContext, Payload
    from nons.coordinator._state import ExecutionState
    from nons.core.layer import LayerMember, NetworkNode
    from nons.runtime.durability import CallRecord
    from nons.runtime.event_emitter import EventEmitter

__all__ = ("AttemptMaker", "NodeCaller")

_STOPPING_POLICIES = (ErrorPolicy.FAIL_FAST, ErrorPolicy.RETRY_WITH_BACKOFF)
"""Policies under which a node's final failure cancels the rest of its layer."""


class AttemptMaker(Protocol):
    """Makes one attempt of a node call and reports it as a result (never raises)."""

    async def guarded(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        model: ModelConfig | None,
        payload: Payload,
    ) -> NodeResult:
        """One attempt of `node` (through its breaker, if any)."""
        ...


class NodeCaller:
    """Calls the members of a layer, each as many times as its layer's policy says."""

    def __init__(
        self,
        state: ExecutionState,
        events: EventEmitter,
        attempts: AttemptMaker,
        *,
        lost_call_resends: int = 0,
    ) -> None:
        self.state = state
        self.events = events
        self.attempts = attempts
        self.lost_call_resends = lost_call_resends
        """Re-sends of a lost call (`node_lost`), outside the layer's ErrorPolicy."""
        self.recorded: dict[str, list[tuple[int, CallRecord]]] = {}
        """Of a durable layer being resumed: the attempts actors recorded, by node id."""

    async def call(
        self, context: LayerContext, slot: int, node: LayerMember, results: list[NodeResult | None]
    ) -> None:
        """Call one member of the layer and put its final result in `results[slot]`.

        Under a prompt-cache warm-up, a follower first waits for its leader (within
        the layer's deadline), and a leader lets its followers go when it is done,
        whatever happened to it, if its first attempt has not already done so.
        """
        warmup = context.warmup
        if warmup is not None:
            gate = warmup.followers.get(slot)
            if gate is not None:
                await gate.wait()
            elif isinstance(node, Node) and node.node_id in warmup.leaders:
                try:
                    await self.call_node(context, slot, node, results, context.payload)
                finally:
                    warmup.release(node.node_id)
                return
        if isinstance(node, Router):
            await self._route(context, slot, node, results)
        else:
            await self.call_node(context, slot, node, results, context.payload)

    async def call_node(
        self,
        context: LayerContext,
        slot: int,
        node: Node | NetworkNode,
        results: list[NodeResult | None],
        payload: Payload,
    ) -> None:
        """Attempt `node` until it succeeds or its policy gives up; record the outcome.

        A lost call (`node_lost`: nobody worked on it) is first sent again, up to
        `lost_call_resends` times and without backoff, whatever the policy; those
        re-sends number as attempts but do not use up the policy's retries.
        """
        config = context.layer.layer_config
        attempt = 1
        lost = 0
        if self.recorded and isinstance(node, Node) and node.node_id in self.recorded:
            done, attempt = _resumed(self.recorded[node.node_id])
            if done is not None:
                results[slot] = done
                await self._completed(context, node, attempt, done, done.duration_ms)
                return
        first = attempt
        model = context.budget_models.get(node.node_id)
        base_model = node.model_config if isinstance(node, Node) else None
        if model is None and isinstance(node, Node) and node.model_selector is not None:
            try:
                model = await self._select_model(context, node, payload)
            except ModelSelectionError as exc:
                await self.fail(context, slot, node, failed_result(node, exc), results)
                return
        has_fallback = base_model is not None and base_model.fallback is not None
        while True:
            await self.events.emit(
                NodeStarted, layer_index=context.index, node_id=node.node_id, attempt=attempt
            )
            started = time.perf_counter()
            result = await self.attempts.guarded(context, node, attempt, model, payload)
            if context.warmup is not None:
                context.warmup.release(node.node_id)  # the cache is written (or never will be)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if isinstance(node, Node):
                record_call(model or base_model, result, elapsed_ms)
            if result.succeeded:
                results[slot] = (
                    result if attempt == 1 else msgspec.structs.replace(result, attempts=attempt)
                )
                await self._completed(context, node, attempt, result, elapsed_ms)
                return
            error = result.error or ErrorInfo(type="internal_error", message="no error given")
            if (
                error.type == NodeLostError.type
                and lost < self.lost_call_resends
                and context.deadline > time.time()
            ):
                lost += 1
                await self._retrying(context, node, attempt + 1, 0.0, error, None, "node_lost")
                attempt += 1
                continue
            tries = attempt - lost - (first - 1)
            delay = backoff_delay(config, tries)
            # A retry that could not even start before the layer's deadline is not made:
            # it would only run out of a limit that has already passed.
            if should_retry(config, error, tries, has_fallback) and (
                context.deadline - time.time() > delay
            ):
                fallback = next_attempt_model(config, base_model, tries)
                model = fallback or model
                reason: RetryReason = "fallback" if fallback else "error"
                await self._retrying(context, node, attempt + 1, delay, error, fallback, reason)
                await anyio.sleep(delay)
                attempt += 1
                continue
            final = _final_failure(node, result, attempt)
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
            await self.fail(context, slot, node, final, results)
            return

    async def _completed(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        result: NodeResult,
        duration_ms: float,
    ) -> None:
        await self.events.emit(
            NodeCompleted,
            layer_index=context.index,
            node_id=node.node_id,
            attempt=attempt,
            duration_ms=duration_ms,
            usage=result.usage,
            cost_usd=result.cost.total_cost_usd,
            is_mock=result.is_mock,
            cached=result.cached,
        )

    async def _retrying(
        self,
        context: LayerContext,
        node: Node | NetworkNode,
        attempt: int,
        delay: float,
        error: ErrorInfo,
        fallback: ModelConfig | None,
        reason: RetryReason,
    ) -> None:
        """Say that `attempt` is about to be made, and why: a span event and an event."""
        trace.get_current_span().add_event(
            "node.fallback" if fallback else "node.retrying",
            {
                "nons.node_id": node.node_id,
                "nons.attempt": attempt,
                "error.type": error.type,
                "nons.delay_s": delay,
                "nons.reason": reason,
            },
        )
        await self.events.emit(
            NodeRetrying,
            layer_index=context.index,
            node_id=node.node_id,
            attempt=attempt,
            delay_s=delay,
            error=error,
            model=fallback.model_name if fallback else None,
            reason=reason,
        )

    async def fail(
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

    async def _route(
        self,
        context: LayerContext,
        slot: int,
        router: Router,
        results: list[NodeResult | None],
    ) -> None:
        """Run the router's chosen branch on the routed content; record it as the router's.

        The branch is called like any node (retries, breakers, budget model, selector)
        under its own id; the router's result carries its output, usage and cost, with
        `branch` naming it. A router that could not route fails like a node.
        """
        choice = context.routes.get(router.node_id)
        if not isinstance(choice, RouteChoice):
            error = choice or ErrorInfo(type="unknown_route", message="no route resolved")
            failed = NodeResult(
                node_id=router.node_id, operator=ROUTER_OPERATOR, status="failed", error=error
            )
            await self.fail(context, slot, router, failed, results)
            return
        await self.events.emit(
            RouteSelected,
            layer_index=context.index,
            node_id=router.node_id,
            branch=choice.branch,
            default_used=choice.default_used,
            requested=choice.requested,
        )
        trace.get_current_span().add_event(
            "route.selected",
            {
                "nons.node_id": router.node_id,
                "nons.branch": choice.branch,
                "nons.default_used": choice.default_used,
            },
        )
        inner: list[NodeResult | None] = [None]
        await self.call_node(context, 0, router.branches[choice.branch], inner, context.routed)
        result = inner[0]
        if result is not None:
            results[slot] = msgspec.structs.replace(
                result, node_id=router.node_id, operator=ROUTER_OPERATOR, branch=choice.branch
            )


def _final_failure(node: LayerMember, result: NodeResult, attempt: int) -> NodeResult:
    """The result a node ends with once no attempt is left: its fallback output, if any."""
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


def _resumed(recorded: list[tuple[int, CallRecord]]) -> tuple[NodeResult | None, int]:
    """A resumed node's recorded success, or the attempt to make next.

    The attempt of a call still claimed (running in an actor) is sent again under the
    same number: the actor that has it answers with its result instead of running it
    twice. After a recorded failure the next attempt gets a new number.
    """
    for attempt, record in reversed(recorded):
        if record.result is not None and record.result.succeeded:
            result = record.result
            return (
                result if attempt == 1 else msgspec.structs.replace(result, attempts=attempt)
            ), attempt
    last_attempt, last = recorded[-1]
    return None, last_attempt if last.result is None else last_attempt + 1
