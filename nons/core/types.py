"""Configuration and accounting types of the NoN model, with the error hierarchy.

Every type here is a frozen msgspec Struct so that a network, its configuration and
its usage figures travel between processes as plain JSON without a second schema.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

import msgspec
from msgspec.structs import force_setattr

from nons.core.errors import (
    BudgetExceededError,
    CircuitOpenError,
    ConfigurationError,
    ExecutionError,
    ExecutionTimeoutError,
    InjectedFailureError,
    InternalError,
    InvalidNameError,
    InvalidRequestError,
    LayerFailedError,
    LayerTimeoutError,
    NetworkUnavailableError,
    NodeTimeoutError,
    NodeUnavailableError,
    NonsError,
    OperatorError,
    OperatorValidationError,
    PayloadTooLargeError,
    ProviderAuthenticationError,
    ProviderBadRequestError,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    RetryableError,
    ServerStartError,
    SpecError,
    SpecMismatchError,
    UnknownOperatorError,
)

__all__ = (
    "BackoffStrategy",
    "BudgetExceededError",
    "CacheConfig",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "ConfigurationError",
    "Content",
    "CostInfo",
    "ErrorPolicy",
    "ExecutionError",
    "ExecutionTimeoutError",
    "InjectedFailureError",
    "InternalError",
    "InvalidNameError",
    "InvalidRequestError",
    "LayerConfig",
    "LayerFailedError",
    "LayerTimeoutError",
    "ModelConfig",
    "ModelProvider",
    "NetworkConfig",
    "NetworkUnavailableError",
    "NoNError",
    "NodeTimeoutError",
    "NodeUnavailableError",
    "NonsError",
    "OperatorError",
    "OperatorValidationError",
    "PayloadTooLargeError",
    "ProviderAuthenticationError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderOverloadedError",
    "ProviderRateLimitedError",
    "ProviderUnavailableError",
    "RateLimitConfig",
    "RetryableError",
    "ServerStartError",
    "SpecError",
    "SpecMismatchError",
    "TokenUsage",
    "UnknownOperatorError",
    "ValidationError",
)

Content = str | dict[str, Any] | list[Any] | int | float | bool | None
"""What flows between nodes: text or any JSON value."""

NoNError = NonsError
"""The root error under the name the NoN documentation uses."""

ValidationError = OperatorValidationError
"""Schema violations under the name the NoN documentation uses."""


class ModelProvider(enum.StrEnum):
    """Who answers a node's model calls."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    MOCK = "mock"


class ErrorPolicy(enum.StrEnum):
    """What a layer does when some of its nodes fail."""

    FAIL_FAST = "fail_fast"
    RETRY_WITH_BACKOFF = "retry_with_backoff"
    FALLBACK_MODEL = "fallback_model"
    SKIP_AND_CONTINUE = "skip_and_continue"
    RETURN_PARTIAL = "return_partial"


class ModelConfig(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """Which model answers a node, and how.

    `provider=None` means "the process default": `anthropic` when `ANTHROPIC_API_KEY`
    is set where the node runs, the offline `mock` provider otherwise.
    """

    provider: ModelProvider | None = None
    """The provider; `None` picks the process default."""
    model_name: str | None = None
    """Provider model id; `None` picks the provider's default model."""
    temperature: float = 0.7
    """Sampling temperature."""
    max_tokens: int = 1024
    """Upper bound on generated tokens (also the worst case used for budgets)."""
    top_p: float | None = None
    """Nucleus sampling, when set."""
    stop: tuple[str, ...] = ()
    """Stop sequences."""
    system_prompt: str | None = None
    """Replaces the operator's system prompt when set."""
    timeout_seconds: float | None = None
    """Per-call deadline of the provider call; the node deadline applies otherwise."""
    fallback: ModelConfig | None = None
    """Model used by the `FALLBACK_MODEL` policy after this one fails."""
    budget_model: ModelConfig | None = None
    """Cheaper model used when the execution's remaining budget cannot cover this one."""
    extra_params: dict[str, Any] = msgspec.field(default_factory=dict)
    """Provider-specific parameters passed through unchanged."""

    def __post_init__(self) -> None:
        if isinstance(self.provider, str) and not isinstance(self.provider, ModelProvider):
            try:
                force_setattr(self, "provider", ModelProvider(self.provider))
            except ValueError:
                known = ", ".join(p.value for p in ModelProvider)
                raise ConfigurationError(
                    f"unknown model provider {self.provider!r}; known: {known}"
                ) from None
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigurationError(f"temperature must be in [0, 2], got {self.temperature}")
        if self.max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be at least 1, got {self.max_tokens}")


class LayerConfig(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """How a parallel layer runs and what it does with failures."""

    timeout_seconds: float = 60.0
    """Deadline for the whole layer, retries included."""
    error_policy: ErrorPolicy = ErrorPolicy.RETRY_WITH_BACKOFF
    """What to do when nodes fail."""
    min_success_threshold: float = 1.0
    """Share of nodes that must succeed under `RETURN_PARTIAL` (0 to 1)."""
    max_retries: int = 2
    """Retries per node for retryable errors under `RETRY_WITH_BACKOFF`."""
    retry_delay_seconds: float = 0.2
    """First backoff delay; doubled each retry, with jitter."""
    node_timeout_seconds: float | None = None
    """Deadline of one node call; the layer's remaining time when `None`."""

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ConfigurationError("LayerConfig.timeout_seconds must be positive")
        if not 0.0 <= self.min_success_threshold <= 1.0:
            raise ConfigurationError("LayerConfig.min_success_threshold must be in [0, 1]")
        if self.max_retries < 0:
            raise ConfigurationError("LayerConfig.max_retries must be >= 0")


class NetworkConfig(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """Execution-wide settings of a network."""

    global_timeout_seconds: float = 300.0
    """Deadline of a whole execution unless a request sets `timeout_s`."""
    budget_usd: float | None = None
    """Spending limit of one execution unless a request sets `budget_usd`."""
    max_depth: int = 8
    """How deeply sub-networks may nest."""
    enable_tracing: bool = True
    """Emit spans (when a tracer provider is configured)."""
    enable_metrics: bool = True
    """Record metrics (when a meter provider is configured)."""
    cost_alert_usd: float | None = None
    """Publish a `cost.alert` event when an execution's spending passes this amount."""
    node_circuit_breaker: CircuitBreakerConfig | None = None
    """Per-node circuit breakers in the coordinator (off when `None`)."""
    cache: CacheConfig | None = None
    """Node-result caching in the actors (off when `None`; see `CacheConfig`)."""
    prompt_cache: bool = True
    """Let the provider cache the prompt prefix the nodes of a layer share, and warm it
    with one call before the others (Anthropic models; see the README's Prompt caching).
    False turns it off for every node of the network."""
    durable: bool = False
    """Record every execution in JetStream so that it survives its coordinator (a
    request can ask for it alone with `"durable": true`); see the README's Reliability."""


class BackoffStrategy(enum.StrEnum):
    """How a provider's shared limiter backs off after the provider answers 429."""

    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    FIXED = "fixed"


class RateLimitConfig(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Per-provider limits shared by every node of a process.

    The limiter waits for capacity only as long as the call's own deadline (and
    `max_wait_seconds`) allows; a wait that cannot fit fails at once with a
    retryable `ProviderRateLimitedError` instead of queueing without bound.
    """

    requests_per_minute: int = 60
    """Model calls per minute."""
    tokens_per_minute: int = 150_000
    """Input plus output tokens per minute (estimated before a call, corrected after)."""
    concurrent_requests: int = 10
    """Calls in flight at once."""
    requests_per_second: int | None = None
    """A second, finer request limit, as the NoN scheduler docs allow; off when None."""
    max_concurrent: int | None = None
    """The NoN docs' name for `concurrent_requests`; wins over it when set."""
    max_wait_seconds: float = 60.0
    """Longest wait for capacity even when the call's deadline would allow more."""
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    """How the pause after a provider 429 grows with consecutive 429s."""
    backoff_base_delay: float = 1.0
    """Pause of the whole provider after its first 429 in a row (seconds)."""
    backoff_max_delay: float = 60.0
    """Upper bound of that pause."""
    backoff_multiplier: float = 2.0
    """Growth factor of the pause under `EXPONENTIAL`."""

    def __post_init__(self) -> None:
        limits = {
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "concurrent_requests": self.concurrent_requests,
            "requests_per_second": self.requests_per_second,
            "max_concurrent": self.max_concurrent,
        }
        for field, value in limits.items():
            if value is not None and value < 1:
                raise ConfigurationError(f"RateLimitConfig.{field} must be at least 1")
        if self.max_wait_seconds < 0:
            raise ConfigurationError("RateLimitConfig.max_wait_seconds must be >= 0")
        if self.backoff_base_delay < 0 or self.backoff_max_delay < 0:
            raise ConfigurationError("RateLimitConfig backoff delays must be >= 0")
        if self.backoff_multiplier < 1:
            raise ConfigurationError("RateLimitConfig.backoff_multiplier must be >= 1")

    @property
    def concurrency_limit(self) -> int:
        """Calls in flight at once: `max_concurrent` when set, else `concurrent_requests`."""
        return self.max_concurrent if self.max_concurrent is not None else self.concurrent_requests


class CircuitBreakerConfig(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """When a provider model's circuit breaker opens and how long it stays open.

    This is the NoN docs' `CustomErrorPolicy(failure_threshold, recovery_timeout)`
    as configuration: the actor process keeps one breaker per provider model.
    """

    failure_threshold: int = 5
    """Consecutive retryable provider failures (429, 529, 5xx, timeouts) that open it."""
    recovery_timeout_s: float = 30.0
    """Seconds it stays open before one trial call is let through (half-open)."""
    enabled: bool = True
    """False turns the breakers off."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ConfigurationError("CircuitBreakerConfig.failure_threshold must be at least 1")
        if self.recovery_timeout_s < 0:
            raise ConfigurationError("CircuitBreakerConfig.recovery_timeout_s must be >= 0")


_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
"""What JetStream accepts as a key-value bucket name."""


class CacheConfig(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """How the actors of a network cache node results, by a hash of the call's content.

    With a `CacheConfig` on the network, a node whose `cache` is `None` (auto) is
    served from the cache when its temperature is 0, since only then is a repeated
    answer what the model would say anyway; a node with `cache=True` is cached at
    any temperature, and `cache=False` never. `enabled=False` switches caching off
    for the whole network, node opt-ins included.
    """

    enabled: bool = True
    """False turns caching off for every node of the network."""
    ttl_s: float = 3600.0
    """Seconds a stored result may be served."""
    max_entries: int = 1024
    """Most results the in-process cache keeps (least recently used go first)."""
    backend: Literal["memory", "jetstream"] = "memory"
    """`memory`: one LRU per actor process; `jetstream`: a key-value bucket shared by all."""
    bucket: str = "nons-cache"
    """Name of the JetStream key-value bucket (`jetstream` backend)."""

    def __post_init__(self) -> None:
        if not self.ttl_s > 0:
            raise ConfigurationError("CacheConfig.ttl_s must be positive")
        if self.max_entries < 1:
            raise ConfigurationError("CacheConfig.max_entries must be at least 1")
        if not _BUCKET_NAME.match(self.bucket):
            raise ConfigurationError(
                "CacheConfig.bucket must be letters, digits, '-' or '_' (a JetStream bucket name)"
            )


class TokenUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens a call (or a sum of calls) used; `total_tokens` is derived when zero."""

    prompt_tokens: int = 0
    """Input tokens billed at the normal rate."""
    completion_tokens: int = 0
    """Output tokens."""
    cache_read_tokens: int = 0
    """Input tokens read from the provider's prompt cache."""
    cache_creation_tokens: int = 0
    """Input tokens written to the provider's prompt cache."""
    total_tokens: int = 0
    """All of the above together."""

    def __post_init__(self) -> None:
        if self.total_tokens == 0:
            force_setattr(
                self,
                "total_tokens",
                self.prompt_tokens
                + self.completion_tokens
                + self.cache_read_tokens
                + self.cache_creation_tokens,
            )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class CostInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a call (or a sum of calls) cost in US dollars."""

    input_cost_usd: float = 0.0
    """Input tokens, cache reads and writes included."""
    output_cost_usd: float = 0.0
    """Output tokens."""
    total_cost_usd: float = 0.0
    """Both together."""

    def __post_init__(self) -> None:
        if self.total_cost_usd == 0.0:
            force_setattr(self, "total_cost_usd", self.input_cost_usd + self.output_cost_usd)

    def __add__(self, other: CostInfo) -> CostInfo:
        return CostInfo(
            input_cost_usd=self.input_cost_usd + other.input_cost_usd,
            output_cost_usd=self.output_cost_usd + other.output_cost_usd,
            total_cost_usd=self.total_cost_usd + other.total_cost_usd,
        )
