"""Renders one execution's events as a terminal tree of layers and nodes.

`nons trace EXECUTION_ID` uses it to show, without Jaeger, where the time, tokens and
money of an execution went.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.events import (
    Event,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("render_trace",)


def render_trace(events: Sequence[Event]) -> str:
    """The indented tree of an execution from its events (in any order)."""
    if not events:
        return "no events recorded for this execution"
    ordered = sorted(events, key=lambda event: event.ts)
    first = ordered[0]
    start = next((e.ts for e in ordered if isinstance(e, ExecutionStarted)), first.ts)
    lines = [f"execution {first.execution_id} of {first.network} (trace {first.trace_id or '-'})"]
    layers: dict[int, list[str]] = {}
    headers: dict[int, str] = {}
    for event in ordered:
        offset = f"+{(event.ts - start) * 1000:8.1f} ms"
        if isinstance(event, LayerStarted):
            headers[event.layer_index] = (
                f"  layer {event.layer_index} ({len(event.node_ids)} nodes) started {offset}"
            )
        elif isinstance(event, LayerCompleted):
            headers[event.layer_index] = (
                f"  layer {event.layer_index} {event.status} in {event.duration_ms:.1f} ms "
                f"({event.successful_nodes} ok, {event.failed_nodes} failed)"
            )
        elif isinstance(event, NodeCompleted):
            mock = " [mock]" if event.is_mock else ""
            layers.setdefault(event.layer_index, []).append(
                f"    {event.node_id:<28} {event.status:<8} {event.duration_ms:8.1f} ms "
                f"{event.usage.total_tokens:6d} tok ${event.cost_usd:.6f} "
                f"attempt {event.attempt}{mock}"
            )
        elif isinstance(event, NodeFailed):
            layers.setdefault(event.layer_index, []).append(
                f"    {event.node_id:<28} failed   {event.error.type}: {event.error.message}"
            )
        elif isinstance(event, NodeRetrying):
            layers.setdefault(event.layer_index, []).append(
                f"    {event.node_id:<28} retrying attempt {event.attempt} in "
                f"{event.delay_s:.2f} s after {event.error.type}"
            )
    for index in sorted(set(headers) | set(layers)):
        lines.append(headers.get(index, f"  layer {index}"))
        lines.extend(layers.get(index, []))
    last = ordered[-1]
    if isinstance(last, ExecutionCompleted):
        lines.append(
            f"  {last.status} in {last.duration_ms:.1f} ms, {last.usage.total_tokens} tokens, "
            f"${last.cost_usd:.6f}" + (" (mock provider output)" if last.is_mock else "")
        )
    elif isinstance(last, ExecutionFailed):
        lines.append(
            f"  failed in {last.duration_ms:.1f} ms: {last.error.type}: {last.error.message}"
        )
    else:
        lines.append("  (still running, or its last events were not recorded)")
    return "\n".join(lines)
