"""Per-provider rate limits shared by every node of a process, bounded by each call's deadline.

Providers limit requests per minute, tokens per minute and concurrent calls per
key; a process that ignores that gets 429s, and every node of it pays. The
registry wraps each provider's client in a `RateLimitedClient`, so all nodes of a
process share one `ProviderLimiter` per provider:

- a concurrency slot (`anyio.CapacityLimiter`) per call in flight;
- token buckets for requests per minute (and per second, when set) and tokens per
  minute. A call's tokens are estimated before it runs (prompt length / 4 plus
  `max_tokens`) and corrected with the usage the provider reports afterwards;
- after the provider itself answers 429, a pause of the whole provider that grows
  with consecutive 429s (`RateLimitConfig.backoff_*`), so other nodes back off too.

A call waits for capacity in its own task (no scheduler loop), in arrival order:
each caller reserves its tokens before sleeping, so later callers queue behind it.
The wait is bounded by `max_wait_seconds` and by the call's own deadline (the
caller's anyio cancel scope): a wait that cannot end in time fails at once with a
retryable `ProviderRateLimitedError` marked `details["local"] = True` (so circuit
breakers do not count it), leaving the caller time to handle a typed error
instead of a bare timeout.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Protocol

import anyio

from nons.core.errors import ProviderRateLimitedError
from nons.core.types import BackoffStrategy, RateLimitConfig
from nons.providers.base import Completion
from nons.providers.batches import batch_mode
from nons.providers.streaming import aclose_stream, stream_completion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nons.core.types import TokenUsage
    from nons.providers.base import CompletionRequest, ModelClient

__all__ = (
    "CHARS_PER_TOKEN",
    "Clock",
    "ProviderLimiter",
    "RateLimitedClient",
    "SystemClock",
    "billed_tokens",
    "estimate_tokens",
)

CHARS_PER_TOKEN = 4
"""Rough characters per token, for the estimate made before a call."""

_DEADLINE_SHARE = 0.1
"""Share of the remaining time (up to `_DEADLINE_MARGIN_MAX_S`) a wait leaves to the caller."""

_DEADLINE_MARGIN_MAX_S = 1.0
"""Upper bound of that margin, in seconds."""


class Clock(Protocol):
    """Monotonic time and sleeping: the system's, or a fake one in tests."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """`time.monotonic` and `anyio.sleep`."""

    def now(self) -> float:
        """Seconds on the system's monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await anyio.sleep(seconds)


def estimate_tokens(request: CompletionRequest) -> int:
    """Worst-case tokens of a call before it runs: prompt and system text, plus `max_tokens`."""
    chars = len(request.prompt) + len(request.config.system_prompt or request.system or "")
    return math.ceil(chars / CHARS_PER_TOKEN) + request.config.max_tokens


def billed_tokens(usage: TokenUsage) -> int:
    """Tokens a call counts against a tokens-per-minute limit.

    Cache reads are left out, as Anthropic does not count them.
    """
    return usage.prompt_tokens + usage.cache_creation_tokens + usage.completion_tokens


class _Bucket:
    """A token bucket whose level may go negative: callers reserve, then wait their turn."""

    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self.level = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.capacity, self.level + elapsed * self.per_second)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (at most the capacity) is available, after `refill`."""
        needed = min(amount, self.capacity) - self.level
        return max(0.0, needed / self.per_second)

    def give_back(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class ProviderLimiter:
    """The shared limits of one provider in one process.

    Args:
        provider: provider name, for error messages.
        config: the limits.
        clock: time source; a fake one makes tests deterministic.
    """

    def __init__(
        self, provider: str, config: RateLimitConfig, *, clock: Clock | None = None
    ) -> None:
        self.provider = provider
        """Provider name."""
        self.config = config
        """The limits."""
        self.clock: Clock = clock or SystemClock()
        """Time source of the buckets and pauses."""
        now = self.clock.now()
        self._lock = threading.Lock()
        self._slots = anyio.CapacityLimiter(config.concurrency_limit)
        self._buckets: dict[str, _Bucket] = {
            "requests_per_minute": _Bucket(
                config.requests_per_minute, config.requests_per_minute / 60, now
            ),
            "tokens_per_minute": _Bucket(
                config.tokens_per_minute, config.tokens_per_minute / 60, now
            ),
        }
        if config.requests_per_second is not None:
            self._buckets["requests_per_second"] = _Bucket(
                config.requests_per_second, config.requests_per_second, now
            )
        self._bucket_list = [
            (name, bucket, name == "tokens_per_minute") for name, bucket in self._buckets.items()
        ]
        self._paused_until = -math.inf
        self._throttled = 0

    @property
    def in_flight(self) -> int:
        """Calls holding a concurrency slot."""
        return int(self._slots.borrowed_tokens)

    @property
    def waiting_for_slot(self) -> int:
        """Calls waiting for a concurrency slot."""
        return self._slots.statistics().tasks_waiting

    def available(self, limit: str) -> float:
        """What a bucket holds now (`requests_per_minute`, `tokens_per_minute`...)."""
        with self._lock:
            bucket = self._buckets[limit]
            bucket.refill(self.clock.now())
            return bucket.level

    async def acquire_slot(self, model: str) -> None:
        """Take a concurrency slot; release it with `release_slot`.

        Raises:
            ProviderRateLimitedError: no slot freed up within the wait budget.
        """
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            pass
        else:
            return
        budget = self._wait_budget()
        with anyio.move_on_after(budget) as scope:
            await self._slots.acquire()
        if scope.cancelled_caught:
            raise self._error(
                model,
                "concurrent_requests",
                f"all {self.config.concurrency_limit} concurrent calls stayed busy "
                f"for {budget:.2f}s",
                retry_after_s=0.0,
            )

    def release_slot(self) -> None:
        """Give back the slot taken by this task's `acquire_slot`."""
        self._slots.release()

    async def reserve(self, tokens: int, model: str) -> int:
        """Reserve one request and `tokens` tokens, waiting for them when needed.

        Returns:
            The tokens reserved, to pass to `settle` when the call ends.

        Raises:
            ProviderRateLimitedError: the wait cannot end within the call's deadline
                or `max_wait_seconds`; nothing is reserved then.
        """
        with self._lock:
            now = self.clock.now()
            # Plain loops over (name, bucket, counts tokens): this runs on every call.
            limit, wait = "provider_backoff", max(0.0, self._paused_until - now)
            for name, bucket, counts_tokens in self._bucket_list:
                bucket.refill(now)
                needed = bucket.wait_for(tokens if counts_tokens else 1.0)
                if needed > wait:
                    limit, wait = name, needed
            # The deadline lookup is only paid when there is a wait to bound.
            budget = self._wait_budget() if wait > 0 else 0.0
            if wait > budget:
                raise self._error(
                    model,
                    limit,
                    f"{self._describe(limit)} needs a {wait:.2f}s wait, more than the "
                    f"{budget:.2f}s this call may wait",
                    retry_after_s=wait,
                )
            for _, bucket, counts_tokens in self._bucket_list:
                bucket.level -= tokens if counts_tokens else 1.0
        if wait > 0:
            try:
                await self.clock.sleep(wait)
            except BaseException:
                self._refund(tokens, request=True)
                raise
        return tokens

    def settle(self, reserved: int, used: int) -> None:
        """Correct the token bucket with what a call really used (0 when it failed)."""
        self._refund(reserved - used, request=False)

    def provider_throttled(self) -> None:
        """Note a 429 from the provider: pause every call of this provider for a while."""
        with self._lock:
            self._throttled += 1
            delay = _backoff_delay(self.config, self._throttled)
            self._paused_until = max(self._paused_until, self.clock.now() + delay)

    def provider_succeeded(self) -> None:
        """Note a success: the next 429 starts the backoff afresh."""
        if self._throttled:  # nearly always 0: no lock to take then
            with self._lock:
                self._throttled = 0

    def _refund(self, tokens: int, *, request: bool) -> None:
        if tokens == 0 and not request:
            return
        with self._lock:
            now = self.clock.now()
            for _, bucket, counts_tokens in self._bucket_list:
                if counts_tokens:
                    bucket.refill(now)
                    bucket.give_back(tokens)
                elif request:
                    bucket.refill(now)
                    bucket.give_back(1)

    def _wait_budget(self) -> float:
        remaining = anyio.current_effective_deadline() - anyio.current_time()
        margin = min(remaining * _DEADLINE_SHARE, _DEADLINE_MARGIN_MAX_S)
        return max(0.0, min(self.config.max_wait_seconds, remaining - margin))

    def _describe(self, limit: str) -> str:
        if limit == "provider_backoff":
            return f"the pause after {self._throttled} rate-limit answer(s) of {self.provider}"
        return f"the {self.provider} limit {limit}={getattr(self.config, limit)}"

    def _error(
        self, model: str, limit: str, reason: str, *, retry_after_s: float
    ) -> ProviderRateLimitedError:
        return ProviderRateLimitedError(
            f"rate limited in this process before calling {self.provider} "
            f"model {model!r}: {reason}",
            details={
                "provider": self.provider,
                "model": model,
                "limit": limit,
                "retry_after_s": round(retry_after_s, 3),
                "local": True,
            },
        )


class RateLimitedClient:
    """A `ModelClient` whose calls go through a shared `ProviderLimiter` first.

    Args:
        inner: the client doing the work.
        config: the provider's limits.
        clock: time source; a fake one in tests.
    """

    def __init__(
        self, inner: ModelClient, config: RateLimitConfig, *, clock: Clock | None = None
    ) -> None:
        self.inner = inner
        """The wrapped client."""
        self.limiter = ProviderLimiter(inner.name, config, clock=clock)
        """The limits shared by every call through this client."""

    @property
    def name(self) -> str:
        """The wrapped provider's name."""
        return self.inner.name

    def default_model(self) -> str:
        """The wrapped provider's default model."""
        return self.inner.default_model()

    async def complete(self, request: CompletionRequest) -> Completion:
        """Wait for capacity within the call's deadline, then run the call.

        Raises:
            ProviderRateLimitedError: capacity did not free up in time
                (`details["local"]` is True), or the provider answered 429.
            ProviderError: whatever else the wrapped client raises.
        """
        if batch_mode() is not None:  # Message Batches have their own limits, not these
            return await self.inner.complete(request)
        model = request.config.model_name or self.inner.default_model()
        limiter = self.limiter
        await limiter.acquire_slot(model)
        try:
            reserved = await limiter.reserve(estimate_tokens(request), model)
            try:
                completion = await self.inner.complete(request)
            except BaseException as exc:
                limiter.settle(reserved, 0)
                if isinstance(exc, ProviderRateLimitedError) and not exc.details.get("local"):
                    limiter.provider_throttled()
                raise
            limiter.settle(reserved, billed_tokens(completion.usage))
            limiter.provider_succeeded()
            return completion
        finally:
            limiter.release_slot()

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """As `complete`, streaming: the slot is held until the stream ends.

        Raises:
            ProviderRateLimitedError: as `complete`.
            ProviderError: whatever else the wrapped client raises.
        """
        if batch_mode() is not None:
            async for item in stream_completion(self.inner, request):
                yield item
            return
        model = request.config.model_name or self.inner.default_model()
        limiter = self.limiter
        await limiter.acquire_slot(model)
        try:
            reserved = await limiter.reserve(estimate_tokens(request), model)
            used = 0
            items = stream_completion(self.inner, request)
            try:
                async for item in items:
                    if isinstance(item, Completion):
                        used = billed_tokens(item.usage)
                    yield item
            except BaseException as exc:
                if isinstance(exc, ProviderRateLimitedError) and not exc.details.get("local"):
                    limiter.provider_throttled()
                raise
            else:
                limiter.provider_succeeded()
            finally:
                await aclose_stream(items)
                limiter.settle(reserved, used)
        finally:
            limiter.release_slot()

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self.inner.aclose()


def _backoff_delay(config: RateLimitConfig, throttled: int) -> float:
    base = config.backoff_base_delay
    if config.backoff_strategy is BackoffStrategy.FIXED:
        delay = base
    elif config.backoff_strategy is BackoffStrategy.LINEAR:
        delay = base * throttled
    else:
        delay = base * config.backoff_multiplier ** (throttled - 1)
    return min(delay, config.backoff_max_delay)
