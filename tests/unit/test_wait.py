from __future__ import annotations

import time

import pytest

from tests.support.wait import wait_until, wait_until_sync


async def test_wait_until_returns_once_true() -> None:
    calls: list[int] = []

    def ready() -> bool:
        calls.append(1)
        return len(calls) >= 3

    await wait_until(ready, timeout=5)
    assert len(calls) == 3


async def test_wait_until_accepts_async_predicates() -> None:
    state = {"n": 0}

    async def ready() -> bool:
        state["n"] += 1
        return state["n"] == 2

    await wait_until(ready, timeout=5)
    assert state["n"] == 2


async def test_wait_until_raises_with_message_after_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never ready"):
        await wait_until(lambda: False, timeout=0.1, message=lambda: "never ready")
    assert 0.1 <= time.monotonic() - started < 2


def test_wait_until_sync_raises_after_timeout() -> None:
    with pytest.raises(AssertionError, match="still false"):
        wait_until_sync(lambda: False, timeout=0.05, message="still false")
    seen: list[int] = []

    def second_call() -> bool:
        seen.append(1)
        return len(seen) > 1

    wait_until_sync(second_call, timeout=5)
    assert len(seen) == 2
