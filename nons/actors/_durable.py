"""Durable node calls in an actor: claim, run once, record the result before replying.

A call of a durable execution is claimed in `NONS_CALLS` under (execution, layer,
node, attempt) before it runs, the claim renewed while it runs, and its result
written there before the reply is sent. A coordinator that took over a dead one's
execution sends the same attempt again; whichever actor gets it then answers without
running the model twice: from the record, by joining the run in this process, or by
waiting for the live actor that holds the claim. An expired claim (its actor died)
is taken over and the call runs. A cancel (`nons.cancel.<execution_id>`) stops this
process's running calls of that execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors

from nons.core.names import CANCEL_PREFIX
from nons.runtime.durability import CallRecord, DurabilitySettings, DurableStore, call_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from nons.core.results import NodeResult
    from nons.runtime.messages import NodeCall

__all__ = ("DurableCalls",)

logger = logging.getLogger("nons.actor.durable")

_IO_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)

CANCEL_SUBJECTS = f"{CANCEL_PREFIX}.*"


class DurableCalls:
    """The durable calls of one actor host."""

    def __init__(
        self, nc: Client, store: DurableStore, instance: str, settings: DurabilitySettings
    ) -> None:
        self.nc = nc
        self.store = store
        self.instance = instance
        self.settings = settings
        self._running: dict[str, asyncio.Future[NodeResult]] = {}
        self._tasks: dict[str, set[asyncio.Task[object]]] = {}
        self._cancels: Subscription | None = None
        self.reused = 0
        """Calls answered without running (recorded, joined or waited for)."""

    @classmethod
    async def open(
        cls, nc: Client, instance: str, settings: DurabilitySettings
    ) -> DurableCalls | None:
        """Bind the buckets; None when the server has no JetStream (calls then just run)."""
        try:
            store = await DurableStore.open(nc, settings)
        except Exception as exc:  # no JetStream: no durable execution can exist either
            logger.info("durable calls unavailable: %s", exc)
            return None
        calls = cls(nc, store, instance, settings)
        calls._cancels = await nc.subscribe(CANCEL_SUBJECTS, cb=calls._on_cancel)
        return calls

    async def close(self) -> None:
        """Stop listening for cancels."""
        if self._cancels is not None:
            with contextlib.suppress(*_IO_ERRORS):
                await self._cancels.unsubscribe()
            self._cancels = None

    async def run(
        self, call: NodeCall, node_id: str, run: Callable[[], Awaitable[NodeResult]]
    ) -> NodeResult:
        """The call's result: recorded, joined, waited for, or run here (once)."""
        key = call_key(call.execution_id, call.layer_index, node_id, call.attempt)
        joined = self._running.get(key)
        if joined is not None:
            self.reused += 1
            return await asyncio.shield(joined)
        claimed, revision = await self._claim(key, call)
        if claimed is not None:
            self.reused += 1
            return claimed
        future: asyncio.Future[NodeResult] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        task = asyncio.current_task()
        tasks = self._tasks.setdefault(call.execution_id, set())
        if task is not None:
            tasks.add(task)
        renew = asyncio.get_running_loop().create_task(self._renew(key, revision))
        try:
            result = await run()
        except BaseException as exc:
            future.cancel()
            if isinstance(exc, asyncio.CancelledError):
                logger.info("durable call %s cancelled", key)
            raise
        finally:
            renew.cancel()
            self._running.pop(key, None)
            if task is not None:
                tasks.discard(task)
            if not tasks:
                self._tasks.pop(call.execution_id, None)
        await self._record(key, result)
        future.set_result(result)
        return result

    async def _claim(self, key: str, call: NodeCall) -> tuple[NodeResult | None, int | None]:
        """(a result to answer with, None) or (None, the claim's revision) to run it here."""
        claim = CallRecord(owner=self.instance, until=time.time() + self.settings.lease_s)
        try:
            revision, existing = await self.store.claim_call(key, claim)
            if revision is not None:
                return None, revision
            if existing is not None and existing.result is not None:
                return existing.result, None
            if existing is not None and existing.until >= time.time():
                # A live actor runs it: wait for its record (its claim expiring ends the wait).
                record = await self.store.wait_call(key, call.timeout_s or 300.0)
                if record is not None and record.result is not None:
                    return record.result, None
            current = await self.store.call(key)
            if current is not None and current[0].result is not None:
                return current[0].result, None
            revision = await self.store.put_call(key, claim, current[1] if current else None)
            return None, revision
        except _IO_ERRORS as exc:
            logger.warning("durable call %s not claimed (NATS: %s); running it", key, exc)
            return None, None

    async def _renew(self, key: str, revision: int | None) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            claim = CallRecord(owner=self.instance, until=time.time() + self.settings.lease_s)
            try:
                revision = await self.store.put_call(key, claim, revision)
            except _IO_ERRORS as exc:
                logger.debug("claim of %s not renewed: %s", key, exc)
                continue
            if revision is None:
                return  # taken over: another actor will record its own run

    async def _record(self, key: str, result: NodeResult) -> None:
        record = CallRecord(owner=self.instance, result=result)
        try:
            await self.store.put_call(key, record)
        except (*_IO_ERRORS, nats.js.errors.Error) as exc:
            # Unrecorded (the server away, or a result over the entry size): a resumed
            # coordinator would run this call again; the reply still goes out.
            logger.warning("result of durable call %s not recorded: %s", key, exc)

    async def _on_cancel(self, msg: Msg) -> None:
        execution_id = msg.subject.rsplit(".", 1)[-1]
        for task in list(self._tasks.get(execution_id, ())):
            task.cancel()
