"""Batching and streaming: many inputs through the quick start network, five at a time.

Run it as `python examples/batch.py`. Without ANTHROPIC_API_KEY it runs offline on the
mock provider (and says so); `NONS_MOCK_LATENCY_S=0.2 python examples/batch.py` makes
every mock call slow, which shows the bounded concurrency at work.

`forward_batch` returns results in input order and never raises for one failed item;
`stream` yields results as they complete, each with the `index` of its input.
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
from examples.quickstart import network

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

TICKETS = [
    "The mobile app logs me out every few minutes.",
    "I was charged twice for the March invoice.",
    "Can I export my reports to CSV?",
    "Please add a dark mode to the dashboard.",
    "Uploading a PDF larger than 10 MB fails silently.",
]
INPUTS = [f"Ticket {number}: {TICKETS[number % len(TICKETS)]}" for number in range(20)]
"""Twenty customer messages (five kinds, repeated)."""


async def batch(concurrency: int = 5) -> None:
    """All inputs, `concurrency` in flight; print each item's status in input order."""
    started = time.perf_counter()
    results = await network.forward_batch(INPUTS, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    for result in results:
        detail = result.error.type if result.error else f"{result.metadata.total_tokens} tokens"
        print(f"#{result.index:>2} {result.status:<9} {detail:<12} {INPUTS[result.index]}")
    failed = sum(result.status == "failed" for result in results)
    print(f"batch: {len(results)} inputs, {failed} failed, {elapsed:.2f} s total\n")
    if any(result.is_mock for result in results):
        print(MOCK_NOTICE)


async def arriving(count: int) -> AsyncIterator[str]:
    """Inputs that trickle in, as from a queue: read only as fast as results go out."""
    for text in INPUTS[:count]:
        await asyncio.sleep(0.01)
        yield text


async def stream(concurrency: int = 5) -> None:
    """Results as they complete, from an async source of inputs."""
    started = time.perf_counter()
    async for result in network.stream(arriving(10), concurrency=concurrency):
        at = time.perf_counter() - started
        print(f"{at:6.3f} s  input #{result.index:>2} {result.status}")


async def main() -> None:
    await batch()
    await stream()


if __name__ == "__main__":
    asyncio.run(main())
