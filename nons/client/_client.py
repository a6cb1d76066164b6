"""The Python client: run networks by name over NATS and follow their events.

`await nons.connect(url)` gives a `Client`; `client.execute("triage", "text")` sends
the same request any NATS client would and rebuilds the `ExecutionResult` that
`NoN.forward()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from nons.core.errors import (
    CancelledExecutionError,
    CoordinatorLostError,
    DurabilityUnavailableError,
    ExecutionTimeoutError,
    NetworkUnavailableError,
    NodeTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
)
from nons.core.events import Event, decode_event
from nons.core.modes import BATCH_WINDOW_S, ExecutionMode
from nons.core.names import cancel_subject, events_filter, exec_subject, validate_token
from nons.core.results import ErrorInfo, ExecutionMetadata, ExecutionResult
from nons.core.types import Content, CostInfo
from nons.observability.propagation import inject_headers
from nons.runtime.bus import Bus, NoResponders, ReplyLost, ReplyTimeout
from nons.runtime.connection import ConnectionSettings, connect_nats, disconnect, redact_url
from nons.runtime.durability import DurableStore, ExecutionRecord
from nons.runtime.liveness import LIVENESS_HEADER, Liveness
from nons.runtime.messages import (
    EXECUTION_ID_HEADER,
    FINGERPRINT_HEADER,
    ExecReply,
    ExecRequest,
    decode_exec_reply,
    encode,
)
from nons.runtime.payloads import Payloads, is_ref

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

    from nons.core.network import EventCallback, NoN

__all__ = ("Client", "ExecutionInfo", "connect", "result_from_reply")

logger = logging.getLogger("nons.client")

REPLY_MARGIN_S = 5.0
"""Extra wait past the execution deadline: the coordinator replies at the deadline."""

DEFAULT_TIMEOUT_S = 300.0
"""Execution deadline when neither the call nor the network sets one."""

COORDINATOR_LIVENESS_S = 3.0
"""Default silence after which an execution's coordinator is taken for dead: it beats
every quarter of this while it runs the execution (`Nons-Liveness`)."""

NO_RESPONDERS_RETRY_S = 0.05
"""Pause before the one second try of a request that met "no responders"."""

_TERMINAL = frozenset({"execution.completed", "execution.failed"})


class ExecutionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One durable execution, as `nons executions` lists it."""

    execution_id: str
    network: str
    status: str
    """`running`, `completed`, `failed` or `partial`."""
    current_layer: int
    """First layer not finished yet."""
    cost_usd: float
    started_at: float
    updated_at: float
    resumes: int
    """Times another coordinator took it over."""
    error_type: str | None = None

    @classmethod
    def of(cls, record: ExecutionRecord) -> ExecutionInfo:
        """The summary of a record."""
        error = record.reply.error if record.reply is not None else None
        return cls(
            execution_id=record.execution_id,
            network=record.network,
            status=record.status,
            current_layer=record.current_layer,
            cost_usd=record.cost_usd,
            started_at=record.started_at,
            updated_at=record.updated_at,
            resumes=record.resumes,
            error_type=error.type if error is not None else None,
        )


class Client:
    """A NATS connection that runs networks and reads their events."""

    def __init__(
        self,
        nc: NatsClient,
        *,
        owns_connection: bool = False,
        liveness_s: float | None = COORDINATOR_LIVENESS_S,
    ) -> None:
        """Wrap a connected nats-py client (closed by `close()` only if `owns_connection`).

        `liveness_s`: how long the coordinator of an execution may stay silent before
        `execute()` raises `CoordinatorLostError`; None waits for the reply or timeout.
        """
        self.nc = nc
        self._owns = owns_connection
        self.liveness = Liveness(liveness_s) if liveness_s is not None else None
        self.bus = Bus(nc)
        self.payloads = Payloads(nc)
        """Large inputs go to the object store; outputs sent by reference are fetched."""
        self._durable: DurableStore | None = None
        self._started = False
        self.tracer = trace.get_tracer("nons.client")

    async def _ensure_started(self) -> None:
        if not self._started:
            await self.bus.start()
            self._started = True

    async def execute(
        self,
        network: str | NoN,
        input: Content | ExecutionResult,
        *,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        durable: bool | None = None,
        mode: ExecutionMode | None = None,
    ) -> ExecutionResult:
        """Run a network by name (or `NoN`) and return its result, failed ones included.

        Raises:
            NetworkUnavailableError: no coordinator serves the network.
            CoordinatorLostError: the coordinator running it went silent (it died)
                for the client's liveness window; the execution did not finish.
            NodeTimeoutError: no reply arrived before the execution's deadline.
        """
        if isinstance(network, str):
            return await self._execute(
                network,
                input,
                execution_id=execution_id,
                timeout_s=timeout_s,
                budget_usd=budget_usd,
                metadata=metadata,
                durable=durable,
                mode=mode,
            )
        return await self.run_network(
            network,
            input,
            execution_id=execution_id,
            timeout_s=timeout_s,
            budget_usd=budget_usd,
            metadata=metadata,
            durable=durable,
            mode=mode,
        )

    async def run_network(
        self,
        network: NoN,
        input: Content | ExecutionResult,
        *,
        execution_id: str | None = None,
        timeout_s: float | None = None,
        budget_usd: float | None = None,
        metadata: dict[str, str] | None = None,
        durable: bool | None = None,
        mode: ExecutionMode | None = None,
    ) -> ExecutionResult:
        """Run a `NoN` by name, insisting on its definition and firing its callbacks."""
        execution_id = execution_id or uuid.uuid4().hex
        callbacks = network.subscribers
        watcher = await self._watch(network.name, execution_id, callbacks) if callbacks else None
        try:
            return await self._execute(
                network.name,
                input,
                execution_id=execution_id,
                timeout_s=timeout_s,
                budget_usd=budget_usd,
                metadata=metadata,
                durable=durable,
                mode=mode,
                fingerprint=network.fingerprint,
                default_timeout=network.network_config.global_timeout_seconds,
            )
        finally:
            if watcher is not None:
                await watcher.finish()

    async def _execute(
        self,
        network: str,
        input: Content | ExecutionResult,
        *,
        execution_id: str | None,
        timeout_s: float | None,
        budget_usd: float | None,
        metadata: dict[str, str] | None,
        durable: bool | None = None,
        mode: ExecutionMode | None = None,
        fingerprint: str | None = None,
        default_timeout: float = DEFAULT_TIMEOUT_S,
    ) -> ExecutionResult:
        await self._ensure_started()
        validate_token(network, "network name")
        if isinstance(input, ExecutionResult):
            input = input.output
        execution_id = execution_id or uuid.uuid4().hex
        request = ExecRequest(
            input=input,
            execution_id=execution_id,
            budget_usd=budget_usd,
            timeout_s=timeout_s,
            metadata=metadata,
            durable=durable,
            mode=mode,
        )
        body = encode(request)
        if len(body) > self.payloads.threshold:
            with contextlib.suppress(PayloadTooLargeError):  # no object store: sent as is
                ref = await self.payloads.offload(f"{execution_id}.input", encode(input))
                body = encode(msgspec.structs.replace(request, input=ref))
        subject = exec_subject(network)
        if mode == "batch":
            default_timeout = max(default_timeout, BATCH_WINDOW_S)
        wait = (timeout_s if timeout_s is not None else default_timeout) + REPLY_MARGIN_S
        with self.tracer.start_as_current_span(
            f"send {subject}",
            kind=SpanKind.CLIENT,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.operation.type": "send",
                "nons.network": network,
                "nons.execution_id": execution_id,
            },
        ):
            headers = inject_headers({EXECUTION_ID_HEADER: execution_id})
            if fingerprint:
                headers[FINGERPRINT_HEADER] = fingerprint
            if self.liveness is not None:
                headers[LIVENESS_HEADER] = self.liveness.header
            try:
                msg = await self._request(subject, body, headers, wait)
            except NoResponders:
                url = (
                    redact_url(str(self.nc.connected_url.geturl()))
                    if self.nc.connected_url
                    else "?"
                )
                raise NetworkUnavailableError(
                    f"no coordinator serves network {network!r} at {url}: start one with "
                    f"`nons up MODULE:NETWORK` or `nons coordinator ...`",
                    details={"network": network},
                ) from None
            except ReplyLost as exc:
                raise CoordinatorLostError(
                    f"the coordinator running execution {execution_id} of network "
                    f"{network!r} went silent for {exc.silent_s:.3g}s (it died or lost its "
                    "connection): the execution did not finish; resubmitting runs it again",
                    details={
                        "network": network,
                        "execution_id": execution_id,
                        "silent_s": exc.silent_s,
                    },
                ) from None
            except ReplyTimeout:
                raise NodeTimeoutError(
                    f"no reply from network {network!r} within {wait:.1f}s (execution "
                    f"{execution_id}): the coordinator may have stopped",
                    details={"network": network, "execution_id": execution_id},
                ) from None
        return result_from_reply(await self._resolved(decode_exec_reply(msg.data)))

    async def _resolved(self, reply: ExecReply) -> ExecReply:
        """The reply with an output sent by reference fetched (node outputs stay refs)."""
        if is_ref(reply.output):
            return msgspec.structs.replace(reply, output=await self.payloads.resolve(reply.output))
        return reply

    async def _store(self) -> DurableStore:
        if self._durable is None:
            self._durable = await DurableStore.open(self.nc, create=False)
        return self._durable

    async def result(self, execution_id: str, *, wait_s: float = 0.0) -> ExecutionResult:
        """The result of a durable execution by id, also after its caller went away.

        Waits up to `wait_s` for one still running.

        Raises:
            NotFoundError: no durable execution has this id (or it passed its retention).
            ExecutionTimeoutError: it is still running after `wait_s`.
            DurabilityUnavailableError: the server keeps no durable executions.
        """
        record = await self._record(execution_id)
        if not record.finished and wait_s > 0:
            record = await (await self._store()).wait_finished(execution_id, wait_s) or record
        if record.reply is None:
            raise ExecutionTimeoutError(
                f"execution {execution_id} of {record.network!r} is still running "
                f"(layer {record.current_layer})",
                details={"execution_id": execution_id, "layer_index": record.current_layer},
            )
        return result_from_reply(await self._resolved(record.reply))

    async def executions(self, network: str | None = None) -> list[ExecutionInfo]:
        """Running and recent durable executions (of `network`), newest first."""
        try:
            store = await self._store()
        except DurabilityUnavailableError:
            return []
        return [ExecutionInfo.of(record) for record in await store.records(network)]

    async def cancel(self, execution_id: str, *, wait_s: float = 10.0) -> ExecutionInfo:
        """Stop a durable execution: no further layer starts, running calls are stopped.

        Its result becomes `failed` with `error.type: "cancelled"`. A finished one is
        left as it is.

        Raises:
            NotFoundError: no durable execution has this id.
        """
        record = await self._record(execution_id)
        if record.finished:
            return ExecutionInfo.of(record)
        try:
            await self.nc.request(cancel_subject(execution_id), b"", timeout=2.0)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            # No coordinator runs it now (its lease is waiting for a taker): the
            # record is marked so that nobody resumes it.
            await self._mark_cancelled(execution_id)
        store = await self._store()
        finished = await store.wait_finished(execution_id, wait_s)
        return ExecutionInfo.of(finished or (await self._record(execution_id)))

    async def _mark_cancelled(self, execution_id: str) -> None:
        store = await self._store()
        for _ in range(5):
            found = await store.get(execution_id)
            if found is None or found[0].finished:
                return
            record, revision = found
            error = ErrorInfo.from_exception(
                CancelledExecutionError(
                    f"execution {execution_id} was cancelled on request",
                    details={"execution_id": execution_id},
                )
            )
            record.cancel_requested = True
            record.status = "failed"
            record.reply = ExecReply(
                execution_id=execution_id,
                network=record.network,
                status="failed",
                error=error,
                cost_usd=record.cost_usd,
            )
            try:
                await store.update(record, revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            await store.drop_lease(execution_id)
            return

    async def _record(self, execution_id: str) -> ExecutionRecord:
        validate_token(execution_id, "execution id")
        found = await (await self._store()).get(execution_id)
        if found is None:
            raise NotFoundError(
                f"no durable execution {execution_id!r} (never run durably here, or past "
                "its retention)",
                details={"execution_id": execution_id},
            )
        return found[0]

    async def _request(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        wait: float,
    ) -> Msg:
        """A request that asks once more after "no responders".

        nats-server may answer "no responders" for an instant after a coordinator
        subscribed (seen right after `forward()` serves a network in-process), so one
        short second try tells that race from a network nobody serves.
        """
        try:
            return await self.bus.request(subject, payload, headers, wait, liveness=self.liveness)
        except NoResponders:
            await asyncio.sleep(NO_RESPONDERS_RETRY_S)
            return await self.bus.request(subject, payload, headers, wait, liveness=self.liveness)

    async def events(
        self, network: str | None = None, execution_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """Every event of a network (or all networks, or one execution), as it happens.

        Malformed events are logged and skipped; the subscription ends with the loop.
        """
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_event(msg: Msg) -> None:
            await queue.put(msg)

        subscription = await self.nc.subscribe(events_filter(network, execution_id), cb=on_event)
        try:
            while True:
                msg = await queue.get()
                try:
                    yield decode_event(msg.data)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    logger.warning("skipping malformed event on %s: %s", msg.subject, exc)
        finally:
            await subscription.unsubscribe()

    async def _watch(
        self, network: str, execution_id: str, callbacks: Mapping[str, list[EventCallback]]
    ) -> _Watcher:
        watcher = _Watcher(callbacks)
        watcher.subscription = await self.nc.subscribe(
            events_filter(network, execution_id), cb=watcher.on_message
        )
        return watcher

    async def close(self) -> None:
        """Stop the reply inbox and, if this client opened it, close the connection."""
        await self.bus.close()
        if self._owns:
            await disconnect(self.nc)

    async def __aenter__(self) -> Client:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _Watcher:
    """Dispatches one execution's events to a network's callbacks; failures are logged."""

    def __init__(self, callbacks: Mapping[str, list[EventCallback]]) -> None:
        self.callbacks = callbacks
        self.subscription: Any = None
        self.done = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        try:
            event = decode_event(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            logger.warning("skipping malformed event on %s", msg.subject)
            return
        for callback in [*self.callbacks.get(event.type, ()), *self.callbacks.get("*", ())]:
            try:
                outcome = callback(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("event callback %r failed on %s", callback, event.type)
        if event.type in _TERMINAL:
            self.done.set()

    async def finish(self) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), timeout=2.0)
        except TimeoutError:
            logger.debug("terminal event not seen before unsubscribing")
        if self.subscription is not None:
            await self.subscription.unsubscribe()


def result_from_reply(reply: ExecReply) -> ExecutionResult:
    """The `ExecutionResult` a reply stands for."""
    cost = sum((layer.cost for layer in reply.layers), CostInfo())
    if abs(cost.total_cost_usd - reply.cost_usd) > 1e-12:
        cost = CostInfo(total_cost_usd=reply.cost_usd)
    return ExecutionResult(
        output=reply.output,
        status=reply.status,
        metadata=ExecutionMetadata(
            execution_id=reply.execution_id,
            network=reply.network,
            trace_id=reply.trace_id,
            token_usage=reply.usage,
            cost=cost,
            duration_ms=reply.duration_ms,
            is_mock=reply.is_mock,
        ),
        layer_results=reply.layers,
        error=reply.error,
    )


async def connect(
    url: str, *, name: str = "nons-client", liveness_s: float | None = COORDINATOR_LIVENESS_S
) -> Client:
    """Connect to NATS at `url` and return a client that owns the connection.

    `liveness_s` bounds how long a dead coordinator keeps an `execute()` waiting.

    Raises:
        NatsUnavailableError: no server answers at `url` (after a few fast attempts).
    """
    nc = await connect_nats(ConnectionSettings(url=url, name=name))
    client = Client(nc, owns_connection=True, liveness_s=liveness_s)
    await client._ensure_started()
    return client
