"""The NoN docs' scheduler API: settings stored here, applied by the provider registry."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nons.core.errors import ConfigurationError
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.breaker import BreakerClient
from nons.providers.limits import RateLimitedClient
from nons.providers.settings import ProviderSettings
from nons.resilience import settings as scheduler
from nons.resilience.settings import (
    BackoffStrategy,
    CircuitBreakerConfig,
    QueueStrategy,
    RateLimitConfig,
    SchedulerSettings,
    configure_scheduler,
    get_scheduler,
    start_scheduler,
    stop_scheduler,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    registry.reset_providers()
    yield
    registry.reset_providers()


def test_defaults_follow_the_docs() -> None:
    settings = get_scheduler()
    assert get_scheduler() is settings
    anthropic = settings.rate_limits[ModelProvider.ANTHROPIC]
    assert (anthropic.requests_per_minute, anthropic.tokens_per_minute) == (1000, 400_000)
    assert anthropic.concurrency_limit == 25
    openai = settings.rate_limits[ModelProvider.OPENAI]
    assert (openai.requests_per_minute, openai.tokens_per_minute) == (500, 200_000)
    assert openai.concurrency_limit == 20
    assert settings.rate_limits[ModelProvider.MOCK].requests_per_minute >= 10_000
    assert settings.circuit_breaker == CircuitBreakerConfig(
        failure_threshold=5, recovery_timeout_s=30.0
    )


async def test_docs_example_runs_and_keeps_other_providers() -> None:
    settings = configure_scheduler(
        rate_limits={
            ModelProvider.ANTHROPIC: RateLimitConfig(
                requests_per_minute=100,
                requests_per_second=2,
                tokens_per_minute=50_000,
                max_concurrent=5,
                backoff_strategy=BackoffStrategy.EXPONENTIAL,
                backoff_base_delay=1.0,
                backoff_max_delay=60.0,
                backoff_multiplier=2.0,
            )
        },
        queue_strategy=QueueStrategy.FIFO,
        enable_observability=True,
    )
    await start_scheduler()
    await stop_scheduler()
    assert get_scheduler() is settings
    assert settings.queue_strategy is QueueStrategy.FIFO
    assert settings.rate_limits[ModelProvider.ANTHROPIC].concurrency_limit == 5
    assert settings.rate_limits[ModelProvider.OPENAI].requests_per_minute == 500


def test_string_keys_and_unknown_providers() -> None:
    settings = configure_scheduler(rate_limits={"mock": RateLimitConfig(requests_per_minute=7)})  # type: ignore[dict-item]
    assert settings.rate_limits[ModelProvider.MOCK].requests_per_minute == 7
    with pytest.raises(ConfigurationError, match="rate_limits key 'gemini'"):
        configure_scheduler(rate_limits={"gemini": RateLimitConfig()})  # type: ignore[dict-item]


def test_registry_applies_new_settings_to_new_clients() -> None:
    registry.configure_providers(ProviderSettings())
    first = registry.get_model_client(ModelProvider.MOCK)
    assert isinstance(first, BreakerClient)
    assert isinstance(first.inner, RateLimitedClient)
    assert registry.get_model_client(ModelProvider.MOCK) is first

    configure_scheduler(
        rate_limits={ModelProvider.MOCK: RateLimitConfig(requests_per_minute=3)},
        circuit_breaker=CircuitBreakerConfig(failure_threshold=9, recovery_timeout_s=1),
    )
    second = registry.get_model_client(ModelProvider.MOCK)
    assert second is not first
    assert isinstance(second, BreakerClient)
    assert second.config.failure_threshold == 9
    assert isinstance(second.inner, RateLimitedClient)
    assert second.inner.limiter.config.requests_per_minute == 3

    configure_scheduler(circuit_breaker=CircuitBreakerConfig(enabled=False))
    assert isinstance(registry.get_model_client(ModelProvider.MOCK), RateLimitedClient)


def test_reset_providers_restores_the_default_settings() -> None:
    configured = configure_scheduler(queue_strategy=QueueStrategy.ROUND_ROBIN)
    registry.reset_providers()
    assert get_scheduler() is not configured
    assert get_scheduler().queue_strategy is QueueStrategy.PRIORITY


def test_from_env_overrides_every_provider() -> None:
    settings = SchedulerSettings.from_env(
        {
            scheduler.RATE_LIMIT_RPM_VAR: "120",
            scheduler.RATE_LIMIT_TPM_VAR: "9000",
            scheduler.RATE_LIMIT_CONCURRENCY_VAR: "4",
            scheduler.BREAKER_FAILURES_VAR: "3",
            scheduler.BREAKER_RECOVERY_VAR: "2.5",
        }
    )
    for config in settings.rate_limits.values():
        assert (config.requests_per_minute, config.tokens_per_minute) == (120, 9000)
        assert config.concurrency_limit == 4
    assert settings.circuit_breaker == CircuitBreakerConfig(
        failure_threshold=3, recovery_timeout_s=2.5
    )
    assert SchedulerSettings.from_env({}) == SchedulerSettings()


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "nan"])
def test_from_env_rejects_bad_values_naming_only_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SchedulerSettings.from_env({scheduler.RATE_LIMIT_RPM_VAR: value})
    assert scheduler.RATE_LIMIT_RPM_VAR in str(caught.value)
    assert value not in str(caught.value).replace(scheduler.RATE_LIMIT_RPM_VAR, "")


def test_scheduler_module_is_pure() -> None:
    tree = ast.parse(Path(scheduler.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    outside = {
        name
        for name in imported
        if name
        and not name.startswith("nons.core")
        and name.split(".")[0]
        not in {"__future__", "collections", "enum", "msgspec", "threading", "typing"}
    }
    assert outside == set()
