"""Operators whose failures tests control (importable, so actor processes can load them)."""

from __future__ import annotations

from nons.core.errors import ProviderUnavailableError
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
