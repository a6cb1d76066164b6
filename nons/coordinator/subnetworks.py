"""Sub-network calls: a `NoN` inside another runs through its own `nons.exec.<name>`.

The parent's coordinator calls the child as any client would, so the child can be
deployed, scaled and traced on its own. What is left of the parent's execution
flows down: its budget minus what was spent, the calling node's remaining time as
the child's timeout, the trace context (the child's spans nest under the parent's
`send` span) and the nesting depth in `Nons-Depth`, which both sides bound by
`NetworkConfig.max_depth`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.errors import DepthExceededError
from nons.core.names import exec_subject
from nons.core.results import NodeResult
from nons.core.types import CostInfo
from nons.observability.propagation import inject_headers
from nons.runtime.failures import error_info
from nons.runtime.liveness import LIVENESS_HEADER
from nons.runtime.messages import (
    DEPTH_HEADER,
    EXECUTION_ID_HEADER,
    ExecRequest,
    decode_exec_reply,
    encode,
)

if TYPE_CHECKING:
    from nons.coordinator._state import ExecutionState
    from nons.core.layer import NetworkNode
    from nons.core.types import Content
    from nons.runtime.bus import Bus
    from nons.runtime.liveness import Liveness

__all__ = ("call_subnetwork", "child_request")


def child_request(
    state: ExecutionState, node: NetworkNode, input: Content, timeout_s: float
) -> ExecRequest:
    """The exec request a parent sends its sub-network: the remaining budget and time."""
    return ExecRequest(
        input=input,
        execution_id=f"{state.execution_id}-{node.node_id}"[-128:],
        timeout_s=max(timeout_s, 1e-3),
        budget_usd=None
        if state.budget_usd is None
        else max(state.budget_usd - state.cost.total_cost_usd, 0.0),
        metadata=state.metadata,
        mode="batch" if state.batch else None,
    )


async def call_subnetwork(
    bus: Bus,
    state: ExecutionState,
    max_depth: int,
    node: NetworkNode,
    input: Content,
    timeout_s: float,
    liveness: Liveness | None = None,
) -> NodeResult:
    """Run a sub-network once and turn its reply into the calling node's result.

    A child that would nest past `max_depth` (the parent network's) is not called:
    the node fails with `DepthExceededError`.

    Raises:
        ReplyTimeout: no reply within `timeout_s`.
        ReplyLost: with `liveness`, the child's coordinator went silent (died).
        NoResponders: no coordinator serves the child.
        InvalidRequestError: the reply is not an exec reply.
    """
    child = node.network
    if state.depth + 1 > max_depth:
        return NodeResult(
            node_id=node.node_id,
            operator=node.operator_name,
            status="failed",
            error=error_info(
                DepthExceededError(
                    f"sub-network {child.name!r} would nest deeper than max_depth={max_depth} "
                    f"(network {state.network!r} runs at depth {state.depth})",
                    details={
                        "node_id": node.node_id,
                        "max_depth": max_depth,
                        "depth": state.depth + 1,
                    },
                )
            ),
        )
    headers = {EXECUTION_ID_HEADER: state.execution_id, DEPTH_HEADER: str(state.depth + 1)}
    if liveness is not None:
        headers[LIVENESS_HEADER] = liveness.header
    request = child_request(state, node, input, timeout_s)
    msg = await bus.request(
        exec_subject(child.name),
        encode(request),
        inject_headers(headers),
        timeout_s,
        liveness=liveness,
    )
    reply = decode_exec_reply(msg.data)
    return NodeResult(
        node_id=node.node_id,
        operator=node.operator_name,
        status="failed" if reply.status == "failed" else "ok",
        output=reply.output,
        usage=reply.usage,
        cost=CostInfo(total_cost_usd=reply.cost_usd),
        is_mock=reply.is_mock,
        duration_ms=reply.duration_ms,
        error=reply.error,
    )
