"""The actor host: serves node subjects and runs each call with `Node.execute`.

Each node is a micro-service endpoint in the queue group named after its subject, so
replicas in other processes share the calls. Calls run in tasks bounded per node by a
limiter; past the limit plus a short backlog the host answers "saturated" at once
(a retryable error the coordinator sends to another replica) rather than queueing
without bound. While a call waits or runs, the host sends progress on its reply
subject at the interval the coordinator asks for (`nons.runtime.liveness`), so the
coordinator notices in seconds, not at the layer timeout, when this process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import msgspec
from nats.micro import add_service
from nats.micro.service import EndpointConfig, ServiceConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from nons.actors._caches import HostCaches
from nons.actors._calls import check_call, failure_for, reply_headers
from nons.actors._discovery import bound_discovery
from nons.actors._durable import DurableCalls
from nons.actors._slots import Slot
from nons.actors.batch_progress import batch_publisher
from nons.actors.cache import NodeCache, lookup, served_from_cache, store
from nons.actors.deltas import delta_publisher
from nons.core.deadlines import timeout_error
from nons.core.errors import (
    InvalidRequestError,
    NodeUnavailableError,
    PayloadTooLargeError,
    SpecMismatchError,
)
from nons.core.events import CircuitChanged, encode_event
from nons.core.names import event_subject, node_subject
from nons.core.node import Node
from nons.observability.metrics import RuntimeMetrics
from nons.observability.propagation import (
    extract_context,
    inject_headers,
    span_id_hex,
    trace_id_hex,
)
from nons.providers.batches import BatchMode, in_batch_mode
from nons.providers.registry import add_breaker_listener, remove_breaker_listener
from nons.runtime.bus import Bus
from nons.runtime.connection import stop_service
from nons.runtime.durability import DurabilitySettings
from nons.runtime.failures import failed_result
from nons.runtime.liveness import Heartbeats
from nons.runtime.messages import EXECUTION_ID_HEADER, NodeCall, decode_node_call, encode
from nons.runtime.payloads import Payloads, is_ref
from nons.runtime.tasks import TaskSet

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.micro.request import Request
    from nats.micro.service import Service
    from opentelemetry.metrics import MeterProvider

    from nons.core.network import NoN
    from nons.core.results import NodeResult

__all__ = ("ActorHost", "ActorSettings")

logger = logging.getLogger("nons.actor")

_CURRENT_CALL: ContextVar[tuple[str, str, str] | None] = ContextVar("nons_actor_call", default=None)
"""(network, execution id, node id) of the node call running in this task."""

SERVICE_NAME = "nons-actor"
"""Micro-service name every actor host registers under."""


class ActorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How an actor host behaves."""

    concurrency: int = 64
    """Calls of one node running at once in this process."""
    backlog: int = 256
    """Calls of one node waiting for a slot before the host answers "saturated"."""
    node_ids: tuple[str, ...] = ()
    """Serve only these nodes (all when empty)."""
    drain_timeout_s: float = 30.0
    """How long shutdown waits for calls in flight."""
    version: str = "0.1.0"
    """Version reported to service discovery."""
    durability: DurabilitySettings = DurabilitySettings()
    """How long a durable call's claim lasts unrenewed (its `lease_s`)."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.backlog < 0:
            raise ValueError("backlog must be >= 0")


class ActorHost:
    """Serves the nodes of some networks (sub-networks included) in this process."""

    def __init__(
        self,
        nc: Client,
        networks: Iterable[NoN],
        settings: ActorSettings | None = None,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        cache: NodeCache | None = None,
    ) -> None:
        """Prepare to serve the nodes of `networks`, sub-networks included.

        `cache`, when given, is used for every cached call instead of the cache each
        network's `CacheConfig` names (tests; one cache shared by several hosts).
        """
        self.nc = nc
        self.settings = settings or ActorSettings()
        self.bus = Bus(nc)
        self.heartbeats = Heartbeats(self.bus.publish)
        """Progress on the reply subject of each call running here (`Nons-Liveness`)."""
        self.tracer = trace.get_tracer("nons.actor", tracer_provider=tracer_provider)
        self.metrics = RuntimeMetrics(meter_provider)
        self.slots: dict[str, Slot] = {}
        wanted = set(self.settings.node_ids)
        for network in networks:
            for member in network.networks():
                for _, node in member.nodes():
                    if isinstance(node, Node) and (not wanted or node.node_id in wanted):
                        slot = Slot(member, node, self.settings.concurrency)
                        self.slots.setdefault(slot.subject, slot)
        self.caches = HostCaches(cache)
        """The node-result caches of this host, one per cache configuration."""
        self._service: Service | None = None
        self._tasks = TaskSet()
        self._side_tasks = TaskSet()
        self.instance = f"actor-{uuid.uuid4().hex[:12]}"
        """This process's name in the claims of durable calls."""
        self.payloads = Payloads(nc, retention_s=self.settings.durability.retention_s)
        self.durable: DurableCalls | None = None
        """Claims and records durable calls (None: no JetStream; they just run)."""

    @property
    def in_flight(self) -> int:
        """Node calls running or waiting now."""
        return len(self._tasks)

    def _on_breaker(self, provider: str, model: str, old: object, new: object) -> None:
        """Report a provider-model breaker change as a span event and an execution event.

        Every host of the process is told; only the one running the call reports it.
        """
        call = _CURRENT_CALL.get()
        if call is None or node_subject(call[0], call[2]) not in self.slots:
            return
        trace.get_current_span().add_event(
            "circuit.changed",
            {
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "from": str(old),
                "to": str(new),
            },
        )
        network, execution_id, node_id = call
        span = trace.get_current_span()
        event = CircuitChanged(
            ts=time.time(),
            network=network,
            execution_id=execution_id,
            trace_id=trace_id_hex(span),
            span_id=span_id_hex(span),
            node_id=node_id,
            old_state=str(old),
            new_state=str(new),
            provider=provider,
            model=model,
        )
        subject = event_subject(network, execution_id, event.type)
        headers = inject_headers({EXECUTION_ID_HEADER: execution_id})
        self._side_tasks.spawn(self.bus.publish(subject, encode_event(event), headers))

    async def __aenter__(self) -> ActorHost:
        await self.caches.open(self.nc, [slot.network for slot in self.slots.values()])
        self.durable = await DurableCalls.open(self.nc, self.instance, self.settings.durability)
        add_breaker_listener(self._on_breaker)
        self._service = await add_service(
            self.nc,
            ServiceConfig(
                name=SERVICE_NAME,
                version=self.settings.version,
                description="NoN actor host: runs node calls",
                metadata={
                    "networks": ",".join(sorted({s.network.name for s in self.slots.values()}))
                },
                stats_handler=self._stats,
            ),
        )
        bound_discovery(self._service, self.nc.max_payload, self._network_of)
        for subject, slot in self.slots.items():
            await self._service.add_endpoint(
                EndpointConfig(
                    name=f"{slot.network.name}_{slot.node.node_id}",
                    subject=subject,
                    queue_group=subject,
                    handler=self._handler(slot),
                    metadata={
                        "network": slot.network.name,
                        "node_id": slot.node.node_id,
                        "operator": slot.node.operator_name,
                        "fingerprint": slot.network.fingerprint,
                    },
                )
            )
        await self.nc.flush()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop taking calls, finish those in flight (bounded), then cancel the rest."""
        remove_breaker_listener(self._on_breaker)
        if self._service is not None:
            await stop_service(self._service)
            self._service = None
        await self._tasks.drain(self.settings.drain_timeout_s)
        if self.durable is not None:
            await self.durable.close()
        await self.heartbeats.close()
        await self._side_tasks.drain(1.0)

    def _network_of(self, subject: str) -> str:
        slot = self.slots.get(subject)
        return slot.network.name if slot is not None else subject

    def _stats(self, endpoint: Any) -> dict[str, Any]:
        """One endpoint's `data`: its own node's figures (not every node's: quadratic)."""
        slot = self.slots.get(endpoint.subject)
        return slot.figures() if slot is not None else {}

    def _handler(self, slot: Slot) -> Any:
        async def on_call(request: Request) -> None:
            msg = request._msg
            if not msg.reply:
                # Nobody waits for this result: running it would only spend money.
                slot.dropped += 1
                logger.warning("node call on %s had no reply subject: dropped unrun", msg.subject)
                return
            if slot.in_flight >= self.settings.concurrency + self.settings.backlog:
                slot.refused += 1
                await self._reply(
                    msg,
                    failed_result(
                        slot.node,
                        NodeUnavailableError(
                            f"actor for {slot.subject} is saturated ({slot.in_flight} calls)",
                            details={"node_id": slot.node.node_id},
                        ),
                    ),
                    reply_headers(msg.headers or {}),
                )
                return
            slot.in_flight += 1
            self.metrics.in_flight(1, slot.network.name, slot.node.node_id)
            # Beats from acceptance on: a call waiting for a slot is being worked on too.
            self._tasks.spawn(self._serve(slot, msg, self.heartbeats.start(msg)))

        return on_call

    async def _serve(self, slot: Slot, msg: Msg, beat: int | None) -> None:
        started = time.perf_counter()
        try:
            result, headers = await self._run(slot, msg)
        except Exception as exc:  # the boundary: answer, log, keep serving
            result, headers = failed_result(slot.node, exc), reply_headers(msg.headers or {})
        finally:
            self.heartbeats.stop(beat)
            slot.in_flight -= 1
            self.metrics.in_flight(-1, slot.network.name, slot.node.node_id)
        if result.succeeded:
            slot.completed += 1
        else:
            slot.failed += 1
            self.metrics.failure(
                slot.network.name, slot.node.node_id, result.error.type if result.error else "?"
            )
        self.metrics.node_call_finished(
            slot.network.name, slot.node.node_id, result.status, time.perf_counter() - started
        )
        await self._reply(msg, result, headers)

    async def _run(self, slot: Slot, msg: Msg) -> tuple[NodeResult, dict[str, str]]:
        """Run the call under its caller's trace context; return the result and reply headers.

        A call whose caller's trace is not sampled gets no span of its own (the decision
        was made once, for the whole execution): it only runs under that context, so
        any span below it is dropped by a parent-based sampler too.
        """
        headers = msg.headers or {}
        parent = extract_context(headers)
        parent_span = trace.get_current_span(parent).get_span_context()
        if parent_span.is_valid and not parent_span.trace_flags.sampled:
            token = otel_context.attach(parent)
            try:
                result = await self._execute(slot, msg, INVALID_SPAN)
            finally:
                otel_context.detach(token)
            return result, reply_headers(headers)
        with self.tracer.start_as_current_span(
            f"process {msg.subject}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.operation.type": "process",
                "nons.network": slot.network.name,
                "nons.node_id": slot.node.node_id,
                "nons.operator": slot.node.operator_name,
            },
        ) as span:
            result = await self._execute(slot, msg, span)
            if result.error is not None:
                span.set_status(Status(StatusCode.ERROR, result.error.message))
                span.set_attribute("error.type", result.error.type)
            else:
                span.set_attribute("nons.cost_usd", result.cost.total_cost_usd)
                span.set_attribute("nons.is_mock", result.is_mock)
                span.set_attribute("nons.saved_cost_usd", result.saved_cost_usd)
            out_headers = inject_headers({})
        execution_id = headers.get(EXECUTION_ID_HEADER)
        if execution_id:
            out_headers[EXECUTION_ID_HEADER] = execution_id
        return result, out_headers

    async def _execute(self, slot: Slot, msg: Msg, span: trace.Span) -> NodeResult:
        started = time.perf_counter()
        try:
            call = decode_node_call(msg.data)
            check_call(slot.network, slot.node, slot.subject, call)
            if is_ref(call.input):
                call = msgspec.structs.replace(call, input=await self.payloads.resolve(call.input))
        except (InvalidRequestError, SpecMismatchError) as exc:
            return failed_result(slot.node, exc)
        span.set_attribute("nons.execution_id", call.execution_id)
        span.set_attribute("nons.layer_index", call.layer_index)
        span.set_attribute("nons.attempt", call.attempt)
        on_delta: Callable[[str], Awaitable[None]] | None = None
        if slot.node.stream:
            on_delta = delta_publisher(self.bus, slot.network.name, slot.node.node_id, call)
        cached = self.caches.plan(slot.node, slot.spec, slot.network, call)
        if cached is not None:
            hit = await lookup(*cached)
            span.set_attribute("nons.cache_hit", hit is not None)
            if hit is not None:
                if on_delta is not None and isinstance(hit.output, str) and hit.output:
                    await on_delta(hit.output)
                return served_from_cache(hit, (time.perf_counter() - started) * 1000.0)
        if call.durable and self.durable is not None:
            result = await self.durable.run(
                call, slot.node.node_id, lambda: self._run_node(slot, call, on_delta)
            )
        else:
            result = await self._run_node(slot, call, on_delta)
        if cached is not None and result.status == "ok":
            await store(*cached, result)
        return result

    async def _run_node(
        self, slot: Slot, call: NodeCall, on_delta: Callable[[str], Awaitable[None]] | None
    ) -> NodeResult:
        # asyncio primitives, measured: anyio's limiter and fail_after each cost two
        # extra event-loop turns per call on the hottest path of the actor.
        deadline = asyncio.timeout(call.timeout_s or None)
        token = _CURRENT_CALL.set((slot.network.name, call.execution_id, slot.node.node_id))
        # A batch-mode call waits on a remote Message Batch, not on this process: it holds
        # no concurrency slot, so a whole layer's calls can share one batch.
        limiter = slot.limiter if not call.batch else contextlib.nullcontext()
        batching = (
            in_batch_mode(
                BatchMode(
                    on_progress=batch_publisher(
                        self.bus, slot.network.name, slot.node.node_id, call
                    )
                )
            )
            if call.batch
            else contextlib.nullcontext()
        )
        try:
            async with limiter, deadline:
                with batching:
                    return await slot.node.execute(
                        call.input,
                        model_config=call.model,
                        on_delta=on_delta,
                        prompt_cache=slot.node.prompt_cache
                        and slot.network.network_config.prompt_cache,
                    )
        except TimeoutError as exc:
            if not deadline.expired():
                return failed_result(slot.node, exc)  # a typed timeout from below, not ours
            # Named by the limit the coordinator said this time is, not "node" always.
            return failed_result(
                slot.node,
                timeout_error(
                    call.timeout_limit,
                    node_id=slot.node.node_id,
                    layer_index=call.layer_index,
                    limit_s=call.timeout_limit_s,
                ),
            )
        except Exception as exc:
            return failed_result(slot.node, exc)
        finally:
            _CURRENT_CALL.reset(token)

    async def _reply(self, msg: Msg, result: NodeResult, headers: dict[str, str]) -> None:
        if not msg.reply:
            logger.info("node call on %s had no reply subject; result dropped", msg.subject)
            return
        payload = encode(result)
        if len(payload) > self.payloads.threshold and result.output is not None:
            name = f"{headers.get(EXECUTION_ID_HEADER, 'call')}.{uuid.uuid4().hex}.output"
            try:
                ref, _ = await self.payloads.offload_if_large(
                    name, encode(result.output), result.output
                )
                payload = encode(msgspec.structs.replace(result, output=ref))
            except PayloadTooLargeError:
                pass  # no object store: the size check below answers it, typed
        try:
            await self.bus.publish(msg.reply, payload, headers)
        except PayloadTooLargeError as exc:
            await self.bus.publish(msg.reply, encode(failure_for(result, exc)), headers)
