"""A layer: nodes (or sub-networks) that run in parallel under one `LayerConfig`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.errors import ConfigurationError
from nons.core.names import validate_token
from nons.core.node import Node
from nons.core.router import Router
from nons.core.spec import LayerSpec, NodeSpec
from nons.core.types import LayerConfig

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nons.core.network import NoN

__all__ = ("Layer", "NetworkNode")

NETWORK_OPERATOR = "network"
"""The operator name a sub-network node carries in its spec."""


class NetworkNode:
    """A sub-network used as one node of a layer; it runs through `nons.exec.<name>`."""

    def __init__(self, network: NoN, node_id: str | None = None) -> None:
        """Wrap `network`; the node id defaults to the network's name."""
        self.network = network
        self.node_id: str = validate_token(node_id or network.name, "node id")
        self.operator_name = NETWORK_OPERATOR
        self._explicit_id = node_id is not None

    @property
    def has_explicit_id(self) -> bool:
        """Whether the user chose the id."""
        return self._explicit_id

    def _with_id(self, node_id: str, *, explicit: bool) -> NetworkNode:
        copy = NetworkNode(self.network, node_id)
        copy._explicit_id = explicit
        return copy

    def to_spec(self) -> NodeSpec:
        """The serialisable form: the whole sub-network travels inside the parent's spec."""
        return NodeSpec(
            node_id=self.node_id, operator=NETWORK_OPERATOR, network=self.network.to_spec()
        )

    def __repr__(self) -> str:
        return f"NetworkNode({self.network.name!r}, node_id={self.node_id!r})"


LayerMember = Node | NetworkNode | Router
"""What a layer holds."""


class Layer:
    """Nodes that run in parallel; the next layer receives the list of their outputs."""

    def __init__(
        self,
        nodes: Iterable[LayerMember],
        layer_config: LayerConfig | None = None,
        layer_id: str | None = None,
    ) -> None:
        """Create a layer.

        Raises:
            ConfigurationError: for an empty layer or a member that is not a node.
        """
        members = list(nodes)
        if not members:
            raise ConfigurationError("a layer needs at least one node")
        for member in members:
            if not isinstance(member, Node | NetworkNode | Router):
                raise ConfigurationError(f"a layer holds nodes, not {type(member).__name__}")
        self.nodes: list[LayerMember] = members
        self.layer_config: LayerConfig = layer_config or LayerConfig()
        self.layer_id = layer_id

    def __len__(self) -> int:
        return len(self.nodes)

    def to_spec(self) -> LayerSpec:
        """The serialisable form of this layer."""
        return LayerSpec(nodes=[node.to_spec() for node in self.nodes], config=self.layer_config)

    def __repr__(self) -> str:
        return f"Layer({self.nodes!r})"
