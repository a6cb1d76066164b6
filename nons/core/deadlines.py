"""Which limit a node call runs under, decided from the deadlines themselves.

A node call has up to three limits: its own (`node_timeout_seconds`), its layer's
(`timeout_seconds`) and its execution's (the request's `timeout_s`). The coordinator
gives the call the earliest of them, so when time runs out several timers expire at
the same instant; naming the error by whichever timer fired first would tell a user
who set a layer limit that "a node" timed out. Here the name is fixed when the
deadline is computed: the earliest limit names the timeout, and on a tie the outer
limit wins (execution over layer over node), since the outer one is what the caller
set and the inner one was only cut to fit it.

Pure and clock-free (callers pass `now`), so coordinator and actor share one rule and
a unit test drives it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nons.core.errors import (
    ExecutionError,
    ExecutionTimeoutError,
    LayerTimeoutError,
    NodeTimeoutError,
)

__all__ = (
    "TIMEOUT_TYPES",
    "CallDeadline",
    "Limit",
    "call_deadline",
    "layer_limit",
    "timeout_error",
)

Limit = Literal["node", "layer", "execution"]
"""The three limits a node call can run out of, innermost first."""

TIMEOUT_TYPES = frozenset(
    {NodeTimeoutError.type, LayerTimeoutError.type, ExecutionTimeoutError.type}
)
"""Wire types of the three timeouts."""


@dataclass(frozen=True, slots=True)
class CallDeadline:
    """When a node call must end, which limit that is, and how long that limit was."""

    at: float
    """Unix time the call must end by."""
    limit: Limit
    """The limit that ends it."""
    limit_s: float
    """The configured length of that limit, for the error's details."""

    def remaining(self, now: float) -> float:
        """Seconds left at `now` (never negative)."""
        return max(self.at - now, 0.0)


def layer_limit(layer_started: float, layer_timeout_s: float, execution_deadline: float) -> Limit:
    """Whether a layer's deadline is its own or its execution's (a tie goes to the execution)."""
    return "layer" if layer_started + layer_timeout_s < execution_deadline else "execution"


def call_deadline(
    now: float,
    *,
    node_timeout_s: float | None,
    layer_deadline: float,
    layer_deadline_limit: Limit,
    layer_deadline_s: float,
) -> CallDeadline:
    """The deadline of a node call starting at `now` inside a layer ending at `layer_deadline`.

    Args:
        now: unix time the call starts.
        node_timeout_s: the node's own limit, if the layer sets one.
        layer_deadline: unix time the layer stops waiting (already the earlier of the
            layer's own limit and the execution's deadline).
        layer_deadline_limit: which limit `layer_deadline` is (see `layer_limit`).
        layer_deadline_s: the configured length of that limit.
    """
    if node_timeout_s is not None and now + node_timeout_s < layer_deadline:
        return CallDeadline(now + node_timeout_s, "node", node_timeout_s)
    return CallDeadline(layer_deadline, layer_deadline_limit, layer_deadline_s)


def timeout_error(
    limit: Limit, *, node_id: str, layer_index: int, limit_s: float | None
) -> ExecutionError:
    """The typed error for a node call that ran out of `limit`, with that limit's details."""
    details: dict[str, object] = {"node_id": node_id, "layer_index": layer_index}
    if limit_s is not None:
        details["timeout_s"] = round(limit_s, 6)
    within = f" ({limit_s:.2f}s)" if limit_s is not None else ""
    if limit == "execution":
        return ExecutionTimeoutError(
            f"execution ran out of time{within} in layer {layer_index} waiting for "
            f"node {node_id!r}",
            details=details,
        )
    if limit == "layer":
        return LayerTimeoutError(
            f"layer {layer_index} timed out{within} waiting for node {node_id!r}",
            details=details,
        )
    return NodeTimeoutError(
        f"node {node_id!r} gave no result within its node timeout{within}", details=details
    )
