"""The error hierarchy: one root, build-time mistakes apart from runtime failures.

`ConfigurationError` is a developer's mistake found while building a network and is
never retried. `ExecutionError` is a failure while running; each subclass carries a
stable wire `type` and a `retryable` flag so that a coordinator in another process
can decide what to do with an error it only knows from its JSON form.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

__all__ = (
    "BatchExpiredError",
    "BatchUnavailableError",
    "BudgetExceededError",
    "CancelledExecutionError",
    "CircuitOpenError",
    "ConfigurationError",
    "CoordinatorLostError",
    "DepthExceededError",
    "DurabilityUnavailableError",
    "ExecutionError",
    "ExecutionTimeoutError",
    "InjectedFailureError",
    "InternalError",
    "InvalidNameError",
    "InvalidRequestError",
    "LayerFailedError",
    "LayerTimeoutError",
    "ModelSelectionError",
    "NetworkUnavailableError",
    "NodeLostError",
    "NodeTimeoutError",
    "NodeUnavailableError",
    "NonsError",
    "NotFoundError",
    "OperatorError",
    "OperatorValidationError",
    "PayloadTooLargeError",
    "ProviderAuthenticationError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderOverloadedError",
    "ProviderRateLimitedError",
    "ProviderUnavailableError",
    "RetryableError",
    "ServerStartError",
    "SpecError",
    "SpecMismatchError",
    "TransientOperatorError",
    "UnknownOperatorError",
    "UnknownRouteError",
    "error_class_for",
    "is_transient",
)


class NonsError(Exception):
    """Root of every error this project raises."""


class ConfigurationError(NonsError):
    """A developer mistake found while building or loading: never retried."""


class UnknownOperatorError(ConfigurationError, KeyError):
    """An operator name that nothing registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown operator"


class InvalidNameError(ConfigurationError, ValueError):
    """A network name or node id that is not a valid NATS subject token."""


class SpecError(ConfigurationError, ValueError):
    """A network spec (file, dict or target) that cannot be turned into a network."""


class ServerStartError(ConfigurationError, RuntimeError):
    """The embedded nats-server could not be found or did not start."""


_WIRE_TYPES: dict[str, type[ExecutionError]] = {}


class ExecutionError(NonsError):
    """A failure while running a network, with a stable wire form.

    Attributes:
        type: stable identifier sent on the wire (`error.type`).
        retryable: whether a retry may succeed.
        details: JSON-safe facts about the failure (node id, layer, field...).
    """

    type: ClassVar[str] = "execution_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            _WIRE_TYPES[cls.type] = cls


_WIRE_TYPES[ExecutionError.type] = ExecutionError


def error_class_for(wire_type: str) -> type[ExecutionError]:
    """The exception class registered for a wire `error.type` (the base when unknown)."""
    return _WIRE_TYPES.get(wire_type, ExecutionError)


class InternalError(ExecutionError):
    """An unexpected exception inside an actor or coordinator (a bug, not bad input)."""

    type = "internal_error"


class InvalidRequestError(ExecutionError, ValueError):
    """A request whose fields are malformed (wrong types, unknown fields, bad encoding)."""

    type = "invalid_request"


class PayloadTooLargeError(ExecutionError, ValueError):
    """A message larger than the server's max payload, headers included."""

    type = "payload_too_large"


class OperatorError(ExecutionError):
    """An operator's own code raised: the message says which node and why.

    `details["exception"]` names the exception class the operator raised. A NoN bug
    is an `internal_error`, never this.
    """

    type = "operator_error"


class TransientOperatorError(OperatorError):
    """An operator's own failure that a retry may fix (a timeout, a dropped connection).

    Same wire type as `OperatorError`, with `retryable` set, so that
    `RETRY_WITH_BACKOFF` and `FALLBACK_MODEL` retry it like a provider's 503.
    """

    retryable = True


class RetryableError(NonsError):
    """Raise this from an operator to say "try me again": the failure is transient.

    Standard transient exceptions (`TimeoutError`, `ConnectionError`, and an HTTP
    client's transport errors) are treated the same way without it.

    Example:
        ```python
        @operator
        async def lookup(query: str) -> str:
            if (response := await fetch(query)).status == 503:
                raise RetryableError("search backend is busy")
            return response.text
        ```
    """


_TRANSIENT = (RetryableError, TimeoutError, ConnectionError)
"""Exceptions of operator code that a retry may fix, whatever library raised them."""


def is_transient(exc: BaseException) -> bool:
    """Whether an operator's exception is worth a retry.

    Besides `_TRANSIENT`, an `httpx` transport error counts (connect/read timeouts,
    dropped connections), checked without importing httpx: an error of it can only
    exist once it has been imported.
    """
    if isinstance(exc, _TRANSIENT):
        return True
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


class OperatorValidationError(ExecutionError, ValueError):
    """Operator input or output that violates its JSON Schema.

    Attributes:
        operator: the operator's registered name.
        direction: `"input"` or `"output"`.
        field: JSON path of the offending value (`$` for the whole value).
        rule: the JSON Schema keyword that failed (`required`, `enum`, `minItems`...).
    """

    type = "validation_error"

    def __init__(
        self, message: str, *, operator: str, direction: str, field: str, rule: str
    ) -> None:
        super().__init__(
            message,
            details={"operator": operator, "direction": direction, "field": field, "rule": rule},
        )
        self.operator = operator
        self.direction = direction
        self.field = field
        self.rule = rule


class SpecMismatchError(ExecutionError):
    """Two processes hold different definitions under one network name."""

    type = "spec_mismatch"


class NodeTimeoutError(ExecutionError, TimeoutError):
    """A node call got no reply before its deadline."""

    type = "node_timeout"
    retryable = True


class LayerTimeoutError(ExecutionError, TimeoutError):
    """A layer did not gather enough replies before its timeout."""

    type = "layer_timeout"


class ExecutionTimeoutError(ExecutionError, TimeoutError):
    """The whole execution ran past its deadline."""

    type = "execution_timeout"


class NodeUnavailableError(ExecutionError):
    """No actor answers a node's subject (NATS "no responders"), or it is saturated."""

    type = "node_unavailable"
    retryable = True


class NodeLostError(NodeUnavailableError):
    """Nobody worked on a node call: its actor went silent (died) or none took it.

    Found by liveness (no progress or reply for the coordinator's window), far sooner
    than the layer timeout; the call produced no result, so it is re-sent.
    """

    type = "node_lost"


class CoordinatorLostError(ExecutionError):
    """The coordinator running an execution went silent (died) before it replied.

    The execution did not finish; what it had done is lost unless it was durable.
    Resubmitting runs it again from the start.
    """

    type = "coordinator_lost"
    retryable = True


class NotFoundError(ExecutionError, LookupError):
    """No durable execution has this id (never one, or past its retention)."""

    type = "not_found"


class CancelledExecutionError(ExecutionError):
    """The execution was cancelled (`nons cancel`, `client.cancel`) before it finished."""

    type = "cancelled"


class DurabilityUnavailableError(ExecutionError):
    """A durable execution was asked for where JetStream cannot record it.

    Never answered by running it without durability: the caller asked for a guarantee.
    """

    type = "durability_unavailable"
    retryable = True


class NetworkUnavailableError(ExecutionError):
    """No coordinator serves the requested network."""

    type = "network_unavailable"


class LayerFailedError(ExecutionError):
    """A layer ended with fewer successful nodes than its policy requires."""

    type = "layer_failed"


class BudgetExceededError(ExecutionError):
    """The execution's spending limit would be passed by the next step."""

    type = "budget_exceeded"


class CircuitOpenError(ExecutionError):
    """A node's circuit breaker is open: calls fail fast until it cools down."""

    type = "circuit_open"
    retryable = True


class UnknownRouteError(ExecutionError):
    """A route decision names no branch of its router, and the router has no default."""

    type = "unknown_route"


class DepthExceededError(ExecutionError):
    """Sub-networks nest deeper than `NetworkConfig.max_depth` (or a caller claims to)."""

    type = "depth_exceeded"


class ModelSelectionError(ExecutionError):
    """A node's `model_selector` could not be imported, raised, or returned a non-model."""

    type = "model_selection_error"


class InjectedFailureError(ExecutionError):
    """A failure the mock provider injected on purpose (tests and benchmarks)."""

    type = "injected_failure"
    retryable = True


class ProviderError(ExecutionError):
    """A model provider refused or failed a call."""

    type = "provider_error"


class ProviderRateLimitedError(ProviderError):
    """The provider answered 429: too many requests or tokens."""

    type = "rate_limited"
    retryable = True


class ProviderOverloadedError(ProviderError):
    """The provider answered 529 (overloaded)."""

    type = "provider_overloaded"
    retryable = True


class ProviderUnavailableError(ProviderError):
    """A 5xx answer, a connection failure or a provider-side timeout."""

    type = "provider_unavailable"
    retryable = True


class ProviderBadRequestError(ProviderError, ValueError):
    """The provider rejected the request itself (400, 404, 413, 422)."""

    type = "provider_bad_request"


class ProviderAuthenticationError(ProviderError):
    """The provider rejected the credentials (401, 403)."""

    type = "provider_authentication"


class BatchUnavailableError(ProviderError):
    """Batch mode was asked of a provider without a batch API (only Anthropic's has one here)."""

    type = "batch_unavailable"


class BatchExpiredError(ProviderError):
    """A request of a Message Batch was not processed before the batch expired (24 h).

    Retryable: the request never ran, so the layer's ErrorPolicy may submit it again.
    """

    type = "batch_expired"
    retryable = True
