"""`nons trace EXECUTION_ID`: an execution's tree of layers and nodes, from recorded events."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from nons._cli_common import connect, emit
from nons.observability.trace_view import render_trace
from nons.runtime.event_store import read_execution_events

if TYPE_CHECKING:
    from nons._cli_common import CliContext

__all__ = ("run_trace",)


async def run_trace(
    context: CliContext, execution_id: str, *, network: str | None, timeout_s: float
) -> int:
    """Print the tree; exit 1 when nothing was recorded for that execution."""
    nc = await connect(context, "nons-trace")
    try:
        try:
            events = await read_execution_events(
                nc, execution_id, network=network, timeout_s=timeout_s
            )
        except LookupError as exc:
            emit(f"nons trace: {exc}", sys.stderr)
            return 1
    finally:
        await nc.close()
    emit(render_trace(events))
    return 0 if events else 1
