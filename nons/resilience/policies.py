"""Layer error policies as pure decisions: retry or not, how long to wait, how a layer ends.

Kept free of I/O so that each rule is unit-tested on its own and the coordinator only
asks questions of it.
"""

from __future__ import annotations

import random

from nons.core.errors import LayerFailedError
from nons.core.results import ErrorInfo, ExecutionStatus, NodeResult
from nons.core.types import ErrorPolicy, LayerConfig, ModelConfig

__all__ = ("backoff_delay", "layer_outcome", "next_attempt_model", "should_retry")

_MAX_DELAY_S = 30.0
"""Upper bound of one backoff delay."""


def should_retry(config: LayerConfig, error: ErrorInfo, attempt: int, has_fallback: bool) -> bool:
    """Whether a failed node call is tried again under the layer's policy.

    Only retryable errors are retried (timeouts, rate limits, overload, 5xx, a dead
    actor); a schema violation or bad request never is.
    """
    if config.error_policy is ErrorPolicy.FALLBACK_MODEL:
        return attempt == 1 and (has_fallback or error.retryable)
    if config.error_policy is ErrorPolicy.RETRY_WITH_BACKOFF:
        return error.retryable and attempt <= config.max_retries
    return False


def backoff_delay(config: LayerConfig, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter before attempt `attempt + 1`."""
    base = config.retry_delay_seconds * (2 ** (attempt - 1))
    ceiling = min(base, _MAX_DELAY_S)
    return (rng or random).uniform(ceiling / 2, ceiling)


def next_attempt_model(
    config: LayerConfig, model: ModelConfig | None, attempt: int
) -> ModelConfig | None:
    """The model override of the next attempt: the fallback model under `FALLBACK_MODEL`."""
    if config.error_policy is ErrorPolicy.FALLBACK_MODEL and attempt >= 1 and model is not None:
        return model.fallback
    return None


def layer_outcome(
    config: LayerConfig, layer_index: int, results: list[NodeResult]
) -> tuple[ExecutionStatus, ErrorInfo | None]:
    """How a layer ends given its node results, and the error when it fails.

    A failed layer under a strict policy reports its first failed node's own error
    (a schema violation stays `validation_error`); a layer that fails a partial
    policy's threshold reports `layer_failed`.
    """
    failed = [result for result in results if not result.succeeded]
    if not failed:
        return "completed", None
    succeeded = len(results) - len(failed)
    policy = config.error_policy
    if policy is ErrorPolicy.SKIP_AND_CONTINUE and succeeded > 0:
        return "partial", None
    threshold = max(config.min_success_threshold, 1e-9)
    if policy is ErrorPolicy.RETURN_PARTIAL and succeeded / len(results) >= threshold:
        return "partial", None
    first = failed[0]
    cause = first.error or ErrorInfo(type="node_timeout", message="no reply")
    details = {
        **cause.details,
        "layer_index": layer_index,
        "node_id": first.node_id,
        "failed_nodes": [result.node_id for result in failed],
    }
    if policy in (ErrorPolicy.SKIP_AND_CONTINUE, ErrorPolicy.RETURN_PARTIAL):
        message = (
            f"layer {layer_index}: {succeeded} of {len(results)} nodes succeeded; "
            f"first failure {first.node_id!r}: {cause.message}"
        )
        return "failed", ErrorInfo(
            type=LayerFailedError.type, message=message, details={**details, "cause": cause.type}
        )
    message = f"layer {layer_index}, node {first.node_id!r}: {cause.message}"
    return "failed", ErrorInfo(
        type=cause.type, message=message, retryable=cause.retryable, details=details
    )
