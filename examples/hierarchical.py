"""Hierarchical networks: a NoN inside another runs through its own `nons.exec.<child>`.

Run it as `python examples/hierarchical.py`. Without ANTHROPIC_API_KEY it runs offline
on the mock provider (and says so).

A `NoN` passed to `NoN.from_operators` is a sub-network node. The parent's coordinator
calls it as any client would, by a request to `nons.exec.summariser`, so the child can
be deployed and scaled on its own (`nons up examples.hierarchical:summariser`) and is
callable directly. What is left of the parent's execution flows down: its remaining
budget, the node's remaining time as the child's timeout, and the trace context, so
the child's execution (id `<parent id>-<node id>`) is part of the parent's trace.
Nesting is bounded by `NetworkConfig.max_depth`, with a `depth_exceeded` error.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `examples` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nons
from examples._report import MOCK_NOTICE
from nons import ExecutionError, NetworkConfig, Node, NoN
from nons.client.local import embedded_server
from nons.observability.trace_view import render_trace
from nons.runtime.connection import URL_ENV_VAR
from nons.runtime.event_store import read_execution_events

summariser = NoN.from_operators(
    [Node("extract", fields=["problem", "impact"]), Node("condense", target_length=40)],
    name="summariser",
)
"""The child: a network of its own, served on `nons.exec.summariser`."""

network = NoN.from_operators(
    [
        Node("transform", transformation_type="rewrite as a plain incident description"),
        summariser,
        Node("generate", style_guide="a two-sentence status update for customers"),
    ],
    name="hierarchical",
)
"""The parent: transform -> summariser (sub-network) -> generate."""

shallow = NoN.from_operators([summariser], NetworkConfig(max_depth=0), name="hierarchical-flat")
"""A network that allows no nesting at all, to show the depth bound."""

SAMPLE = (
    "From 09:10 to 09:40 UTC about a third of checkout requests failed with 502s after a "
    "bad load-balancer config was deployed; it was rolled back at 09:38."
)


async def main(text: str = SAMPLE) -> None:
    result = await network.forward(text)
    print(f"parent {result.execution_id} {result.status}: {result.output!r}\n")
    for layer in result.layer_results:
        for node in layer.nodes:
            print(f"  layer {layer.layer_index}: {node.node_id:<14} operator {node.operator}")
    sub_node = result.layer_results[1].nodes[0]
    child_id = f"{result.execution_id}-{sub_node.node_id}"  # how the child's run is named

    # What `nons trace ID` prints: the recorded events of the parent, then the child's.
    url = os.environ.get(URL_ENV_VAR) or (await asyncio.to_thread(embedded_server)).url
    client = await nons.connect(url)
    try:
        parent_events = await read_execution_events(client.nc, result.execution_id)
        child_events = await read_execution_events(client.nc, child_id, network="summariser")
    finally:
        await client.close()
    print(f"\n{render_trace(parent_events)}\n\n{render_trace(child_events)}")
    same = {event.trace_id for event in child_events} == {result.metadata.trace_id}
    print(f"\nthe child's events belong to the parent's trace: {same}")

    direct = await summariser.forward(text)  # the child is a network like any other
    print(f"\nsummariser called directly: {direct.status}: {direct.output!r}")

    try:
        await shallow.forward(text)
    except ExecutionError as exc:
        print(f"max_depth=0 refuses the sub-network: {exc.type}: {exc}")
    if result.is_mock:
        print(MOCK_NOTICE)


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or SAMPLE))
