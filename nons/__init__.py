"""NoN (Network of Networks): compound AI systems as an event-driven actor runtime on NATS.

The everyday names live here; `nons.core` describes networks without any I/O, and the
runtime (NATS, OpenTelemetry) is imported only when a network runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.layer import Layer
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.results import ExecutionResult, LayerResult, NodeResult
from nons.core.router import Router
from nons.core.types import (
    ConfigurationError,
    ErrorPolicy,
    ExecutionError,
    LayerConfig,
    ModelConfig,
    ModelProvider,
    NetworkConfig,
    NonsError,
    RetryableError,
)
from nons.operators.registry import get_operator, list_operators, operator

if TYPE_CHECKING:
    from nons.client import Client

__all__ = (
    "ConfigurationError",
    "ErrorPolicy",
    "ExecutionError",
    "ExecutionResult",
    "Layer",
    "LayerConfig",
    "LayerResult",
    "ModelConfig",
    "ModelProvider",
    "NetworkConfig",
    "NoN",
    "Node",
    "NodeResult",
    "NonsError",
    "RetryableError",
    "Router",
    "__version__",
    "connect",
    "get_operator",
    "list_operators",
    "operator",
)

__version__ = "0.1.0"


async def connect(url: str, *, name: str = "nons-client", liveness_s: float | None = 3.0) -> Client:
    """Connect to the NATS server at `url` and return a `Client`.

    `liveness_s`: silence after which an execution's coordinator is taken for dead
    (`execute()` raises `CoordinatorLostError`); None waits for the reply or timeout.

    Raises:
        NatsUnavailableError: no server answers at `url`.
    """
    from nons.client import connect as _connect

    return await _connect(url, name=name, liveness_s=liveness_s)
