"""`nons actor TARGET...`: an actor process (replicas share each node's queue group)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `actor` to the parser."""
    from nons.cli._types import add_concurrency, add_targets

    parser = commands.add_parser("actor", help="serve nons.node.<network>.<node> subjects")
    add_targets(parser)
    parser.add_argument(
        "--node",
        dest="nodes",
        action="append",
        default=[],
        metavar="ID",
        help="serve only this node (repeatable; default: every node)",
    )
    add_concurrency(parser)
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._serve import run_actor

    return run_actor(context, args.targets, node_ids=args.nodes, concurrency=args.concurrency)
