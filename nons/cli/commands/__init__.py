"""The subcommands of `nons`, one module each; each adds itself with `register`.

A command module defines its arguments and sets `handler` (a function of the
`CliContext` and the parsed arguments that returns the coroutine to run) and, when
its arguments need a check argparse cannot express, `check`. Adding a command is
adding a module here and its name to `COMMANDS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nons.cli.commands import (
    actor,
    cancel,
    coordinator,
    events,
    exec,
    executions,
    ls,
    result,
    run,
    server,
    sink,
    trace,
    ui,
    up,
)

if TYPE_CHECKING:
    from nons.cli._types import Subparsers

__all__ = ("COMMANDS", "register_all")

COMMANDS = (
    up,
    coordinator,
    actor,
    exec,
    result,
    executions,
    cancel,
    events,
    trace,
    ls,
    server,
    run,
    sink,
    ui,
)
"""Every command module, in the order `nons --help` lists them."""


def register_all(commands: Subparsers) -> None:
    """Add every command to the parser's subcommands."""
    for module in COMMANDS:
        module.register(commands)
