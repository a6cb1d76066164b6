"""The provider registry: defaults, caching, the wrapper hook, and lazy SDK imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nons.core.errors import ConfigurationError, InjectedFailureError
from nons.core.types import ModelConfig, ModelProvider
from nons.providers import registry
from nons.providers.base import Completion, CompletionRequest, ModelClient
from nons.providers.mock import MockBehaviour, MockClient
from nons.providers.settings import ProviderSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
async def fresh_registry() -> AsyncIterator[None]:
    registry.reset_providers()
    yield
    await registry.aclose_clients()
    registry.reset_providers()


class _Recording:
    """A wrapper client that counts calls, as a tracing wrapper would."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def default_model(self) -> str:
        return self.inner.default_model()

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _innermost(client: ModelClient) -> ModelClient:
    """The provider's own client under the registry's rate-limit and breaker wrappers."""
    while isinstance(inner := getattr(client, "inner", None), ModelClient):
        client = inner
    return client


def test_configured_default_and_cache() -> None:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    assert registry.default_provider() is ModelProvider.MOCK
    client = registry.get_model_client()
    assert isinstance(_innermost(client), MockClient)
    assert registry.get_model_client(ModelProvider.MOCK) is client
    assert registry.get_model_client(None) is client


def test_mock_behaviour_reaches_the_client() -> None:
    behaviour = MockBehaviour(latency_s=0.01, failure_rate=0.2)
    registry.configure_providers(ProviderSettings(), mock=behaviour)
    client = _innermost(registry.get_model_client(ModelProvider.MOCK))
    assert isinstance(client, MockClient)
    assert client.behaviour == behaviour


async def test_complete_resolves_the_provider_and_never_falls_back() -> None:
    registry.configure_providers(ProviderSettings(), mock=MockBehaviour(failure_rate=1.0))
    request = CompletionRequest(prompt="hi", config=ModelConfig(provider=ModelProvider.MOCK))
    with pytest.raises(InjectedFailureError):
        await registry.complete(request)


def test_anthropic_without_key_is_an_error_not_a_mock() -> None:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.ANTHROPIC))
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        registry.get_model_client()


async def test_wrapper_wraps_new_clients_and_clears_the_cache() -> None:
    registry.configure_providers(ProviderSettings())
    plain = registry.get_model_client()
    wrappers: list[_Recording] = []

    def wrap(client: ModelClient) -> ModelClient:
        wrapper = _Recording(client)
        wrappers.append(wrapper)
        return wrapper

    registry.set_client_wrapper(wrap)
    wrapped = registry.get_model_client()
    assert wrapped is not plain
    assert isinstance(wrapped, _Recording)
    request = CompletionRequest(prompt="hi", config=ModelConfig())
    completion = await registry.complete(request)
    assert completion.is_mock
    assert wrappers[0].calls == 1

    registry.set_client_wrapper(None)
    assert not isinstance(registry.get_model_client(), _Recording)


def test_unconfigured_settings_come_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NONS_DEFAULT_PROVIDER", "openai")
    monkeypatch.setenv("NONS_MOCK_LATENCY_S", "0.5")
    assert registry.default_provider() is ModelProvider.OPENAI
    assert registry.mock_behaviour().latency_s == 0.5
    monkeypatch.setenv("NONS_DEFAULT_PROVIDER", "mock")
    assert registry.default_provider() is ModelProvider.OPENAI  # read once


def test_importing_providers_does_not_import_the_sdks() -> None:
    code = (
        "import sys, nons.providers, nons.providers.registry;"
        "loaded = [m for m in ('anthropic', 'openai') if m in sys.modules];"
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
