"""A circuit breaker: stop calling something that keeps failing, try again later.

After `failure_threshold` consecutive counted failures the breaker opens: calls fail
at once with a retryable `CircuitOpenError` carrying `retry_after_s`. After
`recovery_timeout_s` it half-opens and lets one trial call through; a success
closes it, a failure opens it again.

Neutral on purpose: providers guard a (provider, model) with it, the coordinator a
(network, node); each names its pair and may pass its own rule of which failures
count. Imports `nons.core` only.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol, TypeVar

from nons.core.errors import CircuitOpenError, ProviderError
from nons.core.types import CircuitBreakerConfig

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ("BreakerListener", "BreakerState", "CircuitBreaker", "counts_as_failure")

logger = logging.getLogger("nons.resilience.breaker")

_T = TypeVar("_T")


class BreakerState(enum.StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerListener(Protocol):
    """Told of every state change: `(scope, key, old_state, new_state)`."""

    def __call__(
        self, scope: str, key: str, old: BreakerState, new: BreakerState, /
    ) -> None:  # pragma: no cover - protocol
        """React to one state change (emit an event, add a span event...)."""


def counts_as_failure(error: BaseException) -> bool:
    """The default health rule: a retryable provider failure or a timeout says "unhealthy".

    It is the rule breakers have always used (429, 529, 5xx, timeout), kept as the
    default so that moving the breaker here changed nothing. A failure the caller's
    own process caused (`details["local"]`, e.g. its rate limiter) and non-retryable
    errors do not count; nor does cancellation (a `BaseException`). Other retryable
    errors (an open circuit, an unavailable node) say nothing about the guarded
    thing's health unless a caller's own `counts` says so.
    """
    if isinstance(error, ProviderError):
        return error.retryable and not error.details.get("local", False)
    return isinstance(error, TimeoutError)


class CircuitBreaker:
    """The closed / open / half-open state machine of one guarded thing.

    What it guards is named by a `(scope, key)` pair and the names of those two in
    error details: a provider model is `("anthropic", "claude-...")` under
    `("provider", "model")`, a node is `(network, node_id)` under
    `("network", "node_id")`.

    Results of calls admitted under an earlier state (a call that started while
    closed and ends after the breaker opened) are ignored, so only the half-open
    trial decides whether the breaker closes.

    Args:
        scope: what the guarded thing belongs to (provider, network).
        key: the guarded thing within it (model, node id).
        failure_threshold: consecutive counted failures that open the breaker.
        recovery_timeout_s: seconds open before a trial call is let through.
        clock: monotonic seconds; injected by tests.
        on_change: told of each state change; its errors are logged and ignored.
        label: how error messages name the guarded thing.
        names: the detail keys of `scope` and `key` in `CircuitOpenError`.
        counts: which failures count against health (`counts_as_failure`).
    """

    def __init__(
        self,
        scope: str,
        key: str,
        *,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: BreakerListener | None = None,
        label: str | None = None,
        names: tuple[str, str] = ("scope", "key"),
        counts: Callable[[BaseException], bool] = counts_as_failure,
    ) -> None:
        CircuitBreakerConfig(
            failure_threshold=failure_threshold, recovery_timeout_s=recovery_timeout_s
        )  # validates
        self.scope = scope
        """What the guarded thing belongs to."""
        self.key = key
        """The guarded thing."""
        self.failure_threshold = failure_threshold
        """Consecutive counted failures that open the breaker."""
        self.recovery_timeout_s = recovery_timeout_s
        """Seconds open before the half-open trial."""
        self.label = label or f"{scope} {key!r}"
        """What the breaker guards, as error messages name it."""
        self._names = names
        self._counts = counts
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
                flight); `details` names scope and key and has `retry_after_s`.
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
            elif self._counts(error):
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
                self._on_change(self.scope, self.key, old, new)
            except Exception:
                logger.exception("circuit breaker listener failed")

    def _open_error(self, retry_after_s: float, why: str) -> CircuitOpenError:
        return CircuitOpenError(
            f"circuit breaker of {self.label} is {why}: "
            f"failing fast; retry after {retry_after_s:.1f}s",
            details={
                self._names[0]: self.scope,
                self._names[1]: self.key,
                "retry_after_s": round(retry_after_s, 3),
            },
        )
