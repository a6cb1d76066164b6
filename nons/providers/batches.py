"""Model calls gathered into Message Batches: half the price, answers within 24 hours.

In batch mode (`forward_batch(..., mode="batch")`) the coordinator runs every input's
layer at once, so the layer's model calls reach an actor's provider together. Rather
than one Messages API call each, `MessageBatcher` holds them for a short gathering
window, submits them as one Message Batch (split at the API's limits: 100,000 requests
or 256 MB), polls the batch with backoff until it has ended, and hands each caller its
own result: a completion billed at the batch price, or the typed error of a request
that errored or expired (which the layer's ErrorPolicy then handles like any other).

It knows the SDK only through the three callables its adapter gives it (the request's
params, a completion from a message, an error from an SDK exception), so `anthropic.py`
stays the one module that imports `anthropic`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from nons.core.errors import BatchExpiredError, BatchUnavailableError, ProviderError
from nons.providers.pricing import batch_cost

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from nons.providers.base import Completion, CompletionRequest

__all__ = (
    "BATCH_PROVIDERS",
    "BatchMode",
    "BatchSettings",
    "BatchStatus",
    "MessageBatcher",
    "batch_mode",
    "check_batch_provider",
    "in_batch_mode",
)

logger = logging.getLogger("nons.providers")

MAX_BATCH_REQUESTS = 100_000
"""The Message Batches API's limit on requests per batch."""
MAX_BATCH_BYTES = 256 * 1024 * 1024
"""The API's limit on a batch's size; requests are counted by their JSON length."""


BATCH_PROVIDERS = frozenset({"anthropic", "mock"})
"""Providers that answer batch-mode calls: Anthropic through Message Batches, the
offline mock at once (so batch runs work offline, at the mock's zero price)."""


@dataclass(frozen=True, kw_only=True)
class BatchMode:
    """A model call made now belongs in a Message Batch (set by the actor per node call)."""

    on_progress: Callable[[BatchStatus], Awaitable[None]] | None = None
    """Told where the call's batch stands after each poll that changed it."""


_BATCH_MODE: contextvars.ContextVar[BatchMode | None] = contextvars.ContextVar(
    "nons_batch_mode", default=None
)


def batch_mode() -> BatchMode | None:
    """The batch mode of the current node call, or `None` (online)."""
    return _BATCH_MODE.get()


@contextlib.contextmanager
def in_batch_mode(mode: BatchMode) -> Iterator[None]:
    """Model calls made inside the block go to Message Batches."""
    token = _BATCH_MODE.set(mode)
    try:
        yield
    finally:
        _BATCH_MODE.reset(token)


def check_batch_provider(provider: str) -> None:
    """Refuse a batch-mode call to a provider without a batch API.

    Raises:
        BatchUnavailableError: in batch mode, for a provider not in `BATCH_PROVIDERS`.
    """
    if _BATCH_MODE.get() is not None and provider not in BATCH_PROVIDERS:
        raise BatchUnavailableError(
            f"batch mode is not available for the {provider} provider: only Anthropic "
            "models run in Message Batches; run this network online (mode='online')",
            details={"provider": provider},
        )


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """How calls are gathered and how a submitted batch is watched."""

    gather_s: float = 0.25
    """A batch is sent once no new call arrived for this long..."""
    max_gather_s: float = 2.0
    """...or this long after its first call, whichever comes first."""
    poll_initial_s: float = 1.0
    """First wait before asking whether a batch has ended; doubled after each poll..."""
    poll_max_s: float = 60.0
    """...up to this (a day-long batch is asked about once a minute)."""
    max_requests: int = MAX_BATCH_REQUESTS
    max_bytes: int = MAX_BATCH_BYTES


@dataclass(frozen=True, kw_only=True)
class BatchStatus:
    """Where a Message Batch stands, as its last poll said (the API's request counts)."""

    batch_id: str
    processing_status: str
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        """Requests in the batch."""
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


@dataclass(eq=False)
class _Call:
    custom_id: str
    request: CompletionRequest
    model: str
    params: dict[str, Any]
    size: int
    future: asyncio.Future[Completion]
    on_progress: Callable[[BatchStatus], Awaitable[None]] | None = None


@dataclass(eq=False)
class _Submitted:
    calls: dict[str, _Call]
    batch_id: str | None = None
    last: BatchStatus | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class MessageBatcher:
    """Gathers one process's batch-mode calls into Message Batches and resolves them."""

    def __init__(
        self,
        batches: Any,
        *,
        params: Callable[[CompletionRequest], tuple[str, dict[str, Any]]],
        completion: Callable[[str, Any, CompletionRequest], Completion],
        error: Callable[[BaseException], ProviderError | None],
        result_error: Callable[[str, str], ProviderError],
        settings: BatchSettings | None = None,
    ) -> None:
        """Wire the batcher to its adapter.

        Args:
            batches: the SDK's `messages.batches` resource (create, retrieve, results,
                cancel), typed loosely so this module needs no SDK import.
            params: a request's model and Messages API params.
            completion: the completion of a result's message.
            error: the typed error of an SDK exception (`None`: not an SDK error).
            result_error: the typed error of an errored result, from its API error
                type and message.
            settings: gathering and polling.
        """
        self._batches = batches
        self._params = params
        self._completion = completion
        self._error = error
        self._result_error = result_error
        self.settings = settings or BatchSettings()
        self._pending: list[_Call] = []
        self._first_at = 0.0
        self._last_at = 0.0
        self._flusher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.submitted: list[str] = []
        """Ids of the batches sent, in order (for tests and logs)."""

    async def complete(
        self,
        request: CompletionRequest,
        on_progress: Callable[[BatchStatus], Awaitable[None]] | None = None,
    ) -> Completion:
        """Run `request` in the next Message Batch and return its completion.

        Raises:
            BatchExpiredError: the batch expired before the request was processed.
            ProviderError: the request errored (typed as a direct call's error would
                be), was canceled, or the batch could not be sent or read.
        """
        model, params = self._params(request)
        custom_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        call = _Call(
            custom_id=custom_id,
            request=request,
            model=model,
            params=params,
            size=len(json.dumps(params, default=str)) + 64,
            future=loop.create_future(),
            on_progress=on_progress,
        )
        now = time.monotonic()
        if not self._pending:
            self._first_at = now
        self._last_at = now
        self._pending.append(call)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._gather())
        try:
            return await asyncio.shield(call.future)
        except asyncio.CancelledError:
            if call in self._pending:
                self._pending.remove(call)
            elif not call.future.done():
                call.future.cancel()
            raise

    async def aclose(self) -> None:
        """Stop gathering and watching; calls still waiting get a `ProviderError`."""
        tasks = [t for t in (self._flusher, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(self._pending, ProviderError("the batch provider closed"))
        self._pending = []

    async def _gather(self) -> None:
        """Wait out the gathering window, then send what arrived."""
        settings = self.settings
        while self._pending:
            now = time.monotonic()
            due = min(self._last_at + settings.gather_s, self._first_at + settings.max_gather_s)
            if now < due and len(self._pending) < settings.max_requests:
                await asyncio.sleep(due - now)
                continue
            calls, self._pending = self._pending, []
            for chunk in _chunks(calls, settings.max_requests, settings.max_bytes):
                task = asyncio.ensure_future(self._run(_Submitted({c.custom_id: c for c in chunk})))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Submitted) -> None:
        """Send one batch, poll it until it ends, and resolve its calls."""
        try:
            created = await self._batches.create(
                requests=[
                    {"custom_id": call.custom_id, "params": call.params}
                    for call in batch.calls.values()
                ]
            )
            batch.batch_id = str(created.id)
            self.submitted.append(batch.batch_id)
            logger.info("sent Message Batch %s (%d requests)", batch.batch_id, len(batch.calls))
            await self._tell(batch, created)
            delay = self.settings.poll_initial_s
            status = created
            while status.processing_status != "ended":
                if all(call.future.done() for call in batch.calls.values()):
                    await self._cancel(batch.batch_id)  # every caller went away
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.poll_max_s)
                status = await self._batches.retrieve(batch.batch_id)
                await self._tell(batch, status)
            await self._collect(batch)
        except asyncio.CancelledError:
            self._fail(list(batch.calls.values()), ProviderError("the batch provider closed"))
            raise
        except Exception as exc:  # an SDK or transport failure fails this batch's calls
            typed = self._error(exc) or ProviderError(
                f"Message Batch failed: {type(exc).__name__}", details={"provider": "anthropic"}
            )
            self._fail(list(batch.calls.values()), typed)

    async def _collect(self, batch: _Submitted) -> None:
        results = await self._batches.results(str(batch.batch_id))
        async for line in results:
            call = batch.calls.pop(str(line.custom_id), None)
            if call is None or call.future.done():
                continue
            outcome = line.result
            if outcome.type == "succeeded":
                completion = self._completion(call.model, outcome.message, call.request)
                call.future.set_result(_at_batch_price(completion))
            elif outcome.type == "errored":
                error = getattr(outcome.error, "error", outcome.error)
                call.future.set_exception(
                    self._result_error(
                        str(getattr(error, "type", "api_error")),
                        str(getattr(error, "message", "the batch request errored")),
                    )
                )
            elif outcome.type == "expired":
                call.future.set_exception(
                    BatchExpiredError(
                        f"Message Batch {batch.batch_id} expired before this request ran",
                        details={"provider": "anthropic", "batch_id": batch.batch_id},
                    )
                )
            else:
                call.future.set_exception(
                    ProviderError(
                        f"the request was {outcome.type} in Message Batch {batch.batch_id}",
                        details={"provider": "anthropic", "batch_id": batch.batch_id},
                    )
                )
        self._fail(
            list(batch.calls.values()),
            ProviderError(f"Message Batch {batch.batch_id} has no result for this request"),
        )

    async def _tell(self, batch: _Submitted, status: Any) -> None:
        counts = status.request_counts
        seen = BatchStatus(
            batch_id=str(status.id),
            processing_status=str(status.processing_status),
            processing=counts.processing,
            succeeded=counts.succeeded,
            errored=counts.errored,
            canceled=counts.canceled,
            expired=counts.expired,
        )
        if seen == batch.last:
            return
        batch.last = seen
        for call in batch.calls.values():
            if call.on_progress is not None and not call.future.done():
                try:
                    await call.on_progress(seen)
                except Exception:  # a listener's failure must not fail the model call
                    logger.debug("batch progress listener failed", exc_info=True)

    async def _cancel(self, batch_id: str) -> None:
        try:
            await self._batches.cancel(batch_id)
        except Exception:  # best effort: nobody waits for it any more
            logger.debug("could not cancel Message Batch %s", batch_id, exc_info=True)

    @staticmethod
    def _fail(calls: list[_Call], error: ProviderError) -> None:
        for call in calls:
            if not call.future.done():
                call.future.set_exception(error)


def _chunks(calls: list[_Call], max_requests: int, max_bytes: int) -> list[list[_Call]]:
    """`calls` split so that no batch passes the request or size limit."""
    chunks: list[list[_Call]] = []
    current: list[_Call] = []
    size = 0
    for call in calls:
        if current and (len(current) >= max_requests or size + call.size > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(call)
        size += call.size
    if current:
        chunks.append(current)
    return chunks


def _at_batch_price(completion: Completion) -> Completion:
    return msgspec.structs.replace(completion, cost=batch_cost(completion.cost))
