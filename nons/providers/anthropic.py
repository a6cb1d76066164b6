"""The Anthropic provider: the official SDK's async client behind `ModelClient`.

This is the only module that imports `anthropic`; the registry imports it lazily, so
a process that only uses the mock never loads the SDK. The adapter owns the SDK
client, its key and base URL, the pricing of the answer and the mapping of SDK
errors onto `ProviderError` subclasses that say whether a retry may help.

Tracing: the SDK (2.x) starts its own `CLIENT` span per API call and sends that
span's `traceparent` to the API unless told otherwise. The client is built with
`open_telemetry=False`, which disables the SDK's span (and therefore its trace
propagation), so the project's own GenAI span, written by the observability
wrapper around this client, is the one LLM span of a call. The SDK's environment
switch `ANTHROPIC_OPEN_TELEMETRY` is not consulted once the option is given.

Sampling: SDK 2.x speaks API version 2026-10-21, which rejects `temperature`,
`top_p` and `top_k` with a 400 whatever their value, and its `messages.create` no
longer has those parameters. So `ModelConfig.temperature` and `top_p` are not sent
to Anthropic. `ModelConfig.extra_params` pass through: keys `messages.create` knows
(`metadata`, `thinking`, `output_config`, `extra_headers`...) as arguments, any
other key into the JSON body (`extra_body`), for proxies or older API versions.

Structured output: a request with an `output_schema` carries one tool whose
`input_schema` is that schema, and `tool_choice` forcing the model to call it, so
the answer always has the shape; the tool call's input becomes `Completion.data`
(and its JSON the text). With extended thinking on (`extra_params["thinking"]`),
which the API does not allow with a forced tool, the choice is left to the model.
`tools` or `tool_choice` in `extra_params` replace ours.

Prompt caching: unless the request says `prompt_cache=False`, the prefix every copy of
a node (and every node of a layer running the same operator) sends alike, namely the
tools, the system prompt and the user message, which holds the layer's input, is
marked `cache_control: {"type": "ephemeral"}` when it is at least the model's minimum
cacheable length by the `pricing.is_cacheable` estimate (four characters a token): the system
prompt gets a breakpoint of its own when it alone is long enough, and the user message
one when the whole prompt is. The API bills the first call of a prefix as a cache
write (1.25x the input price) and repeats within five minutes as reads (0.1x); a
shorter prefix is sent unmarked, as it would not be cached anyway.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic.resources.messages import AsyncMessages

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
from nons.providers.batches import BatchSettings, BatchStatus, MessageBatcher, batch_mode
from nons.providers.pricing import cost_for, is_cacheable
from nons.providers.settings import ANTHROPIC_API_KEY_VAR, ProviderSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from anthropic.types import Message

    from nons.providers.base import OutputSchema

__all__ = ("DEFAULT_ANTHROPIC_BASE_URL", "AnthropicClient")

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
"""Passed explicitly so that the SDK does not read `ANTHROPIC_BASE_URL` itself."""

_PROVIDER = "anthropic"

_CREATE_ARGUMENTS = frozenset(inspect.signature(AsyncMessages.create).parameters) - {"self"}
"""Keyword arguments of `messages.create`; other `extra_params` keys go to `extra_body`."""

_STREAM_ARGUMENTS = frozenset(inspect.signature(AsyncMessages.stream).parameters) - {"self"}
"""Keyword arguments of `messages.stream`."""

_TYPE_ERRORS: dict[str, type[ProviderError]] = {
    "rate_limit_error": ProviderRateLimitedError,
    "overloaded_error": ProviderOverloadedError,
    "api_error": ProviderUnavailableError,
    "timeout_error": ProviderUnavailableError,
    "invalid_request_error": ProviderBadRequestError,
    "not_found_error": ProviderBadRequestError,
    "request_too_large": ProviderBadRequestError,
    "authentication_error": ProviderAuthenticationError,
    "permission_error": ProviderAuthenticationError,
    "billing_error": ProviderAuthenticationError,
}
"""Error classes by the API's `error.type`, for errors that arrive inside a stream
(whose HTTP status is 200) and statuses the table below does not know."""


class AnthropicClient:
    """`ModelClient` for the Anthropic Messages API.

    One instance per process (the registry caches it) shares the SDK's connection
    pool between all nodes. The SDK retries 408, 409, 429, 5xx and connection
    errors itself, `settings.max_retries` times, honouring `retry-after`; the error
    we raise is what remains after those retries.
    """

    def __init__(
        self, settings: ProviderSettings, *, client: anthropic.AsyncAnthropic | None = None
    ) -> None:
        """Build the SDK client from `settings`, or adopt `client`.

        Raises:
            ConfigurationError: no API key is configured.
        """
        self._settings = settings
        if client is None:
            if settings.anthropic_api_key is None:
                raise ConfigurationError(
                    f"the anthropic provider needs an API key: set {ANTHROPIC_API_KEY_VAR}, "
                    "or use the offline 'mock' provider"
                )
            client = anthropic.AsyncAnthropic(
                api_key=settings.anthropic_api_key,
                base_url=settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL,
                max_retries=settings.max_retries,
                timeout=settings.request_timeout_s,
                open_telemetry=False,
            )
        self._client = client
        self._batcher: MessageBatcher | None = None
        self.batch_settings = BatchSettings(
            poll_initial_s=settings.batch_poll_s,
            poll_max_s=max(60.0, settings.batch_poll_s),
        )
        """How batch-mode calls are gathered and polled (set before the first one)."""

    @property
    def name(self) -> str:
        """Always `anthropic`."""
        return _PROVIDER

    @property
    def sdk_client(self) -> anthropic.AsyncAnthropic:
        """The SDK client, for calls this adapter does not wrap."""
        return self._client

    def default_model(self) -> str:
        """`ProviderSettings.default_anthropic_model`."""
        return self._settings.default_anthropic_model

    async def complete(self, request: CompletionRequest) -> Completion:
        """Send one Messages API call.

        Raises:
            ProviderRateLimitedError: 429 after the SDK's retries.
            ProviderOverloadedError: 529 after the SDK's retries.
            ProviderUnavailableError: other 5xx, connection failure or timeout.
            ProviderBadRequestError: 400, 404, 413, 422.
            ProviderAuthenticationError: 401, 403.
        """
        mode = batch_mode()
        if mode is not None:
            return await self.batch_complete(request, mode.on_progress)
        model, kwargs = self._arguments(request, _CREATE_ARGUMENTS)
        try:
            message = await self._client.messages.create(**kwargs)
        except anthropic.AnthropicError as exc:
            raise self._map_error(exc) from exc
        return self._completion(model, message, request)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield text deltas as they arrive, then the final `Completion`.

        Raises:
            ProviderError: as `complete`, also for an error event inside the stream.
        """
        mode = batch_mode()
        if mode is not None:  # a batch answers whole: the text arrives with the result
            yield await self.batch_complete(request, mode.on_progress)
            return
        model, kwargs = self._arguments(request, _STREAM_ARGUMENTS)
        try:
            async with self._client.messages.stream(**kwargs) as events:
                async for text in events.text_stream:
                    yield text
                message = await events.get_final_message()
        except anthropic.AnthropicError as exc:
            raise self._map_error(exc) from exc
        yield self._completion(model, message, request)

    async def batch_complete(
        self,
        request: CompletionRequest,
        on_progress: Callable[[BatchStatus], Awaitable[None]] | None = None,
    ) -> Completion:
        """Run one call in this process's next Message Batch, at the batch price.

        Raises:
            BatchExpiredError: the batch expired before the request ran.
            ProviderError: as `complete`, for a request that errored or a batch that
                could not be sent or read.
        """
        if self._batcher is None:
            self._batcher = MessageBatcher(
                self._client.messages.batches,
                params=self._batch_params,
                completion=self._completion,
                error=self._sdk_error,
                result_error=self._result_error,
                settings=self.batch_settings,
            )
        return await self._batcher.complete(request, on_progress)

    @property
    def submitted_batches(self) -> list[str]:
        """Ids of the Message Batches this client sent, in order."""
        return list(self._batcher.submitted) if self._batcher is not None else []

    async def aclose(self) -> None:
        """Stop any batch being watched and close the SDK's HTTP connections."""
        if self._batcher is not None:
            await self._batcher.aclose()
        await self._client.close()

    def _batch_params(self, request: CompletionRequest) -> tuple[str, dict[str, Any]]:
        """A batch request's `params`: the Messages API body (no client-side options)."""
        model, kwargs = self._arguments(request, _CREATE_ARGUMENTS)
        kwargs.pop("timeout", None)
        extra = kwargs.pop("extra_body", None) or {}
        return model, {**kwargs, **extra}

    def _sdk_error(self, exc: BaseException) -> ProviderError | None:
        return self._map_error(exc) if isinstance(exc, anthropic.AnthropicError) else None

    def _result_error(self, api_type: str, message: str) -> ProviderError:
        error_class = _TYPE_ERRORS.get(api_type, ProviderError)
        text = f"anthropic batch request error {api_type}: {message}"
        key = self._settings.anthropic_api_key
        if key and key in text:
            text = text.replace(key, "***")
        return error_class(text, details={"provider": _PROVIDER, "api_error_type": api_type})

    def _arguments(
        self, request: CompletionRequest, known: frozenset[str]
    ) -> tuple[str, dict[str, Any]]:
        config = request.config
        model = config.model_name or self.default_model()
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": config.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
        }
        system = config.system_prompt or request.system
        if system:
            kwargs["system"] = system
        if config.stop:
            kwargs["stop_sequences"] = list(config.stop)
        if config.timeout_seconds is not None:
            kwargs["timeout"] = config.timeout_seconds
        if request.output_schema is not None:
            kwargs.update(_tool_arguments(request.output_schema, config.extra_params))
        extra_body: dict[str, Any] = {}
        for key, value in config.extra_params.items():
            if key == "extra_body" and isinstance(value, dict):
                extra_body.update(value)
            elif key in known:
                kwargs[key] = value
            else:
                extra_body[key] = value
        if extra_body:
            kwargs["extra_body"] = extra_body
        if request.prompt_cache:
            _mark_cache_breakpoints(kwargs, model)
        return model, kwargs

    def _completion(self, model: str, message: Message, request: CompletionRequest) -> Completion:
        usage = message.usage
        tokens = TokenUsage(
            prompt_tokens=usage.input_tokens or 0,
            completion_tokens=usage.output_tokens or 0,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_creation_tokens=usage.cache_creation_input_tokens or 0,
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        data = _tool_input(message, request.output_schema)
        if data is not None and not text.strip():
            text = json.dumps(data, ensure_ascii=False)
        return Completion(
            text=text,
            provider=_PROVIDER,
            request_model=model,
            response_model=message.model or model,
            usage=tokens,
            cost=cost_for(_PROVIDER, message.model or model, tokens),
            finish_reason=message.stop_reason,
            response_id=message.id,
            data=data,
        )

    def _map_error(self, exc: anthropic.AnthropicError) -> ProviderError:
        error = _map_error(exc)
        key = self._settings.anthropic_api_key
        if key and key in error.message:
            # Never let a key reach a log or the wire, even if the API echoed it.
            error = type(error)(error.message.replace(key, "***"), details=error.details)
        return error


def _mark_cache_breakpoints(kwargs: dict[str, Any], model: str) -> None:
    """Turn the system prompt and user message into `cache_control` blocks, where it pays.

    Only plain-text system prompts and user messages (what operators send) are marked,
    so that `extra_params` that replace them are left exactly as given.
    """
    system = kwargs.get("system")
    messages = kwargs["messages"]
    content = messages[0]["content"] if len(messages) == 1 else None
    tools = kwargs.get("tools")
    before = len(json.dumps(tools)) if tools else 0
    system_chars = len(system) if isinstance(system, str) else 0
    if isinstance(system, str) and is_cacheable(before + system_chars, model):
        kwargs["system"] = [{"type": "text", "text": system, "cache_control": dict(_EPHEMERAL)}]
    if isinstance(content, str) and is_cacheable(before + system_chars + len(content), model):
        block = {"type": "text", "text": content, "cache_control": dict(_EPHEMERAL)}
        kwargs["messages"] = [{"role": "user", "content": [block]}]


_EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
"""The one cache type of the Messages API: a five-minute entry, refreshed by each read."""


def _tool_arguments(
    output_schema: OutputSchema, extra_params: Mapping[str, object]
) -> dict[str, Any]:
    tool = {
        "name": output_schema.name,
        "description": output_schema.description or f"Record the {output_schema.name} answer.",
        "input_schema": output_schema.schema,
    }
    thinking = extra_params.get("thinking")
    thinks = isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive")
    choice = {"type": "auto"} if thinks else {"type": "tool", "name": output_schema.name}
    return {"tools": [tool], "tool_choice": choice}


def _tool_input(message: Message, output_schema: OutputSchema | None) -> dict[str, object] | None:
    if output_schema is None:
        return None
    for block in message.content:
        if block.type == "tool_use" and block.name == output_schema.name:
            return dict(block.input)
    return None


def _map_error(exc: anthropic.AnthropicError) -> ProviderError:
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderUnavailableError(
            "anthropic API call timed out", details={"provider": _PROVIDER, "reason": "timeout"}
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailableError(
            "anthropic API unreachable (connection error)",
            details={"provider": _PROVIDER, "reason": "connection"},
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        api_type = exc.type
        error_class = _class_for_status(status) or _TYPE_ERRORS.get(api_type or "", ProviderError)
        api_message = exc.api_message or "no error message"
        request_id = exc.request_id
        text = f"anthropic API error {status} {api_type or 'unknown_error'}: {api_message}"
        if request_id:
            text += f" (request-id {request_id})"
        return error_class(
            text,
            details={
                "provider": _PROVIDER,
                "status": status,
                "api_error_type": api_type,
                "request_id": request_id,
            },
        )
    return ProviderError(
        f"anthropic SDK error: {type(exc).__name__}", details={"provider": _PROVIDER}
    )


def _class_for_status(status: int) -> type[ProviderError] | None:
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
    return None
