"""Circuit breakers per provider model: stop calling a model that keeps failing.

When a provider answers 429, 529, 5xx or times out again and again, more calls
only add load and burn the callers' deadlines. After `failure_threshold`
consecutive such failures the breaker of that (provider, model) opens: calls fail
at once with a retryable `CircuitOpenError` carrying `retry_after_s`, without
reaching the provider. After `recovery_timeout_s` it half-opens and lets one
trial call through; a success closes it, a failure opens it again.

Only retryable provider failures count. A bad request, a rejected key or an
operator's schema violation says nothing about the provider's health, and neither
does a wait for the process's own rate limiter (`details["local"]`).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol, TypeVar

from nons.core.errors import CircuitOpenError, ProviderError
from nons.core.types import CircuitBreakerConfig
from nons.providers.base import Completion
from nons.providers.streaming import aclose_stream, stream_completion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from nons.providers.base import CompletionRequest, ModelClient

__all__ = (
    "BreakerClient",
    "BreakerListener",
    "BreakerState",
    "CircuitBreaker",
    "counts_as_failure",
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class BreakerState(enum.StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerListener(Protocol):
    """Told of every state change: `(provider, model, old_state, new_state)`."""

    def __call__(
        self, provider: str, model: str, old: BreakerState, new: BreakerState
    ) -> None:  # pragma: no cover - protocol
        """React to one state change (emit an event, add a span event...)."""


def counts_as_failure(error: BaseException) -> bool:
    """Whether `error` says the provider is unhealthy (429, 529, 5xx, timeout).

    Errors raised by this process's own rate limiter (`details["local"]`) and
    non-retryable errors do not count; nor does cancellation (a `BaseException`).
    """
    if isinstance(error, ProviderError):
        return error.retryable and not error.details.get("local", False)
    return isinstance(error, TimeoutError)


class CircuitBreaker:
    """The closed / open / half-open state machine of one provider model.

    Results of calls admitted under an earlier state (a call that started while
    closed and ends after the breaker opened) are ignored, so only the half-open
    trial decides whether the breaker closes.

    Args:
        provider: provider name, for errors and the listener.
        model: model id, for errors and the listener.
        failure_threshold: consecutive counted failures that open the breaker.
        recovery_timeout_s: seconds open before a trial call is let through.
        clock: monotonic seconds; injected by tests.
        on_change: told of each state change; its errors are logged and ignored.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: BreakerListener | None = None,
        label: str | None = None,
    ) -> None:
        CircuitBreakerConfig(
            failure_threshold=failure_threshold, recovery_timeout_s=recovery_timeout_s
        )  # validates
        self.provider = provider
        """Provider name."""
        self.model = model
        """Model id."""
        self.failure_threshold = failure_threshold
        """Consecutive counted failures that open the breaker."""
        self.recovery_timeout_s = recovery_timeout_s
        """Seconds open before the half-open trial."""
        self.label = label or f"{provider} model {model!r}"
        """What the breaker guards, as error messages name it."""
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.RLock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down is still `open` until asked)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Counted failures since the last success or state change."""
        return self._failures

    async def call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run `operation` if the breaker admits it, and record how it ended.

        Raises:
            CircuitOpenError: the breaker is open (or half-open with its trial in
                flight); `details` has provider, model and `retry_after_s`.
        """
        ticket = self.admit()
        try:
            result = await operation()
        except BaseException as exc:
            self.record(ticket, exc)
            raise
        self.record(ticket, None)
        return result

    def admit(self) -> int:
        """Let one call through or raise `CircuitOpenError`; returns the call's ticket.

        Raises:
            CircuitOpenError: as `call`.
        """
        with self._lock:
            if self._state is BreakerState.OPEN:
                remaining = self._opened_at + self.recovery_timeout_s - self._clock()
                if remaining > 0:
                    raise self._open_error(remaining, "open")
                self._change(BreakerState.HALF_OPEN)
            if self._state is BreakerState.HALF_OPEN:
                if self._trial_in_flight:
                    raise self._open_error(0.0, "half-open, its trial call is in flight")
                self._trial_in_flight = True
            return self._generation

    def record(self, ticket: int, error: BaseException | None) -> None:
        """Record the end of the call admitted with `ticket`: success when `error` is None."""
        with self._lock:
            if ticket != self._generation:
                return
            half_open = self._state is BreakerState.HALF_OPEN
            if error is None:
                self._failures = 0
                if half_open:
                    self._change(BreakerState.CLOSED)
            elif counts_as_failure(error):
                self._failures += 1
                if half_open or self._failures >= self.failure_threshold:
                    self._opened_at = self._clock()
                    self._change(BreakerState.OPEN)
            elif half_open:
                self._trial_in_flight = False  # inconclusive: let another trial through

    def _change(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._failures = 0
        self._trial_in_flight = False
        log = logger.warning if new is BreakerState.OPEN else logger.info
        log("circuit breaker of %s: %s -> %s", self.label, old, new)
        if self._on_change is not None:
            try:
                self._on_change(self.provider, self.model, old, new)
            except Exception:
                logger.exception("circuit breaker listener failed")

    def _open_error(self, retry_after_s: float, why: str) -> CircuitOpenError:
        return CircuitOpenError(
            f"circuit breaker of {self.label} is {why}: "
            f"failing fast; retry after {retry_after_s:.1f}s",
            details={
                "provider": self.provider,
                "model": self.model,
                "retry_after_s": round(retry_after_s, 3),
            },
        )


class BreakerClient:
    """A `ModelClient` that routes each call through its model's `CircuitBreaker`.

    One instance per provider per process (the registry's), with one breaker per
    model id, created on first use.

    Args:
        inner: the client doing the work.
        config: threshold and cool-down of every breaker.
        clock: monotonic seconds; injected by tests.
        on_change: told of each state change of any of its breakers.
    """

    def __init__(
        self,
        inner: ModelClient,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: BreakerListener | None = None,
    ) -> None:
        self.inner = inner
        """The wrapped client."""
        self.config = config or CircuitBreakerConfig()
        """Threshold and cool-down."""
        self._clock = clock
        self._on_change = on_change
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The wrapped provider's name."""
        return self.inner.name

    def default_model(self) -> str:
        """The wrapped provider's default model."""
        return self.inner.default_model()

    def breaker(self, model: str) -> CircuitBreaker:
        """The breaker of `model` (created closed on first use)."""
        with self._lock:
            breaker = self._breakers.get(model)
            if breaker is None:
                breaker = CircuitBreaker(
                    self.inner.name,
                    model,
                    failure_threshold=self.config.failure_threshold,
                    recovery_timeout_s=self.config.recovery_timeout_s,
                    clock=self._clock,
                    on_change=self._on_change,
                )
                self._breakers[model] = breaker
            return breaker

    def states(self) -> dict[str, BreakerState]:
        """The state of every breaker by model id."""
        with self._lock:
            return {model: breaker.state for model, breaker in self._breakers.items()}

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run the call through the breaker of its model.

        Raises:
            CircuitOpenError: the model's breaker is open.
            ProviderError: whatever the wrapped client raises.
        """
        model = request.config.model_name or self.inner.default_model()
        return await self.breaker(model).call(lambda: self.inner.complete(request))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """As `complete`, streaming: the call's outcome is recorded when the stream ends.

        A stream abandoned by its reader before the end says nothing about the
        provider's health (as a cancelled call).

        Raises:
            CircuitOpenError: the model's breaker is open.
            ProviderError: whatever the wrapped client raises.
        """
        model = request.config.model_name or self.inner.default_model()
        breaker = self.breaker(model)
        ticket = breaker.admit()
        items = stream_completion(self.inner, request)
        answered = False
        try:
            async for item in items:
                if isinstance(item, Completion):
                    answered = True
                    breaker.record(ticket, None)
                yield item
        except BaseException as exc:
            if not answered:
                breaker.record(ticket, exc)
            raise
        finally:
            await aclose_stream(items)

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self.inner.aclose()
