"""`nons trace EXECUTION_ID`: an execution's tree of layers and nodes, from recorded events."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from nons.cli._common import connect, emit
from nons.observability.trace_view import render_trace
from nons.runtime.event_store import read_execution_events

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register", "run_trace")


def register(commands: Subparsers) -> None:
    """Add `trace` to the parser."""
    from nons.cli._types import positive_float

    parser = commands.add_parser("trace", help="an execution's tree of layers and nodes")
    parser.add_argument("execution_id", metavar="EXECUTION_ID", help="the execution's id")
    parser.add_argument("--network", metavar="NAME", help="network (faster lookup)")
    parser.add_argument(
        "--timeout", type=positive_float, default=2.0, metavar="S", help="wait for events"
    )
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    return run_trace(context, args.execution_id, network=args.network, timeout_s=args.timeout)


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
