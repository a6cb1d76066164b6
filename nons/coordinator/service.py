"""The coordinator: serves `nons.exec.<network>` and runs each request as an execution.

Each network is a NATS micro-service endpoint in the queue group of its subject, so
several coordinators share the load and `$SRV.INFO`/`STATS` (`nats micro ls`) list
them. The endpoint handler only hands the message to a task: a subscription runs its
callbacks one at a time, and an execution lasts as long as its slowest layer. A
request asking for liveness (`Nons-Liveness`, as `nons.connect()` clients do) gets
progress messages while its execution runs, so its caller notices a dead coordinator.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from nats.micro import add_service
from nats.micro.service import EndpointConfig, ServiceConfig
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from nons.coordinator._state import ExecutionState, execution_deadline
from nons.coordinator.budget import PricingDefaults
from nons.coordinator.durable import DurableRuns, Journal, LeaseLost
from nons.coordinator.execution import ExecutionRunner
from nons.coordinator.stats import ExecutionStats
from nons.core.errors import (
    DurabilityUnavailableError,
    ExecutionTimeoutError,
    InvalidRequestError,
    NodeUnavailableError,
    PayloadTooLargeError,
    SpecMismatchError,
)
from nons.core.names import exec_subject
from nons.observability.metrics import RuntimeMetrics
from nons.observability.propagation import extract_context, inject_headers, trace_id_hex
from nons.resilience.breaker import CircuitBreaker
from nons.runtime.bus import Bus
from nons.runtime.connection import stop_service
from nons.runtime.durability import DurabilitySettings, ExecutionRecord
from nons.runtime.event_emitter import EventEmitter
from nons.runtime.event_store import ensure_event_stream
from nons.runtime.failures import error_info
from nons.runtime.liveness import Heartbeats, Liveness
from nons.runtime.messages import (
    DEPTH_HEADER,
    EXECUTION_ID_HEADER,
    FINGERPRINT_HEADER,
    ExecReply,
    decode_exec_request,
    encode,
)
from nons.runtime.payloads import Payloads
from nons.runtime.tasks import TaskSet

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.micro.request import Request
    from nats.micro.service import Service
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider

    from nons.core.network import NoN

__all__ = ("Coordinator", "CoordinatorSettings")

logger = logging.getLogger("nons.coordinator")

SERVICE_NAME = "nons-coordinator"
"""Micro-service name every coordinator registers under."""


class CoordinatorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a coordinator behaves."""

    events: bool = True
    """Publish execution events on `nons.events.>`."""
    max_in_flight: int = 10_000
    """Executions at once; beyond it requests get a `node_unavailable`-style refusal."""
    record_events: bool = True
    """Also record events in the JetStream stream `NONS_EVENTS` (for `nons trace`)."""
    drain_timeout_s: float = 30.0
    """How long shutdown waits for executions in flight."""
    version: str = "0.1.0"
    """Version reported to service discovery."""
    pricing: PricingDefaults = PricingDefaults()
    """What budgets price nodes that name no provider or model as (no credentials needed)."""
    node_liveness_s: float | None = 2.0
    """Silence (no progress, no reply) after which a node call is lost (`node_lost`):
    the bound on noticing a dead actor. Actors beat four times per window while a call
    runs, so a long model call is never lost. None turns detection off."""
    lost_call_resends: int = 2
    """Times a lost node call is sent again (the queue group picks a live replica),
    whatever the layer's ErrorPolicy: a lost call produced no result."""
    durability: DurabilitySettings = DurabilitySettings()
    """Leases and retention of durable executions."""

    def __post_init__(self) -> None:
        if self.node_liveness_s is not None:
            Liveness(self.node_liveness_s)  # raises for a non-positive window
        if self.lost_call_resends < 0:
            raise ValueError("lost_call_resends must be >= 0")


class Coordinator:
    """Serves the exec subjects of some networks (and of their sub-networks).

    Use as an async context manager; on exit it stops taking requests and drains.
    """

    def __init__(
        self,
        nc: Client,
        networks: Iterable[NoN],
        settings: CoordinatorSettings | None = None,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.nc = nc
        self.settings = settings or CoordinatorSettings()
        self.networks: dict[str, NoN] = {}
        for network in networks:
            for member in network.networks():
                self._add(member)
        self.bus = Bus(nc)
        self.heartbeats = Heartbeats(self.bus.publish)
        """Progress for exec requests that ask for it (`Nons-Liveness`)."""
        self._liveness = (
            Liveness(self.settings.node_liveness_s)
            if self.settings.node_liveness_s is not None
            else None
        )
        self.payloads = Payloads(nc, retention_s=self.settings.durability.retention_s)
        """Inputs, outputs and replies too large for one message go by reference."""
        self.durable = DurableRuns(nc, set(self.networks), self.settings.durability, self._resume)
        self.tracer = trace.get_tracer("nons.coordinator", tracer_provider=tracer_provider)
        self.metrics = RuntimeMetrics(meter_provider)
        self._service: Service | None = None
        self._tasks = TaskSet()
        self._breakers: dict[str, dict[str, CircuitBreaker]] = {}
        self.stats = ExecutionStats(list(self.networks))
        """Per-network counts, reported per endpoint in `$SRV.STATS`."""
        self.unanswerable = 0
        """Executions that arrived without a reply subject (run, their reply dropped)."""

    @property
    def completed(self) -> int:
        """Executions that did not fail, all networks."""
        return self.stats.completed + sum(s.partial for s in self.stats.networks.values())

    @property
    def failed(self) -> int:
        """Failed executions, all networks."""
        return self.stats.failed

    def _add(self, network: NoN) -> None:
        known = self.networks.get(network.name)
        if known is not None and known.fingerprint != network.fingerprint:
            raise SpecMismatchError(
                f"two different networks are named {network.name!r} in one coordinator"
            )
        self.networks[network.name] = network

    @property
    def in_flight(self) -> int:
        """Executions running now."""
        return len(self._tasks)

    async def __aenter__(self) -> Coordinator:
        await self.bus.start()
        await self.durable.start()
        if self.settings.events and self.settings.record_events:
            await ensure_event_stream(self.nc, needed_for="a coordinator that records events")
        self._service = await add_service(
            self.nc,
            ServiceConfig(
                name=SERVICE_NAME,
                version=self.settings.version,
                description="NoN coordinator: runs networks layer by layer",
                metadata={"networks": ",".join(sorted(self.networks))},
                stats_handler=self._stats,
            ),
        )
        # nats.micro counts an error only when a handler raises; executions run in
        # tasks and fail as replies, so their failures are added to the stats it reports.
        service_stats = self._service.stats
        self._service.stats = lambda: self.stats.patched(service_stats())  # type: ignore[method-assign]
        for name, network in self.networks.items():
            subject = exec_subject(name)
            await self._service.add_endpoint(
                EndpointConfig(
                    name=name,
                    subject=subject,
                    queue_group=subject,
                    handler=self._on_request,
                    metadata={
                        "fingerprint": network.fingerprint,
                        "layers": str(len(network.layers)),
                    },
                )
            )
        await self.nc.flush()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop taking requests, let executions in flight finish (bounded), then close."""
        if self._service is not None:
            await stop_service(self._service)
            self._service = None
        await self._tasks.drain(self.settings.drain_timeout_s)
        await self.durable.stop()
        await self.heartbeats.close()
        await self.bus.close()

    def _stats(self, endpoint: Any) -> dict[str, Any]:
        """An endpoint's `data`: its network's figures, then this process's."""
        return {
            **self.stats.data(endpoint.name),
            "late_replies": self.bus.late_replies,
            "unanswerable": self.unanswerable,
        }

    async def _on_request(self, request: Request) -> None:
        msg = request._msg
        if len(self._tasks) >= self.settings.max_in_flight:
            refusal = self._refusal(
                msg,
                NodeUnavailableError(
                    f"coordinator saturated ({self.settings.max_in_flight} executions in flight)"
                ),
            )
            self.stats.finished(msg.subject.rsplit(".", 1)[-1], refusal, started=False)
            await self._reply(
                msg,
                refusal,
            )
            return
        self._tasks.spawn(self._serve(msg, self.heartbeats.start(msg)))

    async def _serve(self, msg: Msg, beat: int | None) -> None:
        trace_headers: dict[str, str] = {}
        network = msg.subject.rsplit(".", 1)[-1]
        self.stats.started(network)
        try:
            reply = await self._execute(msg, trace_headers, beat)
        except LeaseLost:
            logger.warning("execution on %s was taken over by another coordinator", msg.subject)
            self.heartbeats.stop(beat)
            return
        except Exception as exc:  # the boundary: answer, log, keep serving
            reply = self._refusal(msg, exc)
        finally:
            self.heartbeats.stop(beat)
        self.stats.finished(network, reply)
        self.metrics.execution_finished(
            reply.network,
            reply.status,
            reply.duration_ms / 1000.0,
            tokens_in=reply.usage.prompt_tokens
            + reply.usage.cache_read_tokens
            + reply.usage.cache_creation_tokens,
            tokens_out=reply.usage.completion_tokens,
            cost_usd=reply.cost_usd,
        )
        await self._reply(msg, reply, trace_headers)

    async def _execute(
        self, msg: Msg, trace_headers: dict[str, str], beat: int | None
    ) -> ExecReply:
        """Run one execution in its `process` span; `trace_headers` receives its context."""
        network = self.networks[msg.subject.rsplit(".", 1)[-1]]
        headers = msg.headers or {}
        parent = extract_context(headers)
        with self.tracer.start_as_current_span(
            f"process {msg.subject}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": msg.subject,
                "messaging.operation.type": "process",
                "nons.network": network.name,
            },
        ) as recorded:
            with trace.use_span(_traceable(recorded, parent), end_on_exit=False) as span:
                inject_headers(trace_headers)  # for the reply: the span ends before it is sent
                return await self._run(msg, network, headers, span, beat)

    async def _run(
        self,
        msg: Msg,
        network: NoN,
        headers: dict[str, str],
        span: trace.Span,
        beat: int | None,
    ) -> ExecReply:
        trace_id = trace_id_hex(span)
        try:
            request = decode_exec_request(msg.data)
            _check_fingerprint(network, headers)
            value = await self.payloads.resolve(request.input)
        except (InvalidRequestError, SpecMismatchError) as exc:
            span.set_attribute("error.type", exc.type)
            return self._refusal(msg, exc, trace_id=trace_id, network=network.name)
        execution_id = request.execution_id or uuid.uuid4().hex
        span.set_attribute("nons.execution_id", execution_id)
        now = time.time()
        batch = request.mode == "batch"
        state = ExecutionState(
            execution_id=execution_id,
            network=network.name,
            fingerprint=network.fingerprint,
            input=request.input,
            started_at=now,
            deadline=execution_deadline(
                now, request.timeout_s, network.network_config.global_timeout_seconds, batch=batch
            ),
            batch=batch,
            depth=_depth(headers),
            budget_usd=request.budget_usd or network.network_config.budget_usd,
            metadata=request.metadata,
            trace_id=trace_id,
        )
        state.input = value
        durable = network.network_config.durable if request.durable is None else request.durable
        journal = None
        if durable:
            try:
                kept_input, _ = await self.payloads.offload_if_large(
                    f"{execution_id}.input", encode(request.input), request.input
                )
            except PayloadTooLargeError:
                kept_input = request.input  # no JetStream: admit() refuses it, typed
            record = ExecutionRecord(
                execution_id=execution_id,
                network=network.name,
                fingerprint=network.fingerprint,
                request=msgspec.structs.replace(
                    request, execution_id=execution_id, input=kept_input
                ),
                reply_subject=msg.reply or None,
                reply_headers=inject_headers({}),
                depth=state.depth,
                started_at=now,
            )
            try:
                admitted = await self.durable.admit(record)
            except DurabilityUnavailableError as exc:
                span.set_attribute("error.type", exc.type)
                return self._refusal(msg, exc, trace_id=trace_id, network=network.name)
            if isinstance(admitted, ExecutionRecord):
                span.set_attribute("nons.idempotent_replay", True)
                return await self._existing(admitted, state, trace_id)
            journal = admitted
            await self.heartbeats.mark_durable(beat)
            span.set_attribute("nons.durable", True)
        return await self._run_state(network, state, span, journal)

    async def _run_state(
        self, network: NoN, state: ExecutionState, span: trace.Span, journal: Journal | None
    ) -> ExecReply:
        """Run (or, with a taken-over journal, resume) an execution; record its end."""
        events = EventEmitter(
            self.bus, network.name, state.execution_id, state.trace_id, enabled=self.settings.events
        )
        runner = ExecutionRunner(
            network,
            state,
            self.bus,
            events,
            self.tracer,
            self._breakers_of(network),
            pricing=self.settings.pricing,
            liveness=self._liveness,
            lost_call_resends=self.settings.lost_call_resends,
            journal=journal,
            payloads=self.payloads,
        )
        if journal is None:
            return await runner.run(span)
        journal.payloads = self.payloads
        try:
            reply = await runner.run(span)
            kept = reply
            if len(encode(reply)) > self.payloads.threshold:
                kept = await self._offloaded(reply)
            await journal.finish(kept)
        finally:
            self.durable.release(journal)
        return reply

    async def _existing(
        self, record: ExecutionRecord, state: ExecutionState, trace_id: str | None
    ) -> ExecReply:
        """A request for an execution id already recorded: that execution's reply."""
        reply = await self.durable.outcome(record, state.deadline - time.time())
        if reply is not None:
            return reply
        return ExecReply(
            execution_id=record.execution_id,
            network=record.network,
            status="failed",
            error=error_info(
                ExecutionTimeoutError(
                    f"execution {record.execution_id} (requested again) was still running "
                    "at this request's deadline; its result stays readable by id",
                    details={"layer_index": record.current_layer},
                )
            ),
            trace_id=trace_id,
        )

    async def _resume(self, journal: Journal) -> None:
        """Finish an execution taken over from a dead coordinator; reply where it waits."""
        record = journal.record
        network = self.networks.get(record.network)
        if network is None or network.fingerprint != record.fingerprint:
            logger.warning(
                "cannot resume %s: another definition of %s", record.execution_id, record.network
            )
            self.durable.release(journal)
            return
        state = await self._resumed_state(record, network)
        parent = extract_context(record.reply_headers)
        trace_headers: dict[str, str] = {}
        try:
            with self.tracer.start_as_current_span(
                f"process {exec_subject(record.network)}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": exec_subject(record.network),
                    "messaging.operation.type": "process",
                    "nons.network": record.network,
                    "nons.execution_id": record.execution_id,
                    "nons.resumed_at_layer": record.current_layer,
                },
            ) as recorded:
                with trace.use_span(_traceable(recorded, parent), end_on_exit=False) as span:
                    state.trace_id = state.trace_id or trace_id_hex(span)
                    inject_headers(trace_headers)
                    reply = await self._run_state(network, state, span, journal)
        except LeaseLost:
            return
        self.stats.finished(record.network, reply)
        if record.reply_subject:
            await self._publish_reply(record.reply_subject, reply, trace_headers)

    async def _resumed_state(self, record: ExecutionRecord, network: NoN) -> ExecutionState:
        """The checkpointed state, or a fresh one when no layer had finished."""
        if record.state is not None:
            return msgspec.convert(await self.payloads.resolve(record.state), ExecutionState)
        request = record.request
        return ExecutionState(
            execution_id=record.execution_id,
            network=record.network,
            fingerprint=record.fingerprint,
            input=await self.payloads.resolve(request.input),
            started_at=record.started_at,
            deadline=execution_deadline(
                record.started_at,
                request.timeout_s,
                network.network_config.global_timeout_seconds,
                batch=request.mode == "batch",
            ),
            batch=request.mode == "batch",
            depth=record.depth,
            budget_usd=request.budget_usd or network.network_config.budget_usd,
            metadata=request.metadata,
        )

    def _breakers_of(self, network: NoN) -> dict[str, CircuitBreaker] | None:
        """The network's per-node breakers, shared by all its executions here."""
        config = network.network_config.node_circuit_breaker
        if config is None or not config.enabled:
            return None
        breakers = self._breakers.get(network.name)
        if breakers is None:
            breakers = {
                node.node_id: CircuitBreaker(
                    network.name,
                    node.node_id,
                    failure_threshold=config.failure_threshold,
                    recovery_timeout_s=config.recovery_timeout_s,
                    label=f"node {node.node_id!r} of network {network.name!r}",
                    names=("network", "node_id"),
                )
                for _, node in network.nodes()
            }
            self._breakers[network.name] = breakers
        return breakers

    def _refusal(
        self,
        msg: Msg,
        exc: BaseException,
        *,
        trace_id: str | None = None,
        network: str | None = None,
    ) -> ExecReply:
        headers = msg.headers or {}
        return ExecReply(
            execution_id=headers.get(EXECUTION_ID_HEADER, "") or uuid.uuid4().hex,
            network=network or msg.subject.rsplit(".", 1)[-1],
            status="failed",
            error=error_info(exc),
            trace_id=trace_id,
        )

    async def _reply(
        self, msg: Msg, reply: ExecReply, trace_headers: dict[str, str] | None = None
    ) -> None:
        """Answer with the execution's trace context (`traceparent`, `tracestate`).

        `trace_headers` holds the context of the execution's `process` span; a request
        refused before any span (coordinator saturated) answers in the caller's context.
        """
        if not msg.reply:
            # A publish (not a request) still runs: its events are its only output.
            self.unanswerable += 1
            logger.info(
                "execution %s had no reply subject (published, not requested)", reply.execution_id
            )
            return
        if not trace_headers:
            trace_headers = inject_headers({}, extract_context(msg.headers))
        await self._publish_reply(msg.reply, reply, trace_headers)

    async def _publish_reply(
        self, subject: str, reply: ExecReply, trace_headers: dict[str, str]
    ) -> None:
        """Send a reply; one too large for a message goes with its output by reference."""
        headers = {EXECUTION_ID_HEADER: reply.execution_id, **trace_headers}
        payload = encode(reply)
        if len(payload) > self.payloads.threshold:
            reply = await self._offloaded(reply)
            payload = encode(reply)
        try:
            await self.bus.publish(subject, payload, headers)
        except PayloadTooLargeError as exc:
            too_large = msgspec.structs.replace(
                reply, status="failed", output=None, layers=[], error=error_info(exc)
            )
            await self.bus.publish(subject, encode(too_large), headers)

    async def _offloaded(self, reply: ExecReply) -> ExecReply:
        """The reply with its output, and any large node output, by reference."""
        name = reply.execution_id
        try:
            output, _ = await self.payloads.offload_if_large(
                f"{name}.output", encode(reply.output), reply.output
            )
            layers = []
            for layer in reply.layers:
                nodes = []
                for node in layer.nodes:
                    value, moved = await self.payloads.offload_if_large(
                        f"{name}.{layer.layer_index}.{node.node_id}.output",
                        encode(node.output),
                        node.output,
                    )
                    nodes.append(msgspec.structs.replace(node, output=value) if moved else node)
                layers.append(msgspec.structs.replace(layer, nodes=nodes))
        except PayloadTooLargeError:
            return reply  # no object store: today's typed payload_too_large follows
        return msgspec.structs.replace(reply, output=output, layers=layers)


def _traceable(span: trace.Span, parent: Context) -> trace.Span:
    """The span, or a non-recording stand-in with fresh ids when no SDK is installed.

    Without an OpenTelemetry SDK every span is invalid and carries no trace id; the
    stand-in gives the execution a trace id (in the reply, events and headers) at the
    cost of two random numbers, and is unsampled so no collector is misled.
    """
    if span.get_span_context().is_valid:
        return span
    inherited = trace.get_current_span(parent).get_span_context()
    trace_id = inherited.trace_id if inherited.is_valid else random.getrandbits(128)
    return NonRecordingSpan(
        SpanContext(
            trace_id=trace_id or 1,
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.DEFAULT),
        )
    )


def _check_fingerprint(network: NoN, headers: dict[str, str]) -> None:
    expected = headers.get(FINGERPRINT_HEADER)
    if expected and expected != network.fingerprint:
        raise SpecMismatchError(
            f"network {network.name!r} served here has fingerprint {network.fingerprint}, "
            f"the caller expects {expected}: two different definitions share one name",
            details={"network": network.name, "served": network.fingerprint, "expected": expected},
        )


def _depth(headers: dict[str, str]) -> int:
    try:
        return max(int(headers.get(DEPTH_HEADER, "0")), 0)
    except ValueError:
        return 0
