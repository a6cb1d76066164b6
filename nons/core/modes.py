"""How an execution's model calls are made: online (one API call each) or in batches.

`batch` mode submits the model calls of each layer, across every execution of a
`forward_batch`, as Message Batches: half the price, answered within 24 hours (usually
much sooner). An execution in batch mode waits that long: its layers and its default
deadline are `BATCH_WINDOW_S`, and node timeouts do not apply to a call that waits in
a batch. Liveness still finds a dead actor within seconds.
"""

from __future__ import annotations

from typing import Literal

__all__ = ("BATCH_WINDOW_S", "DEFAULT_BATCH_CONCURRENCY", "ExecutionMode")

ExecutionMode = Literal["online", "batch"]
"""`online` (the default) or `batch`."""

BATCH_WINDOW_S = 24 * 3600.0 + 600.0
"""A Message Batch ends within 24 h; a batch-mode layer (and, by default, execution) may
take that long, plus ten minutes for the results to be read."""

DEFAULT_BATCH_CONCURRENCY = 256
"""Executions `forward_batch(mode="batch")` keeps in flight unless told otherwise: their
calls of one layer share a Message Batch. Below one actor's default concurrency plus
backlog for a node (64 + 256), so no call is refused as saturated."""
