"""Wait for a condition with a bound, instead of sleeping and hoping."""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("wait_until", "wait_until_sync")


async def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float,  # noqa: ASYNC109 - a polling bound, not a cancel scope
    interval: float = 0.01,
    message: str | Callable[[], str] = "condition was not met",
) -> None:
    """Poll `predicate` (sync or async) until it returns a truthy value.

    Raises:
        AssertionError: with `message` (and the elapsed bound) when `timeout` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        # The last check runs at the deadline; a slow async check is cut off there.
        with anyio.move_on_after(max(deadline - time.monotonic(), 0.001)):
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await anyio.sleep(min(interval, remaining))
    raise AssertionError(f"{_text(message)} (waited {timeout:g} s)")


def wait_until_sync(
    predicate: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.01,
    message: str | Callable[[], str] = "condition was not met",
) -> None:
    """Blocking twin of `wait_until` for a synchronous predicate.

    Raises:
        AssertionError: with `message` when `timeout` passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    raise AssertionError(f"{_text(message)} (waited {timeout:g} s)")


def _text(message: str | Callable[[], str]) -> str:
    return message if isinstance(message, str) else message()
