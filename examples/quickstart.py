"""The NoN quick start: transform -> [classify, extract] -> generate, run over NATS.

Run it as `python examples/quickstart.py`, or serve it with
`nons up examples.quickstart:network` and send `nats req nons.exec.quickstart "..."`.
Without ANTHROPIC_API_KEY it runs offline on the mock provider (and says so).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import report
from nons import Node, NoN

network = NoN.from_operators(
    [
        Node("transform", transformation_type="summarise the customer message in one paragraph"),
        [
            Node("classify", categories=["bug", "billing", "question", "feature_request"]),
            Node("extract", fields=["product", "urgency", "customer_goal"]),
        ],
        Node("generate", style_guide="friendly, concise, two short paragraphs"),
    ],
    name="quickstart",
)
"""The quick start network: `nons up examples.quickstart:network` serves it."""

SAMPLE = (
    "Hi, since yesterday's update the mobile app logs me out every few minutes and "
    "I lose my draft invoices. I need this fixed before Friday's billing run."
)


async def main(text: str = SAMPLE) -> None:
    result = await network.forward(text)
    report(result)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
