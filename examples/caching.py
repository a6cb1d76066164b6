"""Caching: a repeated identical run is served from the actors' cache, not the model.

Run it as `python examples/caching.py`. Without ANTHROPIC_API_KEY it runs offline on
the mock provider (and says so); `NONS_MOCK_LATENCY_S=0.5 python examples/caching.py`
makes every mock call slow, so the second run's speed-up shows.

The network enables caching (`NetworkConfig(cache=CacheConfig())`): a node at
temperature 0 is cached automatically, a node with `cache=True` at any temperature,
and any other node never. A cache hit charges nothing and records what the call cost
when it was computed in `saved_cost_usd` (zero on the mock, which is free). With
`CacheConfig(backend="jetstream")` every actor on the same NATS shares the cache.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import MOCK_NOTICE
from nons import ModelConfig, NetworkConfig, Node, NoN
from nons.core.types import CacheConfig

if TYPE_CHECKING:
    from nons.core.results import ExecutionResult

network = NoN.from_operators(
    [
        Node("transform", ModelConfig(temperature=0.0), transformation_type="summarise"),
        Node("generate", ModelConfig(temperature=0.9), cache=True),
        Node("classify", categories=["bug", "billing", "question"]),
    ],
    NetworkConfig(cache=CacheConfig(ttl_s=600, max_entries=256)),
    name="caching",
)
"""summarise (temperature 0: cached) -> reply (opted in: cached) -> classify (never)."""

SAMPLE = "Since the update the app logs me out every few minutes and my drafts are lost."


def show(label: str, result: ExecutionResult, seconds: float) -> None:
    """One line per run, then which node each answer came from."""
    meta = result.metadata
    print(
        f"{label}: {result.status} in {seconds:.2f} s, cost ${meta.cost_usd:.6f}, "
        f"saved ${result.saved_cost_usd:.6f}"
    )
    for layer in result.layer_results:
        for node in layer.nodes:
            source = "cache" if node.cached else "model"
            print(f"  {node.node_id:<14} from the {source}  (saved ${node.saved_cost_usd:.6f})")


async def main(text: str = SAMPLE) -> None:
    for label in ("first run ", "second run"):
        started = time.perf_counter()
        result = await network.forward(text)
        show(label, result, time.perf_counter() - started)
    if result.is_mock:
        print(MOCK_NOTICE)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
