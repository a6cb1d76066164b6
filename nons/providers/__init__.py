"""Model providers: the `ModelClient` protocol, the offline mock, pricing and the registry.

Import-light on purpose: the `anthropic` and `openai` SDKs are imported only when a
client of that provider is first created (`nons.providers.registry`), or when
`nons.providers.anthropic` / `nons.providers.openai` are imported explicitly.
"""

from __future__ import annotations

from nons.providers.base import Completion, CompletionRequest, ModelClient, OutputSchema
from nons.providers.mock import MOCK_MARKER, MOCK_MODEL, MockBehaviour, MockClient
from nons.providers.pricing import ModelPrice, cost_for, price_for
from nons.providers.registry import (
    aclose_clients,
    complete,
    configure_providers,
    default_provider,
    get_model_client,
    mock_behaviour,
    provider_settings,
    reset_providers,
    set_client_wrapper,
)
from nons.providers.settings import ProviderSettings

__all__ = (
    "MOCK_MARKER",
    "MOCK_MODEL",
    "Completion",
    "CompletionRequest",
    "MockBehaviour",
    "MockClient",
    "ModelClient",
    "ModelPrice",
    "OutputSchema",
    "ProviderSettings",
    "aclose_clients",
    "complete",
    "configure_providers",
    "cost_for",
    "default_provider",
    "get_model_client",
    "mock_behaviour",
    "price_for",
    "provider_settings",
    "reset_providers",
    "set_client_wrapper",
)
