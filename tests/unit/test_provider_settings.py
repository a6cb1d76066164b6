"""Provider settings: environment parsing, defaults, and keys kept out of reprs."""

from __future__ import annotations

import pytest

from nons.core.errors import ConfigurationError
from nons.core.types import ModelProvider
from nons.providers.settings import ProviderSettings

SECRET = "sk-ant-very-secret-123"


def test_empty_environment_defaults_to_mock() -> None:
    settings = ProviderSettings.from_env({})
    assert settings == ProviderSettings()
    assert settings.default_provider is ModelProvider.MOCK
    assert settings.default_anthropic_model == "claude-haiku-4-5"
    assert settings.max_retries == 2


def test_anthropic_key_makes_anthropic_the_default() -> None:
    settings = ProviderSettings.from_env(
        {
            "ANTHROPIC_API_KEY": SECRET,
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:8080",
            "OPENAI_API_KEY": "sk-openai",
            "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
        }
    )
    assert settings.default_provider is ModelProvider.ANTHROPIC
    assert settings.anthropic_api_key == SECRET
    assert settings.anthropic_base_url == "http://127.0.0.1:8080"
    assert settings.openai_api_key == "sk-openai"
    assert settings.openai_base_url == "http://127.0.0.1:11434/v1"


def test_explicit_default_provider_wins() -> None:
    env = {"ANTHROPIC_API_KEY": SECRET, "NONS_DEFAULT_PROVIDER": "Mock"}
    assert ProviderSettings.from_env(env).default_provider is ModelProvider.MOCK
    env = {"NONS_DEFAULT_PROVIDER": "openai"}
    assert ProviderSettings.from_env(env).default_provider is ModelProvider.OPENAI


def test_empty_values_count_as_unset() -> None:
    settings = ProviderSettings.from_env({"ANTHROPIC_API_KEY": "  ", "NONS_DEFAULT_PROVIDER": ""})
    assert settings.anthropic_api_key is None
    assert settings.default_provider is ModelProvider.MOCK


def test_unknown_provider_names_the_variable_not_the_value() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ProviderSettings.from_env({"NONS_DEFAULT_PROVIDER": "gemini-secretish"})
    assert "NONS_DEFAULT_PROVIDER" in str(caught.value)
    assert "gemini-secretish" not in str(caught.value)


def test_repr_and_str_hide_keys() -> None:
    settings = ProviderSettings(anthropic_api_key=SECRET, openai_api_key="sk-openai-hidden")
    for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert SECRET not in text
        assert "sk-openai-hidden" not in text
        assert "'***'" in text
    assert "anthropic_api_key=None" in repr(ProviderSettings())


def test_settings_are_frozen_and_validated() -> None:
    settings = ProviderSettings()
    with pytest.raises(AttributeError):
        settings.anthropic_api_key = SECRET  # type: ignore[misc]
    with pytest.raises(ConfigurationError):
        ProviderSettings(max_retries=-1)
    with pytest.raises(ConfigurationError):
        ProviderSettings(request_timeout_s=0)
    assert ProviderSettings(default_provider="openai").default_provider is ModelProvider.OPENAI  # type: ignore[arg-type]
