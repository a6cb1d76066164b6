"""Durable executions in a coordinator: record, lease, checkpoint, take over, cancel.

A durable execution is recorded (`nons.runtime.durability`) before it starts, under
a lease its coordinator renews every third of `lease_s`. After each layer the
coordinator checkpoints its `ExecutionState`; at the end it stores the reply and drops
the lease. Every coordinator looks for leases past their time (every half lease) on
the networks it serves, takes one over with a revision-checked write (so exactly one
wins) and resumes the execution at its first unfinished layer, re-running only the
node calls that have no recorded result. A cancel request (`nons.cancel.<id>`) reaches
every coordinator; the owner stops the execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors

from nons.core.errors import CancelledExecutionError
from nons.core.names import CANCEL_PREFIX
from nons.core.results import ErrorInfo
from nons.runtime.durability import (
    CallRecord,
    DurabilitySettings,
    DurableStore,
    ExecutionRecord,
    Lease,
)
from nons.runtime.tasks import TaskSet

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    import anyio
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from nons.coordinator._state import ExecutionState
    from nons.runtime.messages import ExecReply
    from nons.runtime.payloads import Payloads

__all__ = ("DurableRuns", "Journal", "LeaseLost")

logger = logging.getLogger("nons.durable")

_RETRY_S = 0.2
"""Pause between tries of a checkpoint the server did not take (it may be restarting)."""

_ENCODER = msgspec.json.Encoder()
_IO_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)


class LeaseLost(Exception):
    """Another coordinator took this execution over: this one must not reply."""


class Journal:
    """One running durable execution's link to its record."""

    def __init__(
        self,
        store: DurableStore,
        record: ExecutionRecord,
        revision: int,
        lease: Lease,
        lease_revision: int,
        *,
        resumed_from: str | None = None,
    ) -> None:
        self.store = store
        self.record = record
        self.revision = revision
        self.lease = lease
        self.lease_revision = lease_revision
        self.resumed_from = resumed_from
        """The previous owner, when this coordinator took the execution over."""
        self.lost = False
        self.cancelled: ErrorInfo | None = None
        self.scope: anyio.CancelScope | None = None
        """The running layer's scope, cancelled by `cancel()`."""
        self.payloads: Payloads | None = None
        """Where a checkpoint too large for a key-value entry goes."""

    @property
    def resume_layer(self) -> int | None:
        """The layer a taken-over execution resumes at (None when not taken over)."""
        return self.record.current_layer if self.resumed_from is not None else None

    def cancel(self, reason: str = "cancelled on request") -> None:
        """Start no further layer and stop the running one."""
        self.cancelled = ErrorInfo.from_exception(
            CancelledExecutionError(
                f"execution {self.record.execution_id} was {reason}",
                details={"execution_id": self.record.execution_id},
            )
        )
        if self.scope is not None:
            self.scope.cancel()

    async def recorded(self, layer_index: int) -> dict[str, list[tuple[int, CallRecord]]]:
        """What the actors recorded of a layer's calls (empty when unreadable)."""
        try:
            return await self.store.recorded_calls(self.record.execution_id, layer_index)
        except _IO_ERRORS as exc:
            logger.warning("recorded calls of %s unreadable: %s", self.record.execution_id, exc)
            return {}

    async def checkpoint(self, state: ExecutionState) -> None:
        """Record the state after a finished layer (retrying while the server is away)."""
        raw = _ENCODER.encode(state)
        if self.payloads is not None and len(raw) > self.payloads.threshold:
            name = f"{self.record.execution_id}.state.{state.next_layer}"
            raw = _ENCODER.encode(await self.payloads.offload(name, raw))
        self.record.state = msgspec.Raw(raw)
        self.record.current_layer = state.next_layer
        self.record.cost_usd = state.cost.total_cost_usd
        await self._write(state.deadline)

    async def finish(self, reply: ExecReply) -> None:
        """Store the final reply and drop the lease."""
        self.record.status = reply.status
        self.record.reply = reply
        self.record.current_layer = len(reply.layers)
        self.record.cost_usd = reply.cost_usd
        await self._write(time.time() + 30.0)
        await self.store.drop_lease(self.record.execution_id)

    async def _write(self, until: float) -> None:
        while True:
            if self.lost:
                raise LeaseLost(self.record.execution_id)
            try:
                self.revision = await self.store.update(self.record, self.revision)
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                self.lost = True
                raise LeaseLost(self.record.execution_id) from None
            except _IO_ERRORS as exc:
                if time.time() > until:
                    raise
                logger.info("checkpoint of %s waits for NATS: %s", self.record.execution_id, exc)
                await asyncio.sleep(_RETRY_S)


class DurableRuns:
    """The durable side of one coordinator."""

    def __init__(
        self,
        nc: Client,
        networks: set[str],
        settings: DurabilitySettings,
        resume: Callable[[Journal], Coroutine[Any, Any, None]],
    ) -> None:
        self.nc = nc
        self.networks = networks
        self.settings = settings
        self.instance = f"coordinator-{uuid.uuid4().hex[:12]}"
        self.store: DurableStore | None = None
        self.unavailable: str | None = None
        """Why durable executions cannot be recorded here (None: they can)."""
        self.journals: dict[str, Journal] = {}
        self._resume = resume
        self._tasks = TaskSet()
        self._ticker: asyncio.Task[None] | None = None
        self._cancels: Subscription | None = None

    async def start(self) -> None:
        """Bind the buckets (when JetStream is there) and start renewing and watching."""
        try:
            self.store = await DurableStore.open(self.nc, self.settings)
        except Exception as exc:  # no JetStream: durable requests are refused, typed
            self.unavailable = str(exc)
            logger.info("durable executions unavailable: %s", exc)
            return
        self._cancels = await self.nc.subscribe(f"{CANCEL_PREFIX}.*", cb=self._on_cancel)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        """Stop renewing: executions still here are taken over once their leases pass."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._cancels is not None:
            with contextlib.suppress(*_IO_ERRORS):
                await self._cancels.unsubscribe()
            self._cancels = None
        await self._tasks.drain(1.0)

    def lease(self, network: str) -> Lease:
        """A fresh lease of this coordinator."""
        return Lease(
            owner=self.instance, until=time.time() + self.settings.lease_s, network=network
        )

    async def admit(self, record: ExecutionRecord) -> Journal | ExecutionRecord:
        """Record a new execution and lease it; or the existing record of its id.

        Raises:
            DurabilityUnavailableError: no JetStream here.
        """
        store = self._require()
        revision = await store.create(record)
        if revision is None:
            existing = await store.get(record.execution_id)
            if existing is not None:
                return existing[0]
            revision = await store.create(record)  # gone in between (retention)
            if revision is None:
                raise LeaseLost(record.execution_id)
        lease = self.lease(record.network)
        lease_revision = await store.take_lease(record.execution_id, lease, None)
        if lease_revision is None:  # a stale lease of an earlier run of this id
            current = await _lease_entry(store, record.execution_id)
            lease_revision = await store.take_lease(
                record.execution_id, lease, current[1] if current else None
            )
            if lease_revision is None:
                raise LeaseLost(record.execution_id)
        journal = Journal(store, record, revision, lease, lease_revision)
        self.journals[record.execution_id] = journal
        return journal

    def release(self, journal: Journal) -> None:
        """The execution ended here (finished, or lost to another coordinator)."""
        self.journals.pop(journal.record.execution_id, None)

    async def outcome(self, record: ExecutionRecord, wait_s: float) -> ExecReply | None:
        """An existing execution's reply: at once if finished, else once it finishes."""
        if record.finished:
            return record.reply
        finished = await self._require().wait_finished(record.execution_id, wait_s)
        return finished.reply if finished is not None else None

    def _require(self) -> DurableStore:
        if self.store is None:
            from nons.core.errors import DurabilityUnavailableError

            raise DurabilityUnavailableError(
                "durable executions need JetStream, which this coordinator's server does "
                f"not offer ({self.unavailable})",
                details={"reason": self.unavailable},
            )
        return self.store

    async def _tick(self) -> None:
        """Renew own leases every third of the lease; look for dead ones every other tick."""
        period = self.settings.lease_s / 3
        tick = 0
        while True:
            await asyncio.sleep(period)
            tick += 1
            await self._renew()
            if tick % 2 == 0 or not self.journals:
                await self._take_over_expired()

    async def _renew(self) -> None:
        assert self.store is not None
        for journal in list(self.journals.values()):
            lease = self.lease(journal.record.network)
            try:
                revision = await self.store.take_lease(
                    journal.record.execution_id, lease, journal.lease_revision
                )
            except _IO_ERRORS as exc:
                logger.info("lease of %s not renewed (NATS): %s", journal.record.execution_id, exc)
                continue
            if revision is None:
                logger.warning("execution %s was taken over elsewhere", journal.record.execution_id)
                journal.lost = True
                if journal.scope is not None:
                    journal.scope.cancel()
                self.release(journal)
            else:
                journal.lease, journal.lease_revision = lease, revision

    async def _take_over_expired(self) -> None:
        assert self.store is not None
        try:
            expired = await self.store.expired_leases(time.time())
        except _IO_ERRORS as exc:
            logger.debug("leases unreadable: %s", exc)
            return
        for execution_id, old, revision in expired:
            if execution_id in self.journals or old.network not in self.networks:
                continue
            lease = self.lease(old.network)
            lease_revision = await self.store.take_lease(execution_id, lease, revision)
            if lease_revision is None:
                continue  # another coordinator won it
            found = await self.store.get(execution_id)
            if found is None or found[0].finished:
                await self.store.drop_lease(execution_id)
                continue
            record, record_revision = found
            record.resumes += 1
            journal = Journal(
                self.store, record, record_revision, lease, lease_revision, resumed_from=old.owner
            )
            self.journals[execution_id] = journal
            logger.info(
                "taking over execution %s of %s at layer %d (owner %s went silent)",
                execution_id,
                record.network,
                record.current_layer,
                old.owner,
            )
            self._tasks.spawn(self._resume(journal))

    async def _on_cancel(self, msg: Msg) -> None:
        execution_id = msg.subject.rsplit(".", 1)[-1]
        journal = self.journals.get(execution_id)
        if journal is None:
            return  # not ours: the owner (if any) answers
        journal.cancel()
        if msg.reply:
            with contextlib.suppress(*_IO_ERRORS):
                await self.nc.publish(msg.reply, _ENCODER.encode({"cancelled": True}))


async def _lease_entry(store: DurableStore, execution_id: str) -> tuple[Any, int] | None:
    try:
        entry = await store.leases.get(execution_id)
    except nats.js.errors.KeyNotFoundError:
        return None
    return entry.value, entry.revision or 0
