"""A router: a layer member that runs one of several named branches, chosen by a route decision.

A network branches by putting a decision maker (a `route` node, or any node whose
output names a path) in one layer and a `Router` in the next. The router receives
the decision as its layer input, and hands its chosen branch the content that was
routed: the *input of the decision's layer*, not the decision itself, so a branch
sees the user's text rather than `{"selected_path": ...}`. Branch node ids are
derived from the router's (`<router-id>-<branch>`), because separate processes
must agree on their subjects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from nons.core.errors import ConfigurationError, SpecError, UnknownRouteError
from nons.core.names import validate_token
from nons.core.node import Node
from nons.core.spec import NodeSpec
from nons.core.subnetwork import NetworkNode

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from nons.core.subnetwork import Nestable

__all__ = (
    "DECISION_KEYS",
    "ROUTER_OPERATOR",
    "BranchMember",
    "RouteChoice",
    "Router",
    "decision_path",
)

ROUTER_OPERATOR = "router"
"""The operator name a router carries in its spec and results."""

DECISION_KEYS = ("selected_path", "branch", "choice")
"""Keys of a dict decision naming the path, in order (`route` outputs `selected_path`)."""

BranchMember: TypeAlias = "Node | NetworkNode"
"""What a branch runs: one node, or a sub-network through its own exec subject."""


class RouteChoice(msgspec.Struct, frozen=True, kw_only=True):
    """The branch a decision selected, and whether the router's default stood in."""

    branch: str
    """Name of the branch that runs."""
    requested: str | None = None
    """The path the decision named (`None` when it named none)."""
    default_used: bool = False
    """True when the decision matched no branch and the default branch runs."""


class Router:
    """Runs one of its named branches on the routed content, chosen by the layer input.

    Example:
        >>> net = NoN.from_operators([
        ...     Node("route", available_paths=["technical", "creative"]),
        ...     Router({"technical": Node("expand"), "creative": Node("generate")},
        ...            default="technical"),
        ... ])
    """

    def __init__(
        self,
        branches: Mapping[str, Node | NetworkNode | Nestable],
        default: str | None = None,
        node_id: str | None = None,
    ) -> None:
        """Create a router.

        Args:
            branches: branch name (a subject token) to a `Node`, a `NoN` (run through
                its own `nons.exec.<name>`) or a `NetworkNode`.
            default: branch for a decision that names none of the branches; without
                one such a decision fails the node with `UnknownRouteError`.
            node_id: explicit id; otherwise `router`, prefixed by the layer.

        Raises:
            ConfigurationError: no branches, a bad branch name, a branch that is not a
                node or network (a router inside a router included), or an unknown
                default.
        """
        if not branches:
            raise ConfigurationError("a Router needs at least one branch")
        for name in branches:
            validate_token(name, "branch name")
        if default is not None and default not in branches:
            raise ConfigurationError(
                f"Router default {default!r} is not one of its branches: {', '.join(branches)}"
            )
        self.operator_name = ROUTER_OPERATOR
        self.node_id: str = validate_token(node_id or ROUTER_OPERATOR, "node id")
        self.default = default
        self._explicit_id = node_id is not None
        self.branches: dict[str, BranchMember] = {
            name: _branch_member(self.node_id, name, member) for name, member in branches.items()
        }

    @property
    def has_explicit_id(self) -> bool:
        """Whether the user chose the id."""
        return self._explicit_id

    def _with_id(self, node_id: str, *, explicit: bool) -> Router:
        copy = Router(self.branches, self.default, node_id)
        copy._explicit_id = explicit
        return copy

    def members(self) -> Iterator[BranchMember]:
        """Every branch's node (or sub-network node), in declaration order."""
        yield from self.branches.values()

    def choose(self, decision: Any) -> RouteChoice:
        """The branch a route decision selects.

        A decision is a path name (text), a dict naming it under one of
        `DECISION_KEYS` (the `route` operator's output), or a one-item list of those
        (a one-node layer's output). Names match exactly, else ignoring case and
        surrounding space.

        Raises:
            UnknownRouteError: the decision names no branch and there is no default.
        """
        requested = decision_path(decision)
        if requested is not None:
            branch = _match(requested, self.branches)
            if branch is not None:
                return RouteChoice(branch=branch, requested=requested)
        if self.default is not None:
            return RouteChoice(branch=self.default, requested=requested, default_used=True)
        shown = requested if requested is not None else _preview(decision)
        raise UnknownRouteError(
            f"router {self.node_id!r}: route {shown!r} names none of its branches "
            f"({', '.join(self.branches)}) and it has no default branch",
            details={
                "node_id": self.node_id,
                "route": requested,
                "branches": list(self.branches),
            },
        )

    def to_spec(self) -> NodeSpec:
        """The serialisable form: branches travel inside the router's node spec."""
        return NodeSpec(
            node_id=self.node_id,
            operator=ROUTER_OPERATOR,
            branches={name: member.to_spec() for name, member in self.branches.items()},
            default_branch=self.default,
        )

    @classmethod
    def from_spec(
        cls, spec: NodeSpec, member_from_spec: Callable[[NodeSpec], BranchMember]
    ) -> Router:
        """Rebuild a router from its spec, each branch through `member_from_spec`.

        `NoN.from_spec` passes its own member builder, which knows sub-networks, so
        that this module never imports `NoN`.

        Raises:
            SpecError: a router spec without branches.
        """
        if not spec.branches:
            raise SpecError(f"router {spec.node_id!r} has no branches")
        branches = {name: member_from_spec(branch) for name, branch in spec.branches.items()}
        return cls(branches, spec.default_branch, spec.node_id)

    def __repr__(self) -> str:
        return (
            f"Router({list(self.branches)!r}, default={self.default!r}, node_id={self.node_id!r})"
        )


def decision_path(decision: Any) -> str | None:
    """The path a route decision names, or `None` when it names none."""
    if isinstance(decision, list) and len(decision) == 1:
        decision = decision[0]
    if isinstance(decision, dict):
        decision = next(
            (decision[key] for key in DECISION_KEYS if isinstance(decision.get(key), str)), None
        )
    if isinstance(decision, str) and decision.strip():
        return decision.strip()
    return None


def _match(requested: str, branches: Mapping[str, object]) -> str | None:
    if requested in branches:
        return requested
    folded = requested.casefold()
    return next((name for name in branches if name.casefold() == folded), None)


def _preview(decision: Any) -> str:
    text = repr(decision)
    return text if len(text) <= 80 else text[:77] + "..."


def _branch_member(router_id: str, name: str, member: object) -> BranchMember:
    """The branch's member under its derived id `<router-id>-<name>`."""
    node_id = f"{router_id}-{name}"
    if isinstance(member, Node | NetworkNode):
        return member._with_id(node_id, explicit=True)
    as_member = getattr(member, "__nons_member__", None)
    if callable(as_member):  # a NoN, without importing it
        network_node: NetworkNode = as_member(node_id)
        return network_node
    raise ConfigurationError(
        f"Router branch {name!r} must be a Node or a NoN, not {type(member).__name__}"
    )
