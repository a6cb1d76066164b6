"""One node an actor host serves: its subject, limiter and counters."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from nons.core.names import node_subject

if TYPE_CHECKING:
    from nons.core.network import NoN
    from nons.core.node import Node

__all__ = ("Slot",)


class Slot:
    """One served node: its limiter and counters."""

    def __init__(self, network: NoN, node: Node, concurrency: int) -> None:
        self.network = network
        self.node = node
        self.subject = node_subject(network.name, node.node_id)
        self.spec = node.to_spec()
        self.limiter = asyncio.Semaphore(concurrency)
        self.in_flight = 0
        self.completed = 0
        self.failed = 0
        self.refused = 0
        self.dropped = 0

    def figures(self) -> dict[str, int]:
        """This node's counters, as its endpoint's `data` in `$SRV.STATS`."""
        return {
            "in_flight": self.in_flight,
            "completed": self.completed,
            "failed": self.failed,
            "refused": self.refused,
            "dropped": self.dropped,
        }
