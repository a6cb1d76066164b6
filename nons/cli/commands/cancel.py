"""`nons cancel EXECUTION_ID`: stop a durable execution (it ends `failed`, `cancelled`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `cancel` to the parser."""
    parser = commands.add_parser("cancel", help="cancel a durable execution")
    parser.add_argument("execution_id", metavar="EXECUTION_ID")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._durable import run_cancel

    return run_cancel(context, args.execution_id, as_json=args.json)
