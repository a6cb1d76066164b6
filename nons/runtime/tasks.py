"""The tasks a service spawns per message, owned in one place and drained on shutdown.

A subscription callback must hand each message to a task (callbacks run one at a
time), and a task group cannot take work from a callback that lives outside it
without costing about three times an asyncio task on the hottest path. This set
owns those tasks instead: it keeps them alive, counts them, and on shutdown lets
them finish within a bound and cancels the rest, so none outlives its service.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ("TaskSet",)


class TaskSet:
    """Tasks started for messages, drained (bounded) and then cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run `coroutine` in a task owned by this set."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the tasks to finish, then cancel and await the rest."""
        if not self._tasks:
            return
        with anyio.move_on_after(timeout_s):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
