"""The `nons` command (also `python -m nons`): serve, run and watch networks over NATS.

This package is the edge: it reads the environment once (`NONS_NATS_URL`, the provider
and `OTEL_*` variables) into a `CliContext` and hands that value to the subcommand,
one module each under `nons.cli.commands`, which registers its own arguments and
handler. It may import every other package; nothing but `nons.__main__` imports it.
Exit codes: 0 success (a partial result too, with a warning), 1 a failed execution,
2 bad arguments or configuration, 3 no NATS server, no coordinator or no reply.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from nons import __version__
from nons.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, CliContext, emit
from nons.cli.commands import register_all
from nons.core.errors import ConfigurationError, ExecutionError, NetworkUnavailableError
from nons.runtime.connection import URL_ENV_VAR, NatsUnavailableError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("build_parser", "main")

PROG = "nons"
"""The command's name in help and error messages."""

_LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `nons` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="NoN: compound AI networks run as an actor runtime on NATS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--nats-url",
        metavar="URL",
        help=f"NATS server (default: ${URL_ENV_VAR}; `up` and `run` start an embedded "
        "server when neither is set, other commands use nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--log-level", choices=_LOG_LEVELS, default="warning", help="logging level (stderr)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_all(commands)
    for command in commands.choices.values():
        # Also accepted after the command (`nons exec --nats-url URL ...`), as users type it.
        command.add_argument(
            "--nats-url", metavar="URL", default=argparse.SUPPRESS, help="NATS server"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `nons` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(parser, args)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        context = _context(args.nats_url, os.environ)
        return int(asyncio.run(args.handler(context, args)))
    except (NatsUnavailableError, NetworkUnavailableError) as exc:
        emit(f"{PROG} {args.command}: {exc}", sys.stderr)
        return EXIT_UNAVAILABLE
    except ConfigurationError as exc:
        emit(f"{PROG} {args.command}: error: {exc}", sys.stderr)
        return EXIT_USAGE
    except ExecutionError as exc:
        emit(f"{PROG} {args.command}: {exc.type}: {exc.message}", sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _context(url_argument: str | None, environ: Mapping[str, str]) -> CliContext:
    """Read the configuration once: argument, then environment, then default."""
    from nons.observability.setup import TracingSettings
    from nons.providers.mock import MockBehaviour
    from nons.providers.settings import DEFAULT_PROVIDER_VAR, ProviderSettings
    from nons.resilience.settings import SchedulerSettings
    from nons.runtime.server import binary_from_env

    url = (url_argument or "").strip() or environ.get(URL_ENV_VAR, "").strip() or None
    if url is not None:
        from nons.runtime.connection import ConnectionSettings

        ConnectionSettings(url=url)  # validates the URL (raises ConfigurationError)
    otel = {key: value for key, value in environ.items() if key.startswith("OTEL_")}
    TracingSettings.from_env(otel)  # fail on bad OTEL_* values before anything starts
    return CliContext(
        nats_url=url,
        providers=ProviderSettings.from_env(environ),
        mock=MockBehaviour.from_env(environ),
        scheduler=SchedulerSettings.from_env(environ),
        server_binary=binary_from_env(environ),
        telemetry_environ=otel,
        default_provider_set=bool(environ.get(DEFAULT_PROVIDER_VAR, "").strip()),
    )
