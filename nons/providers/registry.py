"""The process-wide model clients: one per provider, created on first use.

Nodes name a provider (or none, meaning the process default) and get the shared
client, so all nodes of a process share one SDK connection pool per provider. The
SDK modules are imported only when their provider is first asked for, so a process
that runs on the mock never loads `anthropic` or `openai`. A provider that fails is
an error: nothing here falls back to the mock.

Every client is wrapped, innermost first, in:

1. `RateLimitedClient`: the provider's rate limits of `nons.resilience.settings`, shared
   by every node of the process;
2. `BreakerClient`: one circuit breaker per provider model. It sits outside the
   limiter so that an open breaker fails fast without taking rate capacity, and a
   limiter wait that runs out of time (a local error) never counts as a failure;
3. the wrapper of `set_client_wrapper` (the GenAI tracing span), outermost, so the
   span covers the wait for capacity and records a fail-fast `circuit_open` or a
   local `rate_limited` error as the call's outcome.

The scheduler settings are read each time a client is handed out; clients built
under older settings are dropped, so `configure_scheduler` applies at once.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from nons.core.types import ModelProvider
from nons.providers.batches import check_batch_provider
from nons.providers.breaker import BreakerClient, BreakerListener, BreakerState
from nons.providers.limits import RateLimitedClient
from nons.providers.mock import MockBehaviour, MockClient
from nons.providers.settings import ProviderSettings
from nons.providers.streaming import stream_completion
from nons.resilience import settings as scheduler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from nons.providers.base import Completion, CompletionRequest, ModelClient

__all__ = (
    "add_breaker_listener",
    "aclose_clients",
    "complete",
    "configure_providers",
    "default_provider",
    "get_model_client",
    "mock_behaviour",
    "provider_settings",
    "providers_configured",
    "remove_breaker_listener",
    "reset_providers",
    "set_client_wrapper",
    "stream",
)


class _Registry:
    """Mutable state of this module, behind one lock (clients may be asked for from threads)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings: ProviderSettings | None = None
        self.mock: MockBehaviour | None = None
        self.wrapper: Callable[[ModelClient], ModelClient] | None = None
        self.breaker_listeners: list[BreakerListener] = []
        """Every listener added and not removed (one per actor host of this process)."""
        self.scheduler: scheduler.SchedulerSettings | None = None
        """The scheduler settings the cached clients were built with."""
        self.clients: dict[ModelProvider, ModelClient] = {}
        self.retired: list[ModelClient] = []
        """Clients dropped from the cache but not yet closed (closing needs a loop)."""

    def retire_clients(self) -> None:
        self.retired.extend(self.clients.values())
        self.clients.clear()


_registry = _Registry()


def configure_providers(settings: ProviderSettings, mock: MockBehaviour | None = None) -> None:
    """Set the provider settings (and mock behaviour) of this process.

    Clients created under earlier settings are dropped from the cache; they are
    closed by the next `aclose_clients()`.
    """
    with _registry.lock:
        _registry.settings = settings
        _registry.mock = mock or MockBehaviour()
        _registry.retire_clients()


def reset_providers() -> None:
    """Forget settings, wrappers, clients and scheduler settings, as in a fresh process.

    Tests call it between cases.
    """
    with _registry.lock:
        _registry.settings = None
        _registry.mock = None
        _registry.wrapper = None
        _registry.breaker_listeners.clear()
        _registry.retire_clients()
        scheduler.set_scheduler(None)


def providers_configured() -> bool:
    """Whether this process's provider settings are set (configured or read already)."""
    with _registry.lock:
        return _registry.settings is not None


def provider_settings() -> ProviderSettings:
    """The settings of this process: configured, or read from the environment once."""
    with _registry.lock:
        if _registry.settings is None:
            _registry.settings, _registry.mock = _read_process_environment()
        return _registry.settings


def mock_behaviour() -> MockBehaviour:
    """The mock's latency and failure settings of this process."""
    with _registry.lock:
        provider_settings()
        if _registry.mock is None:
            _registry.mock = MockBehaviour()
        return _registry.mock


def default_provider() -> ModelProvider:
    """The provider of nodes whose `ModelConfig.provider` is None."""
    return provider_settings().default_provider


def get_model_client(provider: ModelProvider | None = None) -> ModelClient:
    """The shared client of `provider` (the process default when None).

    Raises:
        ConfigurationError: the provider is not configured (no API key) or its
            optional SDK is not installed.
    """
    with _registry.lock:
        settings = scheduler.get_scheduler()
        if settings is not _registry.scheduler:
            _registry.retire_clients()
            _registry.scheduler = settings
        resolved = provider if provider is not None else default_provider()
        resolved = ModelProvider(resolved)
        client = _registry.clients.get(resolved)
        if client is None:
            client = _with_resilience(_create_client(resolved), resolved, settings)
            if _registry.wrapper is not None:
                client = _registry.wrapper(client)
            _registry.clients[resolved] = client
        return client


def set_client_wrapper(wrapper: Callable[[ModelClient], ModelClient] | None) -> None:
    """Wrap every client created from now on (tracing, metrics); None removes the wrapper.

    The cache is cleared so that no unwrapped client outlives the change.
    """
    with _registry.lock:
        _registry.wrapper = wrapper
        _registry.retire_clients()


def add_breaker_listener(listener: BreakerListener) -> None:
    """Be told of every provider circuit breaker state change of this process.

    Listeners are a list, not one slot: two actor hosts in one process (`nons up`
    with two networks, the embedded runtime) each add theirs, and one host stopping
    removes only its own. A listener runs in the task of the call that changed the
    state (inside its GenAI span), as `listener(provider, model, old_state,
    new_state)`; not at all when the scheduler says `enable_observability=False`.
    """
    with _registry.lock:
        _registry.breaker_listeners.append(listener)


def remove_breaker_listener(listener: BreakerListener) -> None:
    """Stop telling `listener` (a no-op if it was not added)."""
    with _registry.lock:
        if listener in _registry.breaker_listeners:
            _registry.breaker_listeners.remove(listener)


async def aclose_clients() -> None:
    """Close every client this module created and empty the cache."""
    with _registry.lock:
        clients = [*_registry.retired, *_registry.clients.values()]
        _registry.retired.clear()
        _registry.clients.clear()
    for client in clients:
        await client.aclose()


async def complete(request: CompletionRequest) -> Completion:
    """Run `request` on the client of `request.config.provider`.

    Raises:
        ConfigurationError: as `get_model_client`.
        ProviderError: as the client's `complete`; never replaced by a mock answer.
        BatchUnavailableError: in batch mode, a provider without a batch API.
    """
    client = get_model_client(request.config.provider)
    check_batch_provider(client.name)
    return await client.complete(request)


def stream(request: CompletionRequest) -> AsyncIterator[str | Completion]:
    """Stream `request` on the client of `request.config.provider`: deltas, then the answer.

    Every client streams through this: one that cannot yields its whole answer as
    one delta. Read it to the end or close it (`aclose`) in the task that opened it.

    Raises:
        ConfigurationError: as `get_model_client`.
        ProviderError: as the client's `stream`, also in the middle of the stream.
        BatchUnavailableError: in batch mode, a provider without a batch API.
    """
    client = get_model_client(request.config.provider)
    check_batch_provider(client.name)
    return stream_completion(client, request)


def _create_client(provider: ModelProvider) -> ModelClient:
    settings = provider_settings()
    if provider is ModelProvider.MOCK:
        return MockClient(mock_behaviour())
    if provider is ModelProvider.ANTHROPIC:
        from nons.providers.anthropic import AnthropicClient

        return AnthropicClient(settings)
    from nons.providers.openai import OpenAIClient

    return OpenAIClient(settings)


def _with_resilience(
    client: ModelClient, provider: ModelProvider, settings: scheduler.SchedulerSettings
) -> ModelClient:
    limits = settings.rate_limits.get(provider)
    if limits is not None:
        client = RateLimitedClient(client, limits)
    if settings.circuit_breaker.enabled:
        listener = _notify_breaker_listener if settings.enable_observability else None
        client = BreakerClient(client, settings.circuit_breaker, on_change=listener)
    return client


def _notify_breaker_listener(
    provider: str, model: str, old: BreakerState, new: BreakerState
) -> None:
    with _registry.lock:
        listeners = list(_registry.breaker_listeners)
    for listener in listeners:
        listener(provider, model, old, new)


def _read_process_environment() -> tuple[ProviderSettings, MockBehaviour]:
    # The one place below the CLI that reads os.environ: a library user who never
    # calls configure_providers() gets the documented variables, read once.
    environ = dict(os.environ)
    return ProviderSettings.from_env(environ), MockBehaviour.from_env(environ)
