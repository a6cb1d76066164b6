"""Best-of-N: five parallel classifiers vote, `majority` picks the consensus label.

`Node("classify") * 5` gives five copies with distinct, deterministic ids; their
outputs reach the next layer as one list, and `majority` votes on their categories.
With a real model and temperature 1.0 the copies disagree now and then, which is
the point; on the offline mock they agree.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import report
from nons import ModelConfig, Node, NoN

CATEGORIES = ["bug", "billing", "question", "feature_request"]

network = NoN.from_operators(
    [
        Node(
            "classify",
            model_config=ModelConfig(temperature=1.0),
            categories=CATEGORIES,
        )
        * 5,
        Node("majority", min_consensus=0.6),
    ],
    name="ensemble",
)
"""Five voters and a majority vote: `nons up examples.ensemble:network` serves it."""

SAMPLE = "I was charged twice for my subscription this month."


async def main(text: str = SAMPLE) -> None:
    result = await network.forward(text)
    report(result)
    vote = result.output
    print(f"consensus: {vote.get('result')!r} with confidence {vote.get('confidence')}")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
