"""A layer: nodes (or sub-networks) that run in parallel under one `LayerConfig`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.core.errors import ConfigurationError
from nons.core.node import Node
from nons.core.router import Router
from nons.core.spec import LayerSpec
from nons.core.subnetwork import NETWORK_OPERATOR, NetworkNode
from nons.core.types import LayerConfig

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("NETWORK_OPERATOR", "Layer", "LayerMember", "NetworkNode")

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
