"""`nons result EXECUTION_ID`: the reply of a durable execution, also after its caller left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Coroutine

    from nons.cli._common import CliContext
    from nons.cli._types import Subparsers

__all__ = ("register",)


def register(commands: Subparsers) -> None:
    """Add `result` to the parser."""
    from nons.cli._types import non_negative_float

    parser = commands.add_parser("result", help="the reply of a durable execution, by id")
    parser.add_argument("execution_id", metavar="EXECUTION_ID")
    parser.add_argument("--json", action="store_true", help="print the reply as one JSON document")
    parser.add_argument(
        "--wait",
        type=non_negative_float,
        default=0.0,
        metavar="S",
        help="wait this long for one still running (exit code 4 if it still is)",
    )
    parser.set_defaults(handler=_run)


def _run(context: CliContext, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from nons.cli._durable import run_result

    return run_result(context, args.execution_id, as_json=args.json, wait_s=args.wait)
