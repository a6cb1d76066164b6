"""The networks the benchmarks run, as module attributes that child processes load by name.

Coordinator and actor processes load them as `benchmarks.networks:ATTRIBUTE`, so every
process agrees on node ids and fingerprints. Deadlines are generous (`timeout_seconds`
of minutes) so that a slow, loaded machine measures slowness instead of timeouts; the
operator is the mock-backed `transform`, whose answers stay about 100 bytes whatever
the input, so payloads do not grow layer after layer.
"""

from __future__ import annotations

import msgspec

from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import LayerConfig, NetworkConfig

__all__ = (
    "ALL",
    "DEEP_10",
    "DEEP_10_DURABLE",
    "FANOUT_WIDTHS",
    "GRID_10X100",
    "SINGLE",
    "SINGLE_DURABLE",
    "THREE_LAYER",
    "WIDE",
    "WIDE_10",
    "WIDE_100",
    "WIDE_1000",
    "wide_target",
)

OPERATOR = "transform"
"""An LLM operator: the node runs the real operator code path against the mock provider."""

LAYER = LayerConfig(timeout_seconds=120.0, node_timeout_seconds=120.0)
"""Layer deadlines far beyond any benchmark run."""

NETWORK = NetworkConfig(global_timeout_seconds=600.0)
"""Execution deadline far beyond any benchmark run."""

FANOUT_WIDTHS = (10, 100, 1000)
"""Widths of the one-layer fan-out networks."""


def _network(name: str, layers: list[str | list[Node]], *, durable: bool = False) -> NoN:
    config = msgspec.structs.replace(NETWORK, durable=True) if durable else NETWORK
    return NoN.from_operators(layers, config, name=name, layer_config=LAYER)


SINGLE = _network("bench-single", [OPERATOR])
"""One node: the end-to-end latency network."""

DEEP_10 = _network("bench-deep10", [OPERATOR] * 10)
"""Ten single-node layers in sequence: per-layer cost."""

SINGLE_DURABLE = _network("bench-single-durable", [OPERATOR], durable=True)
"""`SINGLE`, durable: recorded, leased and checkpointed in JetStream."""

DEEP_10_DURABLE = _network("bench-deep10-durable", [OPERATOR] * 10, durable=True)
"""`DEEP_10`, durable: a checkpoint per layer."""

THREE_LAYER = _network("bench-three", [OPERATOR] * 3)
"""Three single-node layers: the throughput network (four round trips per execution)."""

WIDE_10 = _network("bench-wide10", [Node(OPERATOR) * 10])
"""One layer of 10 nodes."""

WIDE_100 = _network("bench-wide100", [Node(OPERATOR) * 100])
"""One layer of 100 nodes."""

WIDE_1000 = _network("bench-wide1000", [Node(OPERATOR) * 1000])
"""One layer of 1000 nodes."""

GRID_10X100 = _network("bench-grid10x100", [Node(OPERATOR) * 100 for _ in range(10)])
"""Ten layers of 100 nodes."""

WIDE = {10: WIDE_10, 100: WIDE_100, 1000: WIDE_1000}
"""The fan-out networks by width."""

ALL = (
    SINGLE,
    DEEP_10,
    SINGLE_DURABLE,
    DEEP_10_DURABLE,
    THREE_LAYER,
    WIDE_10,
    WIDE_100,
    WIDE_1000,
    GRID_10X100,
)
"""Every benchmark network (what the shared coordinator and actors serve)."""


def wide_target(width: int) -> str:
    """The `module:attribute` target of the fan-out network of `width` nodes."""
    return f"benchmarks.networks:WIDE_{width}"
