"""Where durable executions live: JetStream key-value buckets every process can reach.

Three buckets, each with one job:

- `NONS_EXECUTIONS`, key `<execution_id>`: the `ExecutionRecord`, written before the
  coordinator starts the execution, checkpointed after every layer, and holding the
  final reply for `result()`; kept for the retention.
- `NONS_LEASES`, key `<execution_id>`: who runs it and until when, present only while
  it runs. The owner renews it; a lease past its time is taken over (a revision-checked
  update, so exactly one coordinator wins) by any coordinator serving the network.
- `NONS_CALLS`, key `<execution_id>.<layer>.<node_id>.<attempt>`: each durable node
  call, claimed by the actor that runs it and then holding its result, written before
  the actor replies, so a resuming coordinator never pays for a finished call twice.

Key-value buckets rather than a stream: each fact has one current value looked up by
key, revisions give compare-and-set for leases and claims, and a bucket's TTL is the
retention.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType

from nons.core.errors import DurabilityUnavailableError
from nons.core.results import NodeResult
from nons.runtime.messages import ExecReply, ExecRequest

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.kv import KeyValue

__all__ = (
    "CALLS_BUCKET",
    "EXECUTIONS_BUCKET",
    "LEASES_BUCKET",
    "CallRecord",
    "DurabilitySettings",
    "DurableStore",
    "ExecutionRecord",
    "Lease",
    "call_key",
)

EXECUTIONS_BUCKET = "NONS_EXECUTIONS"
LEASES_BUCKET = "NONS_LEASES"
CALLS_BUCKET = "NONS_CALLS"

RecordStatus = Literal["running", "completed", "failed", "partial"]

logger = logging.getLogger("nons.durable")

_IO_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)


class DurabilitySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long leases and records last."""

    lease_s: float = 5.0
    """A coordinator that has not renewed its lease for this long is taken for dead and
    its executions are taken over (it renews every third of this)."""
    retention_s: float = 24 * 3600.0
    """How long records, call results and offloaded payloads are kept."""
    replicas: int = 1
    """JetStream replicas of the buckets (1 on a single server)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lease_s) and self.lease_s > 0):
            raise ValueError("lease_s must be a positive number of seconds")
        if not self.retention_s > 0:
            raise ValueError("retention_s must be positive")


class ExecutionRecord(msgspec.Struct, kw_only=True):
    """A durable execution as JetStream keeps it."""

    execution_id: str
    network: str
    fingerprint: str
    status: RecordStatus = "running"
    request: ExecRequest
    """The request as accepted (its input resolved, never a payload reference)."""
    reply_subject: str | None = None
    """Where the caller waits: a resuming coordinator replies there."""
    reply_headers: dict[str, str] = msgspec.field(default_factory=dict)
    """The caller's trace context, so a resumed execution stays in the caller's trace."""
    depth: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    state: Any = None
    """The coordinator's `ExecutionState` after the last finished layer (written as its
    JSON, read back as a plain value; a payload reference when it was too large)."""
    current_layer: int = 0
    cost_usd: float = 0.0
    reply: ExecReply | None = None
    """The final reply, once finished."""
    cancel_requested: bool = False
    resumes: int = 0
    """How many times another coordinator took it over."""

    @property
    def finished(self) -> bool:
        """It has its final reply."""
        return self.status != "running"


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """Who runs an execution, until when (unix time)."""

    owner: str
    until: float
    network: str


class CallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A durable node call: claimed while it runs, then its result."""

    owner: str
    """The actor process running (or that ran) it."""
    until: float = 0.0
    """While running: the claim's expiry, renewed by its owner."""
    result: NodeResult | None = None


_RECORD = msgspec.json.Decoder(ExecutionRecord)
_LEASE = msgspec.json.Decoder(Lease)
_CALL = msgspec.json.Decoder(CallRecord)
_ENCODER = msgspec.json.Encoder()


def call_key(execution_id: str, layer_index: int, node_id: str, attempt: int) -> str:
    """The `NONS_CALLS` key of one attempt of one node call."""
    return f"{execution_id}.{layer_index}.{node_id}.{attempt}"


class DurableStore:
    """The buckets of durable executions on one connection."""

    def __init__(
        self,
        executions: KeyValue,
        leases: KeyValue,
        calls: KeyValue,
        settings: DurabilitySettings,
    ) -> None:
        self.executions = executions
        self.leases = leases
        self.calls = calls
        self.settings = settings

    @classmethod
    async def open(
        cls, nc: Client, settings: DurabilitySettings | None = None, *, create: bool = True
    ) -> DurableStore:
        """Bind the buckets, creating them when `create` (and missing).

        Raises:
            DurabilityUnavailableError: the server has no JetStream (or the buckets
                do not exist and `create` is false).
        """
        settings = settings or DurabilitySettings()
        js = nc.jetstream()
        buckets = []
        for name, ttl in (
            (EXECUTIONS_BUCKET, settings.retention_s),
            (LEASES_BUCKET, 0.0),
            (CALLS_BUCKET, settings.retention_s),
        ):
            try:
                try:
                    buckets.append(await js.key_value(name))
                except nats.js.errors.BucketNotFoundError:
                    if not create:
                        raise
                    buckets.append(
                        await js.create_key_value(
                            KeyValueConfig(
                                bucket=name,
                                history=1,
                                ttl=ttl or None,
                                storage=StorageType.FILE,
                                replicas=settings.replicas,
                                description="NoN durable executions",
                            )
                        )
                    )
            except (*_IO_ERRORS, nats.js.errors.Error) as exc:
                raise DurabilityUnavailableError(
                    f"durable executions need JetStream (bucket {name}): "
                    f"{type(exc).__name__} {exc}".strip(),
                    details={"bucket": name},
                ) from None
        executions, leases, calls = buckets
        return cls(executions, leases, calls, settings)

    # Execution records.

    async def create(self, record: ExecutionRecord) -> int | None:
        """Record a new execution; None when one with its id exists (idempotency)."""
        record.updated_at = time.time()
        try:
            return await self.executions.create(record.execution_id, _ENCODER.encode(record))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def get(self, execution_id: str) -> tuple[ExecutionRecord, int] | None:
        """The record and its revision, or None."""
        try:
            entry = await self.executions.get(execution_id)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return _RECORD.decode(entry.value), entry.revision or 0

    async def update(self, record: ExecutionRecord, revision: int) -> int:
        """Write `record` over revision `revision`.

        Raises:
            nats.js.errors.KeyWrongLastSequenceError: someone else wrote it since.
        """
        record.updated_at = time.time()
        return await self.executions.update(
            record.execution_id, _ENCODER.encode(record), last=revision
        )

    async def records(self, network: str | None = None) -> list[ExecutionRecord]:
        """Every kept record (of `network`), newest first."""
        found = [_RECORD.decode(value) for value in await _values(self.executions, ">")]
        if network is not None:
            found = [r for r in found if r.network == network]
        return sorted(found, key=lambda r: r.started_at, reverse=True)

    async def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionRecord | None:
        """The record once finished, watching it for at most `timeout_s`; None if not."""
        watcher = await self.executions.watch(execution_id)
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                async for entry in watcher:
                    if entry is None or entry.value is None:
                        continue
                    record = _RECORD.decode(entry.value)
                    if record.finished:
                        return record
        except TimeoutError:
            return None
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return None

    # Leases.

    async def take_lease(self, execution_id: str, lease: Lease, revision: int | None) -> int | None:
        """Create (`revision` None) or take over a lease; its revision, None if lost."""
        value = _ENCODER.encode(lease)
        try:
            if revision is None:
                return await self.leases.create(execution_id, value)
            return await self.leases.update(execution_id, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def drop_lease(self, execution_id: str) -> None:
        """The execution finished: nobody needs to take it over."""
        try:
            await self.leases.delete(execution_id)
        except (*_IO_ERRORS, nats.js.errors.Error) as exc:
            logger.warning("lease of %s not dropped: %s", execution_id, exc)

    async def expired_leases(self, now: float) -> list[tuple[str, Lease, int]]:
        """Leases past their time: (execution id, lease, revision)."""
        expired = []
        for key, value, revision in await _entries(self.leases, ">"):
            lease = _LEASE.decode(value)
            if lease.until < now:
                expired.append((key, lease, revision))
        return expired

    # Node calls.

    async def claim_call(
        self, key: str, record: CallRecord
    ) -> tuple[int | None, CallRecord | None]:
        """Claim a call: (revision, None) when claimed, (None, the existing record) if not."""
        try:
            return await self.calls.create(key, _ENCODER.encode(record)), None
        except nats.js.errors.KeyWrongLastSequenceError:
            existing = await self.call(key)
            return None, existing[0] if existing is not None else None

    async def call(self, key: str) -> tuple[CallRecord, int] | None:
        """A call's record and revision, or None."""
        try:
            entry = await self.calls.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return _CALL.decode(entry.value), entry.revision or 0

    async def put_call(
        self, key: str, record: CallRecord, revision: int | None = None
    ) -> int | None:
        """Write a call's record (over `revision` when given); None when that lost."""
        try:
            if revision is None:
                return await self.calls.put(key, _ENCODER.encode(record))
            return await self.calls.update(key, _ENCODER.encode(record), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def recorded_calls(
        self, execution_id: str, layer_index: int
    ) -> dict[str, list[tuple[int, CallRecord]]]:
        """The recorded attempts of a layer's calls, by node id, in attempt order."""
        found: dict[str, list[tuple[int, CallRecord]]] = {}
        for key, value, _ in await _entries(self.calls, f"{execution_id}.{layer_index}.>"):
            _, _, node_id, attempt = key.rsplit(".", 3)
            found.setdefault(node_id, []).append((int(attempt), _CALL.decode(value)))
        for attempts in found.values():
            attempts.sort(key=lambda item: item[0])
        return found

    async def wait_call(self, key: str, timeout_s: float) -> CallRecord | None:
        """A call's record once it has a result, or once its claim expired; None on timeout."""
        watcher = await self.calls.watch(key)
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                while True:
                    try:
                        entry = await watcher.updates(timeout=1.0)  # type: ignore[no-untyped-call]
                    except nats.errors.TimeoutError:
                        entry = None
                    if entry is not None and entry.value is not None:
                        record = _CALL.decode(entry.value)
                        if record.result is not None or record.until < time.time():
                            return record
                    elif entry is None:
                        current = await self.call(key)
                        if current is not None and current[0].until < time.time():
                            return current[0]
        except TimeoutError:
            return None
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]


async def _entries(kv: KeyValue, keys: str) -> list[tuple[str, bytes, int]]:
    """The current (key, value, revision) of every key matching `keys`."""
    watcher = await kv.watch(keys, ignore_deletes=True)
    found: list[tuple[str, bytes, int]] = []
    try:
        async with asyncio.timeout(10.0):
            async for entry in watcher:
                if entry is None:
                    break  # the watcher's marker: every current value was delivered
                if entry.value:
                    found.append((entry.key, entry.value, entry.revision or 0))
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return found


async def _values(kv: KeyValue, keys: str) -> list[Any]:
    return [value for _, value, _ in await _entries(kv, keys)]
