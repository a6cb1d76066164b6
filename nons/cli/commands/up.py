"""`nons up TARGET...`: coordinator and actors in one process, on an embedded server if needed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `up` to the parser."""
    from nons.cli._types import add_concurrency, add_targets

    parser = commands.add_parser("up", help="coordinator and actors for TARGETs in one process")
    add_targets(parser)
    add_concurrency(parser)
    parser.add_argument("--no-events", action="store_true", help="do not publish execution events")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._serve import run_up

    return run_up(context, args.targets, concurrency=args.concurrency, events=not args.no_events)
