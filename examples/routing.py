"""Conditional routing: a `route` node picks a path, a `Router` runs only that branch.

The NoN docs' example: content is routed to a technical, creative or analytical
handler. The router receives the route decision and hands its chosen branch the
*content that was routed* (the route layer's input). A branch is a node or a whole
sub-network (the analytical one runs through its own `nons.exec.analysis`). The
chosen branch is in the `route.selected` event and in the router's result
(`result.layer_results[1].nodes[0].branch`). On the offline mock the choice is
deterministic but no judgement (a hash of the prompt picks the path): the same
text always takes the same branch, and the samples are worded so that each takes
its natural one.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples._report import report
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.router import Router

PATHS = ["technical", "creative", "analytical"]

analysis = NoN.from_operators(
    [Node("extract", fields=["claims", "figures"]), Node("condense", target_length=80)],
    name="analysis",
)
"""The analytical branch: a sub-network of its own."""

network = NoN.from_operators(
    [
        Node(
            "route",
            available_paths=PATHS,
            routing_logic="technical: how-to and code; creative: stories and slogans; "
            "analytical: data, numbers and comparisons",
        ),
        Router(
            {
                "technical": Node("expand", additional_prompt_context="Answer as an engineer."),
                "creative": Node("generate", additional_prompt_context="Be playful."),
                "analytical": analysis,
            },
            default="technical",
        ),
    ],
    name="routing",
)
"""Route, then run one branch: `nons up examples.routing:network` serves it."""

SAMPLES = [
    "How can I rotate the TLS certificate of a NATS cluster without downtime?",
    "Write a two-line slogan for a bakery that only opens at night.",
    "Sales grew 12% in Q1 and 3% in Q2; costs grew 8% both quarters. Compare margins.",
]


async def main(texts: list[str]) -> None:
    for text in texts:
        result = await network.forward(text)
        router = result.layer_results[1].nodes[0]
        print(f"input: {text}\nbranch: {router.branch}")
        report(result)
        print()


if __name__ == "__main__":
    asyncio.run(main([" ".join(sys.argv[1:])] if sys.argv[1:] else SAMPLES))
