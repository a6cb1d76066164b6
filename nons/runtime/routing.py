"""Routers in an execution: resolve each router's branch before its layer runs, then run it.

A router layer's input is the route decision; its branch receives the routed
content, the input of the decision's layer (`ExecutionState.previous_input`).
Routes are resolved once, before the budget check, so that the budget plan prices
the branch that will actually run instead of the router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from opentelemetry import trace

from nons.core.errors import UnknownRouteError
from nons.core.layer import Layer, LayerMember
from nons.core.results import ErrorInfo, NodeResult
from nons.core.router import ROUTER_OPERATOR, RouteChoice, Router
from nons.observability.events import RouteSelected

if TYPE_CHECKING:
    from nons.core.types import Content
    from nons.runtime._node_calls import LayerContext, NodeCalls

__all__ = ("Routes", "budget_view", "has_routers", "resolve_routes", "run_router")

Routes = dict[str, RouteChoice | ErrorInfo]
"""Each router's choice (or why it has none), by router node id."""


def has_routers(layer: Layer) -> bool:
    """Whether any member of the layer is a router."""
    return any(isinstance(node, Router) for node in layer.nodes)


def resolve_routes(layer: Layer, decision: Content) -> Routes:
    """Every router's branch for `decision`; an unknown route becomes its typed error."""
    routes: Routes = {}
    for node in layer.nodes:
        if not isinstance(node, Router):
            continue
        try:
            routes[node.node_id] = node.choose(decision)
        except UnknownRouteError as exc:
            routes[node.node_id] = ErrorInfo.from_exception(exc)
    return routes


def budget_view(layer: Layer, routes: Routes) -> Layer | None:
    """The layer as the budget sees it: each router replaced by the branch that will run.

    `None` when nothing of the layer will call a model (every router failed to route).
    """
    members: list[LayerMember] = []
    for node in layer.nodes:
        if not isinstance(node, Router):
            members.append(node)
            continue
        choice = routes.get(node.node_id)
        if isinstance(choice, RouteChoice):
            members.append(node.branches[choice.branch])
    return Layer(members, layer.layer_config) if members else None


async def run_router(
    calls: NodeCalls,
    context: LayerContext,
    slot: int,
    router: Router,
    results: list[NodeResult | None],
) -> None:
    """Run the router's chosen branch on the routed content; record it as the router's.

    The branch is called like any node (retries, breakers, budget model, selector)
    under its own id; the router's result carries its output, usage and cost, with
    `branch` naming it. A router that could not route fails like a node.
    """
    choice = calls._routes.get(router.node_id)
    if not isinstance(choice, RouteChoice):
        error = choice or ErrorInfo(type="unknown_route", message="no route resolved")
        failed = NodeResult(
            node_id=router.node_id, operator=ROUTER_OPERATOR, status="failed", error=error
        )
        await calls._fail(context, slot, router, failed, results)
        return
    await calls.events.emit(
        RouteSelected,
        layer_index=context.index,
        node_id=router.node_id,
        branch=choice.branch,
        default_used=choice.default_used,
        requested=choice.requested,
    )
    trace.get_current_span().add_event(
        "route.selected",
        {
            "nons.node_id": router.node_id,
            "nons.branch": choice.branch,
            "nons.default_used": choice.default_used,
        },
    )
    inner: list[NodeResult | None] = [None]
    await calls._call_node(context, 0, router.branches[choice.branch], inner, calls._routed)
    result = inner[0]
    if result is not None:
        results[slot] = msgspec.structs.replace(
            result, node_id=router.node_id, operator=ROUTER_OPERATOR, branch=choice.branch
        )
