"""The NoN docs' scheduler settings: per-provider rate limits and circuit breakers.

The NoN library ran a background scheduler loop that every model call queued on.
This runtime has no such loop: the provider registry wraps each model client of
an actor process in a shared rate limiter and circuit breaker built from the
settings stored here, so a call waits for capacity in its own task, bounded by its
own deadline. `configure_scheduler`, `get_scheduler`, `start_scheduler` and
`stop_scheduler` keep the docs' code working; the last two have nothing to start.

This module is pure configuration: no I/O and no provider imports. The registry
reads `get_scheduler()` whenever it hands out a client, and drops the clients it
built under older settings.
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING

import msgspec

from nons.core.errors import ConfigurationError
from nons.core.types import (
    BackoffStrategy,
    CircuitBreakerConfig,
    ModelProvider,
    RateLimitConfig,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "BREAKER_FAILURES_VAR",
    "BREAKER_RECOVERY_VAR",
    "DEFAULT_RATE_LIMITS",
    "RATE_LIMIT_CONCURRENCY_VAR",
    "RATE_LIMIT_RPM_VAR",
    "RATE_LIMIT_TPM_VAR",
    "BackoffStrategy",
    "CircuitBreakerConfig",
    "QueueStrategy",
    "RateLimitConfig",
    "SchedulerSettings",
    "configure_scheduler",
    "get_scheduler",
    "scheduler_configured",
    "set_scheduler",
    "start_scheduler",
    "stop_scheduler",
)

RATE_LIMIT_RPM_VAR = "NONS_RATE_LIMIT_RPM"
"""Environment variable overriding `requests_per_minute` of every provider."""

RATE_LIMIT_TPM_VAR = "NONS_RATE_LIMIT_TPM"
"""Environment variable overriding `tokens_per_minute` of every provider."""

RATE_LIMIT_CONCURRENCY_VAR = "NONS_RATE_LIMIT_CONCURRENCY"
"""Environment variable overriding the concurrent calls of every provider."""

BREAKER_FAILURES_VAR = "NONS_BREAKER_FAILURES"
"""Environment variable setting `CircuitBreakerConfig.failure_threshold`."""

BREAKER_RECOVERY_VAR = "NONS_BREAKER_RECOVERY_S"
"""Environment variable setting `CircuitBreakerConfig.recovery_timeout_s`."""

DEFAULT_RATE_LIMITS: Mapping[ModelProvider, RateLimitConfig] = {
    ModelProvider.ANTHROPIC: RateLimitConfig(
        requests_per_minute=1000,
        requests_per_second=15,
        tokens_per_minute=400_000,
        concurrent_requests=25,
    ),
    ModelProvider.OPENAI: RateLimitConfig(
        requests_per_minute=500,
        requests_per_second=10,
        tokens_per_minute=200_000,
        concurrent_requests=20,
    ),
    # The docs give the mock 10000 rpm and 100 concurrent calls; benchmarks push the
    # offline mock far past that, so its limits are set where they never bite.
    ModelProvider.MOCK: RateLimitConfig(
        requests_per_minute=10_000_000,
        tokens_per_minute=10_000_000_000,
        concurrent_requests=100_000,
    ),
}
"""Limits of providers that `configure_scheduler` is not given (the NoN docs' defaults)."""


class QueueStrategy(enum.StrEnum):
    """The NoN docs' queue orders; calls waiting for capacity here are served in arrival order."""

    FIFO = "fifo"
    PRIORITY = "priority"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class SchedulerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Process-wide limits and breaker settings read by the provider registry."""

    rate_limits: dict[ModelProvider, RateLimitConfig] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    """Limits per provider, shared by every node of the process."""
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    """Breaker settings of every provider model."""
    queue_strategy: QueueStrategy = QueueStrategy.PRIORITY
    """Kept for the docs' API: waiting calls are served in arrival order whatever it says."""
    enable_observability: bool = True
    """Whether breaker state changes reach the registry's listener (events, span events)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SchedulerSettings:
        """Defaults, with the optional `NONS_RATE_LIMIT_*` and `NONS_BREAKER_*` overrides.

        A rate-limit variable applies to every provider.

        Raises:
            ConfigurationError: a variable that is not a positive number (the
                message names the variable, never its value).
        """
        rpm = _int_var(environ, RATE_LIMIT_RPM_VAR)
        tpm = _int_var(environ, RATE_LIMIT_TPM_VAR)
        concurrency = _int_var(environ, RATE_LIMIT_CONCURRENCY_VAR)
        limits = dict(DEFAULT_RATE_LIMITS)
        for provider, config in limits.items():
            limits[provider] = msgspec.structs.replace(
                config,
                requests_per_minute=rpm or config.requests_per_minute,
                tokens_per_minute=tpm or config.tokens_per_minute,
                concurrent_requests=concurrency or config.concurrent_requests,
                max_concurrent=None if concurrency else config.max_concurrent,
            )
        failures = _int_var(environ, BREAKER_FAILURES_VAR)
        recovery = _float_var(environ, BREAKER_RECOVERY_VAR)
        default = CircuitBreakerConfig()
        breaker = CircuitBreakerConfig(
            failure_threshold=failures or default.failure_threshold,
            recovery_timeout_s=recovery if recovery is not None else default.recovery_timeout_s,
        )
        return cls(rate_limits=limits, circuit_breaker=breaker)


class _State:
    """The settings of this process, behind a lock (clients may be created from threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: SchedulerSettings | None = None


_state = _State()


def configure_scheduler(
    rate_limits: Mapping[ModelProvider, RateLimitConfig] | None = None,
    queue_strategy: QueueStrategy = QueueStrategy.PRIORITY,
    enable_observability: bool = True,
    circuit_breaker: CircuitBreakerConfig | None = None,
) -> SchedulerSettings:
    """Set the process-wide limits, as the NoN docs' `configure_scheduler` does.

    Providers missing from `rate_limits` keep their defaults (the docs' scheduler
    left them without a limit and failed on them). Model clients created under
    earlier settings are dropped by the registry, so new limits apply at once;
    calls already waiting finish under the old ones.

    Args:
        rate_limits: limits per provider (strings like `"anthropic"` are accepted).
        queue_strategy: kept for the docs' API; waiting calls go in arrival order.
        enable_observability: report breaker state changes to the registry's listener.
        circuit_breaker: breaker settings; the defaults (5 failures, 30 s) when None.

    Returns:
        The settings now in force.

    Raises:
        ConfigurationError: a key that names no provider.
    """
    limits = dict(DEFAULT_RATE_LIMITS)
    for provider, config in (rate_limits or {}).items():
        limits[_provider(provider)] = config
    settings = SchedulerSettings(
        rate_limits=limits,
        circuit_breaker=circuit_breaker if circuit_breaker is not None else CircuitBreakerConfig(),
        queue_strategy=QueueStrategy(queue_strategy),
        enable_observability=enable_observability,
    )
    set_scheduler(settings)
    return settings


def set_scheduler(settings: SchedulerSettings | None) -> None:
    """Install `settings` (from `SchedulerSettings.from_env`, say); None restores the defaults."""
    with _state.lock:
        _state.settings = settings


def scheduler_configured() -> bool:
    """Whether settings were installed (else `get_scheduler` hands out the defaults)."""
    with _state.lock:
        return _state.settings is not None


def get_scheduler() -> SchedulerSettings:
    """The settings in force: configured ones, or the defaults (the same object each time)."""
    with _state.lock:
        if _state.settings is None:
            _state.settings = SchedulerSettings()
        return _state.settings


async def start_scheduler() -> None:
    """Do nothing: the runtime needs no background loop (kept for the docs' code)."""


async def stop_scheduler() -> None:
    """Do nothing: calls wait for capacity in their own tasks (kept for the docs' code)."""


def _provider(value: ModelProvider | str) -> ModelProvider:
    try:
        return ModelProvider(value)
    except ValueError:
        known = ", ".join(p.value for p in ModelProvider)
        raise ConfigurationError(
            f"configure_scheduler: rate_limits key {value!r} is not a provider; known: {known}"
        ) from None


def _int_var(environ: Mapping[str, str], name: str) -> int | None:
    value = _float_var(environ, name)
    if value is None:
        return None
    if value != int(value):
        raise ConfigurationError(f"{name} must be a positive whole number")
    return int(value)


def _float_var(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a positive number") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name} must be a positive number")
    return value
