"""The one composition root: how a process that runs networks is wired.

A `nons` command and a library program calling `forward()` must end up wired the
same way: the same model providers, rate limits and breakers, and OpenTelemetry with
GenAI spans on model calls when `OTEL_*` asks for it. Both come here. The CLI passes
what it read once from its environment and replaces whatever was set; the library
reads the same variables once and keeps anything the application configured itself.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from nons.coordinator.budget import PricingDefaults
from nons.observability.autoconfigure import capture_content, ensure_telemetry
from nons.observability.genai import install_genai_tracing
from nons.observability.setup import configure_telemetry
from nons.providers import registry
from nons.providers.mock import MockBehaviour
from nons.providers.settings import ProviderSettings
from nons.resilience import settings as scheduler

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nons.core.types import ModelProvider
    from nons.observability.setup import Telemetry

__all__ = ("pricing_of", "wire_library", "wire_process")


def pricing_of(
    providers: ProviderSettings, *, provider: ModelProvider | None = None
) -> PricingDefaults:
    """Budget pricing for nodes that name no provider, from a process's provider settings.

    `provider` overrides the settings' default provider (a lone coordinator that
    cannot infer its actors' provider from a key it does not hold).
    """
    return PricingDefaults(
        provider=provider or providers.default_provider,
        anthropic_model=providers.default_anthropic_model,
        openai_model=providers.default_openai_model,
    )


_library_lock = threading.Lock()
_library_wired = False


def wire_process(
    *,
    providers: ProviderSettings,
    mock: MockBehaviour,
    limits: scheduler.SchedulerSettings,
    telemetry_environ: Mapping[str, str],
    service_name: str,
    runs_nodes: bool,
) -> Telemetry:
    """Wire a `nons` process from its configuration; the caller shuts the result down.

    `runs_nodes`: the process hosts actors, so its model calls get GenAI spans.
    """
    registry.configure_providers(providers, mock)
    scheduler.set_scheduler(limits)
    installed = configure_telemetry(service_name, telemetry_environ)
    if runs_nodes:
        install_genai_tracing(capture_content=capture_content(telemetry_environ))
    return installed


def wire_library(environ: Mapping[str, str] | None = None) -> None:
    """Wire a library process from the same variables, once, keeping what the app set.

    Providers the application configured (`configure_providers`), limits it set
    (`configure_scheduler`) and OpenTelemetry providers it installed are kept; the
    rest comes from the environment, read here, as a `nons` command reads it.
    """
    global _library_wired
    with _library_lock:
        if _library_wired:
            return
        variables = os.environ if environ is None else environ
        if not registry.providers_configured():
            registry.configure_providers(
                ProviderSettings.from_env(variables), MockBehaviour.from_env(variables)
            )
        if not scheduler.scheduler_configured():
            scheduler.set_scheduler(scheduler.SchedulerSettings.from_env(variables))
        ensure_telemetry(variables)
        _library_wired = True
