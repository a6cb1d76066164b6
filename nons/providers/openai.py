"""The OpenAI-compatible provider: OpenAI, vLLM, Ollama and the like through `openai`.

Optional: the `openai` package comes with the `nons[openai]` extra, so importing
this module without it raises a `ConfigurationError` saying how to install it. The
registry imports the module only when a node asks for the `openai` provider.

Structured output: a request with an `output_schema` asks for a `json_schema`
response format (not `strict`, which would restrict the schemas it accepts); other
JSON requests for a `json_object`. A server that ignores the format still answers,
and the operator parses its text leniently. A `response_format` in `extra_params`
replaces ours (`{"type": "json_object"}` for a server without `json_schema`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nons.core.errors import (
    ConfigurationError,
    ProviderAuthenticationError,
    ProviderBadRequestError,
    ProviderError,
    ProviderOverloadedError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
)
from nons.core.types import TokenUsage
from nons.providers.base import Completion, CompletionRequest
from nons.providers.pricing import cost_for
from nons.providers.settings import OPENAI_API_KEY_VAR, OPENAI_BASE_URL_VAR, ProviderSettings

try:
    import openai
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ConfigurationError(
        "the openai provider needs the optional 'openai' package: pip install 'nons[openai]'"
    ) from exc

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

    from nons.providers.base import OutputSchema

__all__ = ("LOCAL_SERVER_API_KEY", "OpenAIClient")

LOCAL_SERVER_API_KEY = "not-needed"
"""Key sent to an OpenAI-compatible server configured without one (vLLM, Ollama)."""

_PROVIDER = "openai"


class OpenAIClient:
    """`ModelClient` for the Chat Completions API of OpenAI-compatible servers.

    The SDK retries 408, 409, 429, 5xx and connection errors `settings.max_retries`
    times before we see an error. Cached prompt tokens are reported as cache reads,
    so `TokenUsage.prompt_tokens` counts only the uncached ones, as for Anthropic.
    """

    def __init__(
        self, settings: ProviderSettings, *, client: openai.AsyncOpenAI | None = None
    ) -> None:
        """Build the SDK client from `settings`, or adopt `client`.

        Raises:
            ConfigurationError: neither an API key nor a base URL is configured.
        """
        self._settings = settings
        if client is None:
            api_key = settings.openai_api_key
            if api_key is None:
                if settings.openai_base_url is None:
                    raise ConfigurationError(
                        f"the openai provider needs {OPENAI_API_KEY_VAR}, or "
                        f"{OPENAI_BASE_URL_VAR} pointing at an OpenAI-compatible server"
                    )
                api_key = LOCAL_SERVER_API_KEY
            client = openai.AsyncOpenAI(
                api_key=api_key,
                base_url=settings.openai_base_url or "https://api.openai.com/v1",
                max_retries=settings.max_retries,
                timeout=settings.request_timeout_s,
            )
        self._client = client

    @property
    def name(self) -> str:
        """Always `openai`."""
        return _PROVIDER

    def default_model(self) -> str:
        """`ProviderSettings.default_openai_model`."""
        return self._settings.default_openai_model

    async def complete(self, request: CompletionRequest) -> Completion:
        """Send one Chat Completions call.

        Raises:
            ProviderRateLimitedError: 429 after the SDK's retries.
            ProviderOverloadedError: 529 after the SDK's retries.
            ProviderUnavailableError: other 5xx, connection failure or timeout.
            ProviderBadRequestError: 400, 404, 413, 422.
            ProviderAuthenticationError: 401, 403.
        """
        config = request.config
        model = config.model_name or self.default_model()
        messages: list[dict[str, str]] = []
        system = config.system_prompt or request.system
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": request.prompt})
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        }
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
        if config.stop:
            kwargs["stop"] = list(config.stop)
        if request.output_schema is not None:
            kwargs["response_format"] = _json_schema_format(request.output_schema)
        elif request.response_format == "json":
            kwargs["response_format"] = {"type": "json_object"}
        if config.timeout_seconds is not None:
            kwargs["timeout"] = config.timeout_seconds
        kwargs.update(config.extra_params)
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            raise self._map_error(exc) from exc
        return _completion(model, response)

    async def aclose(self) -> None:
        """Close the SDK's HTTP connections."""
        await self._client.close()

    def _map_error(self, exc: openai.OpenAIError) -> ProviderError:
        error = _map_error(exc)
        key = self._settings.openai_api_key
        if key and key in error.message:
            error = type(error)(error.message.replace(key, "***"), details=error.details)
        return error


def _json_schema_format(output_schema: OutputSchema) -> dict[str, object]:
    body: dict[str, object] = {
        "name": output_schema.name,
        "schema": output_schema.schema,
        "strict": False,
    }
    if output_schema.description:
        body["description"] = output_schema.description
    return {"type": "json_schema", "json_schema": body}


def _completion(model: str, response: ChatCompletion) -> Completion:
    choice = response.choices[0] if response.choices else None
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    details = usage.prompt_tokens_details if usage else None
    cached = (details.cached_tokens or 0) if details else 0
    tokens = TokenUsage(
        prompt_tokens=max(prompt - cached, 0),
        completion_tokens=usage.completion_tokens if usage else 0,
        cache_read_tokens=cached,
    )
    response_model = response.model or model
    return Completion(
        text=(choice.message.content or "") if choice else "",
        provider=_PROVIDER,
        request_model=model,
        response_model=response_model,
        usage=tokens,
        cost=cost_for(_PROVIDER, response_model, tokens),
        finish_reason=choice.finish_reason if choice else None,
        response_id=response.id,
    )


def _map_error(exc: openai.OpenAIError) -> ProviderError:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailableError(
            "openai API call timed out", details={"provider": _PROVIDER, "reason": "timeout"}
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailableError(
            "openai API unreachable (connection error)",
            details={"provider": _PROVIDER, "reason": "connection"},
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body
        api_message = body.get("message") if isinstance(body, dict) else None
        api_type = exc.type
        text = f"openai API error {status} {api_type or 'unknown_error'}: "
        text += str(api_message) if api_message else "no error message"
        if exc.request_id:
            text += f" (request-id {exc.request_id})"
        return _class_for_status(status)(
            text,
            details={
                "provider": _PROVIDER,
                "status": status,
                "api_error_type": api_type,
                "request_id": exc.request_id,
            },
        )
    return ProviderError(f"openai SDK error: {type(exc).__name__}", details={"provider": _PROVIDER})


def _class_for_status(status: int) -> type[ProviderError]:
    if status == 429:
        return ProviderRateLimitedError
    if status == 529:
        return ProviderOverloadedError
    if status in (401, 403):
        return ProviderAuthenticationError
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError
    if 400 <= status < 500:
        return ProviderBadRequestError
    return ProviderError
