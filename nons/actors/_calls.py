"""Node-call checks and failure replies of the actor host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.errors import InvalidRequestError, SpecMismatchError
from nons.core.results import NodeResult
from nons.runtime.failures import error_info
from nons.runtime.messages import EXECUTION_ID_HEADER

if TYPE_CHECKING:
    from nons.core.network import NoN
    from nons.core.node import Node
    from nons.runtime.messages import NodeCall

__all__ = ("check_call", "failure_for", "reply_headers")

_CONTEXT_HEADERS = frozenset({"traceparent", "tracestate", EXECUTION_ID_HEADER.lower()})


def reply_headers(request_headers: dict[str, str]) -> dict[str, str]:
    """The caller's trace context and execution id, echoed on a reply made without a span."""
    return {
        name: value for name, value in request_headers.items() if name.lower() in _CONTEXT_HEADERS
    }


def check_call(network: NoN, node: Node, subject: str, call: NodeCall) -> None:
    """Refuse a call made under another definition of the network, or for another node.

    Raises:
        SpecMismatchError: the coordinator's spec fingerprint differs from ours.
        InvalidRequestError: the call names another network or node than `subject`'s.
    """
    if call.fingerprint != network.fingerprint:
        raise SpecMismatchError(
            f"network {network.name!r}: the coordinator holds definition "
            f"{call.fingerprint}, this actor holds {network.fingerprint}; deploy one "
            "definition under one name",
            details={
                "network": network.name,
                "node_id": node.node_id,
                "coordinator": call.fingerprint,
                "actor": network.fingerprint,
            },
        )
    if call.node_id != node.node_id or call.network != network.name:
        raise InvalidRequestError(
            f"node call for {call.network}.{call.node_id} arrived on {subject}"
        )


def failure_for(result: NodeResult, exc: BaseException) -> NodeResult:
    """`result` turned into a failure (e.g. too large to reply), keeping what it spent."""
    return NodeResult(
        node_id=result.node_id,
        operator=result.operator,
        status="failed",
        usage=result.usage,
        cost=result.cost,
        error=error_info(exc),
    )
