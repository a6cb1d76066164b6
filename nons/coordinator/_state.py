"""The state of one execution: one serialisable Struct, so it can be checkpointed as is.

Its own module so that everything the engine is made of (the layer walk, node
calls, sub-network calls) can depend on it without depending on each other.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from nons.core.modes import BATCH_WINDOW_S
from nons.core.results import LayerResult
from nons.core.types import CostInfo, TokenUsage

__all__ = ("ExecutionState", "execution_deadline")


class ExecutionState(msgspec.Struct, kw_only=True):
    """Everything a coordinator knows about one execution in flight."""

    execution_id: str
    """Id of the execution."""
    network: str
    """Network name."""
    fingerprint: str
    """Spec fingerprint the execution runs under."""
    input: Any
    """The execution's input."""
    started_at: float
    """Unix time of acceptance."""
    deadline: float
    """Unix time after which nothing new is started."""
    depth: int = 0
    """Nesting depth (0 for a top-level execution)."""
    budget_usd: float | None = None
    """Spending limit, if any."""
    metadata: dict[str, str] | None = None
    """Caller's labels."""
    trace_id: str | None = None
    """Trace of the execution."""
    next_layer: int = 0
    """First layer that has not finished."""
    current_input: Any = None
    """Input of `next_layer`."""
    previous_input: Any = None
    """Input of the layer before `next_layer`: what a router hands its chosen branch."""
    layers: list[LayerResult] = msgspec.field(default_factory=list)
    """Finished layers."""
    usage: TokenUsage = TokenUsage()
    """Tokens so far."""
    cost: CostInfo = CostInfo()
    """Cost so far."""
    batch: bool = False
    """Batch mode: model calls wait in Message Batches; layers may take `BATCH_WINDOW_S`."""


def execution_deadline(
    now: float, request_timeout: float | None, network_timeout: float, *, batch: bool = False
) -> float:
    """The unix time an execution must end by (batch mode: `BATCH_WINDOW_S` by default)."""
    if batch:
        network_timeout = max(network_timeout, BATCH_WINDOW_S)
    timeout = request_timeout if request_timeout is not None else network_timeout
    return now + (timeout if math.isfinite(timeout) else network_timeout)
