"""Print what an example's execution produced: output, per-layer timing, usage, ids."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nons.core.results import ExecutionResult

__all__ = ("MOCK_NOTICE", "report")

MOCK_NOTICE = (
    "[mock provider: offline output, not a real model answer; set ANTHROPIC_API_KEY "
    "for real answers]"
)


def report(result: ExecutionResult) -> None:
    """Print the result the way the examples show it."""
    output = result.output
    text = output if isinstance(output, str) else json.dumps(output, indent=2)
    print(f"output ({result.status}):\n{text}\n")
    for layer in result.layer_results:
        nodes = ", ".join(node.node_id for node in layer.nodes)
        print(f"layer {layer.layer_index}: {layer.duration_ms:.1f} ms  [{nodes}]")
    meta = result.metadata
    print(f"tokens: {meta.total_tokens}  cost: ${meta.cost_usd:.6f}")
    print(f"execution id: {meta.execution_id}  trace id: {meta.trace_id}")
    if result.is_mock:
        print(MOCK_NOTICE)
