"""Fan-out from the feed to every open page: what changed, coalesced per page.

A page does not need every `node.delta` as its own message: each page keeps a set of
the executions that changed since its last push and wakes up once for many events.
A page that stops reading costs a set of ids, never an unbounded queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ("Hub", "Watcher")


@dataclass(eq=False)
class Watcher:
    """One open page: what changed since it was last told, and a bell."""

    execution_id: str | None = None
    """The execution the page shows, whose full detail it gets on every change."""
    dirty: set[str] = field(default_factory=set)
    networks_changed: bool = False
    status_changed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """The set of open pages; the feed marks changes, each page's stream reads its own."""

    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def add(self, execution_id: str | None) -> Watcher:
        """A new page, watching `execution_id` (or only the lists)."""
        watcher = Watcher(execution_id=execution_id)
        self._watchers.add(watcher)
        return watcher

    def remove(self, watcher: Watcher) -> None:
        """The page went away."""
        self._watchers.discard(watcher)

    def __len__(self) -> int:
        return len(self._watchers)

    def watching(self, execution_id: str) -> bool:
        """Whether an open page shows `execution_id`."""
        return any(watcher.execution_id == execution_id for watcher in self._watchers)

    def execution_changed(self, execution_id: str) -> None:
        """An execution's summary or detail changed."""
        for watcher in self._watchers:
            watcher.dirty.add(execution_id)
            watcher.wake.set()

    def networks_changed(self) -> None:
        """Discovery found other services, nodes or breaker states."""
        for watcher in self._watchers:
            watcher.networks_changed = True
            watcher.wake.set()

    def status_changed(self) -> None:
        """The NATS connection went down or came back."""
        for watcher in self._watchers:
            watcher.status_changed = True
            watcher.wake.set()
