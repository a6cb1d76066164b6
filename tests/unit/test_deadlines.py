"""The limit a node call runs under is decided from the deadlines, ties to the outer one."""

from __future__ import annotations

import pytest

from nons.core.deadlines import call_deadline, layer_limit, timeout_error
from nons.core.errors import ExecutionTimeoutError, LayerTimeoutError, NodeTimeoutError


def test_the_node_limit_names_the_call_only_when_strictly_earliest() -> None:
    own = call_deadline(
        100.0,
        node_timeout_s=1.0,
        layer_deadline=102.0,
        layer_deadline_limit="layer",
        layer_deadline_s=2.0,
    )
    assert (own.at, own.limit, own.limit_s) == (101.0, "node", 1.0)
    tie = call_deadline(
        100.0,
        node_timeout_s=2.0,
        layer_deadline=102.0,
        layer_deadline_limit="layer",
        layer_deadline_s=2.0,
    )
    assert (tie.at, tie.limit) == (102.0, "layer")


def test_without_a_node_limit_the_layers_deadline_and_name_are_the_calls() -> None:
    deadline = call_deadline(
        100.0,
        node_timeout_s=None,
        layer_deadline=100.5,
        layer_deadline_limit="execution",
        layer_deadline_s=0.8,
    )
    assert (deadline.limit, deadline.limit_s) == ("execution", 0.8)
    assert deadline.remaining(100.25) == pytest.approx(0.25)
    assert deadline.remaining(101.0) == 0.0


def test_a_layer_deadline_is_the_executions_when_that_is_not_later() -> None:
    assert layer_limit(100.0, 1.0, 102.0) == "layer"
    assert layer_limit(100.0, 2.0, 102.0) == "execution"
    assert layer_limit(100.0, 60.0, 100.8) == "execution"


@pytest.mark.parametrize(
    ("limit", "error_class", "retryable"),
    [
        ("node", NodeTimeoutError, True),
        ("layer", LayerTimeoutError, False),
        ("execution", ExecutionTimeoutError, False),
    ],
)
def test_each_limit_has_its_own_typed_error_and_details(
    limit: str, error_class: type, retryable: bool
) -> None:
    error = timeout_error(limit, node_id="n", layer_index=2, limit_s=0.3)  # type: ignore[arg-type]
    assert type(error) is error_class
    assert error.retryable is retryable
    assert error.details == {"node_id": "n", "layer_index": 2, "timeout_s": 0.3}
    assert "0.30s" in error.message
    assert "'n'" in error.message
