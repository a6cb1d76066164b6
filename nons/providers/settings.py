"""Provider credentials and defaults, read once from the environment at the edge.

Everything below the CLI gets a `ProviderSettings` value instead of reading
`os.environ`, so a process can hold two configurations (tests do) and a key is read
in exactly one place. The repr hides the keys, so logging the settings is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from msgspec.structs import force_setattr

from nons.core.errors import ConfigurationError
from nons.core.types import ModelProvider

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "ANTHROPIC_API_KEY_VAR",
    "ANTHROPIC_BASE_URL_VAR",
    "DEFAULT_PROVIDER_VAR",
    "OPENAI_API_KEY_VAR",
    "OPENAI_BASE_URL_VAR",
    "ProviderSettings",
)

ANTHROPIC_API_KEY_VAR = "ANTHROPIC_API_KEY"
"""Environment variable holding the Anthropic API key."""

ANTHROPIC_BASE_URL_VAR = "ANTHROPIC_BASE_URL"
"""Environment variable overriding the Messages API base URL (proxies, local fakes)."""

OPENAI_API_KEY_VAR = "OPENAI_API_KEY"
"""Environment variable holding the key of an OpenAI-compatible server."""

OPENAI_BASE_URL_VAR = "OPENAI_BASE_URL"
"""Environment variable pointing at an OpenAI-compatible server (vLLM, Ollama...)."""

DEFAULT_PROVIDER_VAR = "NONS_DEFAULT_PROVIDER"
"""Environment variable choosing the provider of nodes whose `ModelConfig.provider` is None."""

_HIDDEN = "'***'"
"""What the repr shows instead of a key that is set."""


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Credentials, endpoints and defaults shared by every model client of a process.

    Never encode this Struct onto the wire: it holds API keys.
    """

    anthropic_api_key: str | None = None
    """Anthropic API key; hidden from the repr."""
    anthropic_base_url: str | None = None
    """Messages API base URL; the SDK's default (`https://api.anthropic.com`) when None."""
    openai_api_key: str | None = None
    """Key of the OpenAI-compatible server; hidden from the repr."""
    openai_base_url: str | None = None
    """Base URL of the OpenAI-compatible server (ending in `/v1`)."""
    default_provider: ModelProvider = ModelProvider.MOCK
    """Provider of nodes that name none."""
    default_anthropic_model: str = "claude-haiku-4-5"
    """Anthropic model of nodes that name none: fast and cheap."""
    default_openai_model: str = "gpt-4o-mini"
    """OpenAI-compatible model of nodes that name none."""
    max_retries: int = 2
    """Retries the SDKs make themselves (429, 5xx, connection errors) before we see an error."""
    request_timeout_s: float = 120.0
    """Deadline of one HTTP attempt unless a node sets `ModelConfig.timeout_seconds`."""
    batch_poll_s: float = 1.0
    """Batch mode: first wait before asking whether a Message Batch has ended (doubled
    after each poll, up to a minute)."""

    def __post_init__(self) -> None:
        if isinstance(self.default_provider, str) and not isinstance(
            self.default_provider, ModelProvider
        ):
            force_setattr(self, "default_provider", _parse_provider(self.default_provider))
        if self.max_retries < 0:
            raise ConfigurationError("ProviderSettings.max_retries must be >= 0")
        if self.request_timeout_s <= 0:
            raise ConfigurationError("ProviderSettings.request_timeout_s must be positive")
        if not self.batch_poll_s > 0:
            raise ConfigurationError("ProviderSettings.batch_poll_s must be positive")

    def __repr__(self) -> str:
        return (
            "ProviderSettings("
            f"anthropic_api_key={_hide(self.anthropic_api_key)}, "
            f"anthropic_base_url={self.anthropic_base_url!r}, "
            f"openai_api_key={_hide(self.openai_api_key)}, "
            f"openai_base_url={self.openai_base_url!r}, "
            f"default_provider={self.default_provider.value!r}, "
            f"default_anthropic_model={self.default_anthropic_model!r}, "
            f"default_openai_model={self.default_openai_model!r}, "
            f"max_retries={self.max_retries!r}, "
            f"request_timeout_s={self.request_timeout_s!r}, "
            f"batch_poll_s={self.batch_poll_s!r})"
        )

    __str__ = __repr__

    def __rich_repr__(self) -> list[tuple[str, object]]:
        """Keep rich and other pretty-printers from walking the fields (and the keys)."""
        return [("repr", repr(self))]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProviderSettings:
        """Build settings from environment variables; empty values count as unset.

        The default provider is `NONS_DEFAULT_PROVIDER` when set, otherwise `anthropic`
        when `ANTHROPIC_API_KEY` is set, otherwise the offline `mock`.

        Raises:
            ConfigurationError: `NONS_DEFAULT_PROVIDER` names no provider (the
                message names the variable, never its value).
        """
        anthropic_api_key = _get(environ, ANTHROPIC_API_KEY_VAR)
        provider_name = _get(environ, DEFAULT_PROVIDER_VAR)
        if provider_name is not None:
            default_provider = _parse_provider(provider_name.strip().lower(), DEFAULT_PROVIDER_VAR)
        elif anthropic_api_key is not None:
            default_provider = ModelProvider.ANTHROPIC
        else:
            default_provider = ModelProvider.MOCK
        return cls(
            anthropic_api_key=anthropic_api_key,
            anthropic_base_url=_get(environ, ANTHROPIC_BASE_URL_VAR),
            openai_api_key=_get(environ, OPENAI_API_KEY_VAR),
            openai_base_url=_get(environ, OPENAI_BASE_URL_VAR),
            default_provider=default_provider,
        )


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_provider(name: str, variable: str | None = None) -> ModelProvider:
    try:
        return ModelProvider(name)
    except ValueError:
        known = ", ".join(p.value for p in ModelProvider)
        where = variable or "ProviderSettings.default_provider"
        raise ConfigurationError(f"{where} must name a model provider: one of {known}") from None


def _hide(secret: str | None) -> str:
    return "None" if secret is None else _HIDDEN
