"""Token streaming: print a node's text while the model writes it, from `node.delta` events.

Run it as `python examples/streaming.py`. Without ANTHROPIC_API_KEY it runs offline on
the mock provider (and says so), whose answer streams word by word.

A node with `stream=True` calls the model through the provider's streaming API; its
actor publishes each piece of text as a `node.delta` event on
`nons.events.<network>.<execution_id>.node.delta`, which any NATS client can follow
(`nons events streaming` shows them too). Here the network's own subscription prints
them; the final output is the same text, joined.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import MOCK_NOTICE
from nons import Node, NoN
from nons.observability.events import NodeDelta

if TYPE_CHECKING:
    from nons.observability.events import Event

network = NoN.from_operators(
    [Node("expand", stream=True, node_id="writer")],
    name="streaming",
)
"""One streaming node that expands a short note into a paragraph."""

SAMPLE = "Release notes: faster sync, dark mode, fixed the logout bug on mobile."


def print_delta(event: Event) -> None:
    """Print each piece of text as it arrives, without a newline."""
    if isinstance(event, NodeDelta):
        print(event.text, end="", flush=True)


network.subscribe("node.delta", print_delta)


async def main(text: str = SAMPLE) -> None:
    print("streaming: ", end="", flush=True)
    result = await network.forward(text)
    print(f"\n\nfinal output ({result.status}, {result.metadata.total_tokens} tokens):")
    print(result.output)
    if result.is_mock:
        print(MOCK_NOTICE)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
