"""A sub-network as one member of a layer or a router's branch.

Kept apart from `network.py` so that layers and routers can hold sub-networks
without importing `NoN` (which builds layers and routers): a `NoN` turns itself into
a member through its `__nons_member__` hook, and a member knows its network only
through the `SubNetwork` protocol. That keeps `nons.core` free of import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from nons.core.names import validate_token
from nons.core.spec import NodeSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nons.core.spec import NetworkSpec
    from nons.core.types import NetworkConfig

__all__ = ("NETWORK_OPERATOR", "Nestable", "NetworkNode", "SubNetwork")


class SubNetwork(Protocol):
    """What a member needs of the network it wraps (`NoN` is one)."""

    name: str
    network_config: NetworkConfig

    @property
    def fingerprint(self) -> str:
        """Hash of the network's spec."""
        ...

    def to_spec(self) -> NetworkSpec:
        """The network's serialisable form."""
        ...

    def networks(self) -> Iterator[Any]:
        """The network and every sub-network below it."""
        ...


class Nestable(Protocol):
    """A network that can be placed in a layer or a router branch (`NoN` is one)."""

    def __nons_member__(self, node_id: str | None = None) -> NetworkNode:
        """This network as a member under `node_id` (its name when `None`)."""
        ...


NETWORK_OPERATOR = "network"
"""The operator name a sub-network node carries in its spec."""


class NetworkNode:
    """A sub-network used as one node of a layer; it runs through `nons.exec.<name>`."""

    def __init__(self, network: SubNetwork, node_id: str | None = None) -> None:
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
