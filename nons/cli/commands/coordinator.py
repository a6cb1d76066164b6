"""`nons coordinator TARGET...`: a coordinator process (replicas share a queue group)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `coordinator` to the parser."""
    from nons.cli._types import add_targets, positive_float

    parser = commands.add_parser("coordinator", help="serve nons.exec.<network> subjects")
    add_targets(parser)
    parser.add_argument(
        "--lease",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="lease of durable executions: silent this long, a coordinator's are taken over",
    )
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._serve import run_coordinator

    return run_coordinator(context, args.targets, lease_s=args.lease)
