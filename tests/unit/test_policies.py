"""Layer error policies as pure decisions."""

from __future__ import annotations

import random

import pytest

from nons.core.results import ErrorInfo, NodeResult
from nons.core.types import ErrorPolicy, LayerConfig, ModelConfig
from nons.resilience.policies import backoff_delay, layer_outcome, next_attempt_model, should_retry

RETRYABLE = ErrorInfo(type="node_timeout", message="slow", retryable=True)
PERMANENT = ErrorInfo(type="validation_error", message="bad", retryable=False)


def ok(node_id: str) -> NodeResult:
    return NodeResult(node_id=node_id, operator="x", output=node_id)


def failed(node_id: str, error: ErrorInfo = PERMANENT) -> NodeResult:
    return NodeResult(node_id=node_id, operator="x", status="failed", error=error)


def test_retry_only_retryable_errors_within_max_retries() -> None:
    config = LayerConfig(error_policy=ErrorPolicy.RETRY_WITH_BACKOFF, max_retries=2)
    assert should_retry(config, RETRYABLE, 1, False)
    assert should_retry(config, RETRYABLE, 2, False)
    assert not should_retry(config, RETRYABLE, 3, False)
    assert not should_retry(config, PERMANENT, 1, False)
    assert not should_retry(LayerConfig(error_policy=ErrorPolicy.FAIL_FAST), RETRYABLE, 1, False)


def test_fallback_model_gets_one_more_attempt_on_the_fallback() -> None:
    config = LayerConfig(error_policy=ErrorPolicy.FALLBACK_MODEL)
    primary = ModelConfig(model_name="big", fallback=ModelConfig(model_name="small"))
    assert should_retry(config, PERMANENT, 1, True)
    assert not should_retry(config, PERMANENT, 2, True)
    assert next_attempt_model(config, primary, 1) == ModelConfig(model_name="small")
    assert next_attempt_model(LayerConfig(), primary, 1) is None


def test_backoff_grows_exponentially_with_jitter() -> None:
    config = LayerConfig(retry_delay_seconds=0.1)
    rng = random.Random(1)
    delays = [backoff_delay(config, attempt, rng) for attempt in (1, 2, 3)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 0.1 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_strict_policy_reports_the_node_error_with_its_place() -> None:
    status, error = layer_outcome(LayerConfig(), 2, [ok("a"), failed("b")])
    assert status == "failed"
    assert error is not None
    assert error.type == "validation_error"
    assert error.details["node_id"] == "b"
    assert error.details["layer_index"] == 2


@pytest.mark.parametrize(("threshold", "expected"), [(0.5, "partial"), (0.75, "failed")])
def test_return_partial_honours_the_threshold(threshold: float, expected: str) -> None:
    config = LayerConfig(error_policy=ErrorPolicy.RETURN_PARTIAL, min_success_threshold=threshold)
    status, error = layer_outcome(config, 0, [ok("a"), failed("b")])
    assert status == expected
    if expected == "failed":
        assert error is not None
        assert error.type == "layer_failed"


def test_skip_and_continue_needs_one_success() -> None:
    config = LayerConfig(error_policy=ErrorPolicy.SKIP_AND_CONTINUE)
    assert layer_outcome(config, 0, [ok("a"), failed("b")])[0] == "partial"
    assert layer_outcome(config, 0, [failed("a"), failed("b")])[0] == "failed"
    assert layer_outcome(config, 0, [ok("a")]) == ("completed", None)
