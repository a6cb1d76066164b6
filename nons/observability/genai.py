"""One OpenTelemetry GenAI client span per model call, around any `ModelClient`.

The span follows the GenAI semantic conventions (`chat {model}`, CLIENT kind,
`gen_ai.*` attributes), so GenAI-aware backends show model, tokens and finish
reasons, and it nests under the node span that made the call. Prompts and answers
are not recorded unless asked for, and API keys and headers never are: this wrapper
only sees the `CompletionRequest` and the `Completion`.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from nons.core.errors import ExecutionError
from nons.observability._names import INSTRUMENTATION_NAME, error_type_of
from nons.providers.base import Completion
from nons.providers.streaming import aclose_stream, stream_completion

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.util.types import AttributeValue

    from nons.providers.base import CompletionRequest, ModelClient

__all__ = (
    "DEFAULT_MAX_CONTENT_CHARS",
    "TracedModelClient",
    "genai_provider_name",
    "install_genai_tracing",
)

DEFAULT_MAX_CONTENT_CHARS = 2000
"""Longest prompt or answer text recorded when content capture is on."""

_PROVIDER_NAMES = {"mock": "nons.mock"}
"""`gen_ai.provider.name` for providers the conventions do not list."""


def genai_provider_name(provider: str) -> str:
    """The `gen_ai.provider.name` of one of our providers (`mock` is `nons.mock`)."""
    return _PROVIDER_NAMES.get(provider, provider)


class TracedModelClient:
    """A `ModelClient` that wraps each `complete()` in a GenAI client span.

    Args:
        inner: the client doing the work.
        tracer_provider: where spans go (default: the global provider).
        capture_content: record prompts and answers as span events (opt-in: they
            may hold personal data).
        max_content_chars: longest text recorded per event when capturing.
    """

    def __init__(
        self,
        inner: ModelClient,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        capture_content: bool = False,
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    ) -> None:
        self.inner = inner
        """The wrapped client."""
        self.capture_content = capture_content
        """Whether prompts and answers are recorded."""
        self.max_content_chars = max_content_chars
        """Truncation limit of recorded text."""
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)

    @property
    def name(self) -> str:
        """The wrapped provider's name."""
        return self.inner.name

    def default_model(self) -> str:
        """The wrapped provider's default model."""
        return self.inner.default_model()

    async def aclose(self) -> None:
        """Close the wrapped client."""
        await self.inner.aclose()

    async def complete(self, request: CompletionRequest) -> Completion:
        """Run the call inside a `chat {model}` CLIENT span.

        Raises:
            ProviderError: whatever the wrapped client raises, after recording it
                on the span (`error.type` is the wire error type).
        """
        model = request.config.model_name or self.inner.default_model()
        parent = trace.get_current_span().get_span_context()
        if parent.is_valid and not parent.trace_flags.sampled:
            # The execution is not sampled (decided once, upstream): no span to make.
            return await self.inner.complete(request)
        with self._tracer.start_as_current_span(
            f"chat {model}",
            kind=trace.SpanKind.CLIENT,
            attributes=self._request_attributes(request, model),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if self.capture_content and span.is_recording():
                self._record_prompt(span, request)
            try:
                completion = await self.inner.complete(request)
            except Exception as exc:
                self._record_error(span, exc)
                raise
            self._record_completion(span, completion)
            return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """As `complete`, streaming: one span covers the whole stream.

        The span is current while the stream is read, and it records when the first
        delta arrived (`gen_ai.first_chunk` event) as well as the final answer.

        Raises:
            ProviderError: whatever the wrapped client raises, recorded on the span.
        """
        model = request.config.model_name or self.inner.default_model()
        items = stream_completion(self.inner, request)
        parent = trace.get_current_span().get_span_context()
        try:
            if parent.is_valid and not parent.trace_flags.sampled:
                async for item in items:
                    yield item
                return
            attributes = self._request_attributes(request, model)
            attributes["nons.stream"] = True
            with self._tracer.start_as_current_span(
                f"chat {model}",
                kind=trace.SpanKind.CLIENT,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                if self.capture_content and span.is_recording():
                    self._record_prompt(span, request)
                first = True
                try:
                    async for item in items:
                        if isinstance(item, Completion):
                            self._record_completion(span, item)
                        elif first:
                            first = False
                            span.add_event("gen_ai.first_chunk")
                        yield item
                except Exception as exc:
                    self._record_error(span, exc)
                    raise
        finally:
            await aclose_stream(items)

    def _record_completion(self, span: trace.Span, completion: Completion) -> None:
        if span.is_recording():
            span.set_attributes(_completion_attributes(completion))
            if self.capture_content:
                span.add_event(
                    "gen_ai.choice",
                    {
                        "index": 0,
                        "finish_reason": completion.finish_reason or "",
                        **self._content(completion.text),
                    },
                )

    @staticmethod
    def _record_error(span: trace.Span, exc: Exception) -> None:
        # Our own traceback only: the cause chain holds the SDK's exception,
        # whose text is the API's raw answer (which may echo the API key).
        span.record_exception(exc, attributes={"exception.stacktrace": _own_traceback(exc)})
        span.set_attribute("error.type", error_type_of(exc))
        span.set_status(Status(StatusCode.ERROR, _error_description(exc)))

    def _request_attributes(
        self, request: CompletionRequest, model: str
    ) -> dict[str, AttributeValue]:
        config = request.config
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": genai_provider_name(self.inner.name),
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": config.temperature,
            "gen_ai.request.max_tokens": config.max_tokens,
            "gen_ai.output.type": request.response_format,
            "nons.operator": request.operator,
        }
        if config.top_p is not None:
            attributes["gen_ai.request.top_p"] = config.top_p
        if config.stop:
            attributes["gen_ai.request.stop_sequences"] = list(config.stop)
        return attributes

    def _record_prompt(self, span: trace.Span, request: CompletionRequest) -> None:
        system = request.config.system_prompt or request.system
        if system:
            span.add_event("gen_ai.system.message", self._content(system))
        span.add_event("gen_ai.user.message", self._content(request.prompt))

    def _content(self, text: str) -> dict[str, AttributeValue]:
        if len(text) <= self.max_content_chars:
            return {"content": text}
        return {
            "content": text[: self.max_content_chars],
            "content.truncated": True,
            "content.length": len(text),
        }


def install_genai_tracing(
    capture_content: bool = False,
    tracer_provider: trace.TracerProvider | None = None,
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
) -> None:
    """Wrap every model client the provider registry creates in `TracedModelClient`."""
    from nons.providers.registry import set_client_wrapper

    def wrap(client: ModelClient) -> ModelClient:
        if isinstance(client, TracedModelClient):
            return client
        return TracedModelClient(
            client,
            tracer_provider=tracer_provider,
            capture_content=capture_content,
            max_content_chars=max_content_chars,
        )

    set_client_wrapper(wrap)


def _completion_attributes(completion: Completion) -> dict[str, AttributeValue]:
    usage = completion.usage
    attributes: dict[str, AttributeValue] = {
        "gen_ai.response.model": completion.response_model,
        "gen_ai.usage.input_tokens": (
            usage.prompt_tokens + usage.cache_read_tokens + usage.cache_creation_tokens
        ),
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "nons.cost_usd": completion.cost.total_cost_usd,
        "nons.is_mock": completion.is_mock,
    }
    if usage.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
    if usage.cache_creation_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_creation_tokens
    if completion.finish_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = [completion.finish_reason]
    if completion.response_id is not None:
        attributes["gen_ai.response.id"] = completion.response_id
    return attributes


def _own_traceback(error: BaseException) -> str:
    """The traceback of `error` alone, without its `__cause__` or `__context__`."""
    return "".join(traceback.format_exception(error, chain=False))


def _error_description(error: BaseException) -> str:
    if isinstance(error, ExecutionError):
        return f"{error.type}: {error.message}"
    return type(error).__name__
