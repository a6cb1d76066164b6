"""How the `nons` command shows events and results to a person (one line per event)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import msgspec

from nons.core.events import (
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    LayerCompleted,
    LayerStarted,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from nons.runtime.messages import ExecReply

if TYPE_CHECKING:
    from nons.core.events import Event
    from nons.core.results import ErrorInfo, ExecutionResult

__all__ = ("describe_event", "event_line", "format_output", "reply_json", "summary")


def describe_event(event: Event) -> str:
    """What happened, in words: `layer 0 started (3 nodes)`, `node l1-x completed in 3 ms`."""
    match event:
        case ExecutionStarted():
            return f"execution {event.execution_id} started ({event.layers} layers)"
        case LayerStarted():
            count = len(event.node_ids)
            return f"layer {event.layer_index} started ({count} node{'' if count == 1 else 's'})"
        case NodeStarted():
            again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"  node {event.node_id} started{again}"
        case NodeCompleted():
            extra = f", attempt {event.attempt}" if event.attempt > 1 else ""
            if event.status != "ok":
                extra += f", {event.status}"
            return f"  node {event.node_id} completed in {event.duration_ms:.0f} ms{extra}"
        case NodeRetrying():
            return (
                f"  node {event.node_id} retrying (attempt {event.attempt} in "
                f"{event.delay_s:.2f} s): {_error(event.error)}"
            )
        case NodeFailed():
            return f"  node {event.node_id} failed: {_error(event.error)}"
        case LayerCompleted():
            verb = "completed" if event.status == "completed" else event.status
            failed = f" ({event.failed_nodes} node(s) failed)" if event.failed_nodes else ""
            return f"layer {event.layer_index} {verb} in {event.duration_ms:.0f} ms{failed}"
        case ExecutionCompleted():
            return (
                f"execution {event.status} in {event.duration_ms:.0f} ms "
                f"({event.usage.total_tokens} tokens, ${event.cost_usd:.6f})"
            )
        case ExecutionFailed():
            return f"execution failed in {event.duration_ms:.0f} ms: {_error(event.error)}"
        case _:
            return event.type


def event_line(event: Event) -> str:
    """One line for `nons events`: time, network, execution, type and what happened."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.ts))
    millis = int((event.ts % 1) * 1000)
    return (
        f"{clock}.{millis:03d} {event.network} {event.execution_id[:12]} {event.type:<19} "
        f"{describe_event(event).strip()}"
    )


def format_output(output: Any) -> str:
    """Text as it is, anything else as indented JSON."""
    if isinstance(output, str):
        return output
    return json.dumps(output, indent=2, ensure_ascii=False, default=str)


def summary(result: ExecutionResult) -> str:
    """`completed in 12 ms, 621 tokens, $0.000000, execution ..., trace ...`."""
    meta = result.metadata
    return (
        f"{result.status} in {meta.duration_ms:.0f} ms, {meta.total_tokens} tokens, "
        f"${meta.cost_usd:.6f}, execution {meta.execution_id}, trace {meta.trace_id}"
    )


def reply_json(result: ExecutionResult) -> str:
    """The result as the exec reply document of DESIGN.md section 3, one line."""
    meta = result.metadata
    reply = ExecReply(
        execution_id=meta.execution_id,
        network=meta.network,
        status=result.status,
        output=result.output,
        usage=meta.token_usage,
        cost_usd=meta.cost_usd,
        duration_ms=meta.duration_ms,
        error=result.error,
        trace_id=meta.trace_id,
        is_mock=meta.is_mock,
        layers=result.layer_results,
    )
    return msgspec.json.encode(reply).decode()


def _error(error: ErrorInfo) -> str:
    return f"{error.type}: {error.message}"
