"""Circuit breakers per provider model: stop calling a model that keeps failing.

When a provider answers 429, 529, 5xx or times out again and again, more calls
only add load and burn the callers' deadlines. `BreakerClient` routes each call
through the `nons.resilience.breaker.CircuitBreaker` of its (provider, model).

Only retryable provider failures count. A bad request, a rejected key or an
operator's schema violation says nothing about the provider's health, and neither
does a wait for the process's own rate limiter (`details["local"]`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from nons.core.types import CircuitBreakerConfig
from nons.providers.base import Completion
from nons.providers.streaming import aclose_stream, stream_completion
from nons.resilience.breaker import (
    BreakerListener,
    BreakerState,
    CircuitBreaker,
    counts_as_failure,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from nons.providers.base import CompletionRequest, ModelClient

__all__ = (
    "BreakerClient",
    "BreakerListener",
    "BreakerState",
    "CircuitBreaker",
    "counts_as_failure",
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
                    label=f"{self.inner.name} model {model!r}",
                    names=("provider", "model"),
                    counts=counts_as_failure,
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
