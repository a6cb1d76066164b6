"""A library process is wired from the same variables as a `nons` command, keeping the app's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from nons.client import wiring
from nons.core.types import ModelProvider
from nons.observability import autoconfigure
from nons.providers import registry
from nons.resilience import settings as scheduler

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def unwired(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(wiring, "_library_wired", False)
    monkeypatch.setattr(autoconfigure, "_done", True)  # telemetry is not under test here
    registry.reset_providers()
    scheduler.set_scheduler(None)
    yield
    registry.reset_providers()
    scheduler.set_scheduler(None)


ENV = {scheduler.RATE_LIMIT_RPM_VAR: "7", "NONS_DEFAULT_PROVIDER": "mock"}


def test_the_library_reads_limits_and_providers_from_the_environment() -> None:
    wiring.wire_library(ENV)
    limits = scheduler.get_scheduler().rate_limits
    assert {config.requests_per_minute for config in limits.values()} == {7}
    assert registry.provider_settings().default_provider is ModelProvider.MOCK


def test_what_the_application_configured_is_kept() -> None:
    scheduler.configure_scheduler(
        rate_limits={ModelProvider.MOCK: scheduler.RateLimitConfig(requests_per_minute=3)}
    )
    wiring.wire_library(ENV)
    assert scheduler.get_scheduler().rate_limits[ModelProvider.MOCK].requests_per_minute == 3


def test_it_wires_once() -> None:
    wiring.wire_library(ENV)
    scheduler.set_scheduler(None)
    wiring.wire_library(ENV)
    assert not scheduler.scheduler_configured()
