"""Routers in an execution, as pure decisions: each router's branch, resolved before its layer.

A router layer's input is the route decision; its branch receives the routed
content, the input of the decision's layer (`ExecutionState.previous_input`).
Routes are resolved once, before the budget check, so that the budget plan prices
the branch that will actually run instead of the router. Running the branch is
`NodeCaller`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.errors import UnknownRouteError
from nons.core.layer import Layer, LayerMember
from nons.core.results import ErrorInfo
from nons.core.router import RouteChoice, Router

if TYPE_CHECKING:
    from nons.core.types import Content

__all__ = ("Routes", "budget_view", "has_routers", "resolve_routes")

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
