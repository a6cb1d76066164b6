"""Operators whose failures tests control (importable, so actor processes can load them)."""

from __future__ import annotations

import asyncio

from nons.core.errors import ProviderUnavailableError, RetryableError
from nons.operators.registry import operator

CALLS: dict[str, int] = {"always_unavailable": 0}
"""How many times each operator ran in this process."""


@operator(
    input_schema={"type": "object", "properties": {"text": {}}, "required": ["text"]},
    description="Fails like a provider that is down (a retryable error), every time.",
)
async def always_unavailable(text: object) -> str:
    CALLS["always_unavailable"] += 1
    raise ProviderUnavailableError("upstream is down", details={"status": 503})


@operator(description="Echoes its text, or fails with a non-retryable error when told to.")
async def fail_if(text: object, fail: bool = False) -> str:
    if fail:
        raise ValueError("told to fail")
    return f"ok:{text}"


@operator(description="Echoes its text after `seconds` (cancellable, bounded by the caller).")
async def slow(text: object, seconds: float = 0.0) -> str:
    await asyncio.sleep(seconds)
    return f"slow:{text}"


@operator(description="Raises the operator's own TimeoutError (an HTTP client's read timeout).")
async def raise_timeout(text: object) -> str:
    raise TimeoutError("upstream read timed out")


TRANSIENT_FAILURES: dict[str, int] = {}
"""Per key, how many more calls of `transient_once` fail before it answers."""


@operator(description="Fails with the named transient exception until its key's count is spent.")
async def transient_once(text: object, key: str = "", kind: str = "timeout") -> str:
    left = TRANSIENT_FAILURES.get(key, 0)
    if left > 0:
        TRANSIENT_FAILURES[key] = left - 1
        if kind == "timeout":
            raise TimeoutError("read timed out")
        if kind == "connection":
            raise ConnectionResetError("connection reset by peer")
        if kind == "retryable":
            raise RetryableError("backend busy")
        raise ValueError("not transient")
    return f"ok:{text}"
