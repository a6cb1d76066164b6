"""`nons executions [NETWORK]`: running and recent durable executions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `executions` to the parser."""
    parser = commands.add_parser(
        "executions", help="list durable executions (id, status, layer, cost)"
    )
    parser.add_argument("network", nargs="?", metavar="NETWORK", help="only this network's")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._durable import run_executions

    return run_executions(context, args.network, as_json=args.json)
