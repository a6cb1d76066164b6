"""`nons events [NETWORK]`: tail execution events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `events` to the parser."""
    from nons.cli._types import positive_float, positive_int

    parser = commands.add_parser("events", help="tail execution events")
    parser.add_argument("network", nargs="?", metavar="NETWORK", help="network (default: all)")
    parser.add_argument("--execution", metavar="ID", help="only this execution")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--count", type=positive_int, metavar="N", help="stop after N events")
    parser.add_argument("--timeout", type=positive_float, metavar="S", help="stop after S seconds")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._client import run_events

    return run_events(
        context,
        args.network,
        args.execution,
        as_json=args.json,
        count=args.count,
        timeout_s=args.timeout,
    )
