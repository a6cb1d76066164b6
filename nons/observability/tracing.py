"""The NoN documentation's tracing API, built on OpenTelemetry spans.

User code written against the NoN docs (`get_tracer().start_span(...)`, `add_tag`,
`add_log({...})`, `finish(status=...)`) keeps working, and its spans are real OTel
spans: children of the current context, exported with the runtime's own spans, in
the same trace. There is no span store here; export and query spans through an
OpenTelemetry backend (Jaeger) or an SDK exporter.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Self

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from nons.observability._names import INSTRUMENTATION_NAME, error_type_of
from nons.observability.autoconfigure import ensure_telemetry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from contextlib import AbstractAsyncContextManager, AbstractContextManager
    from contextvars import Token
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

__all__ = (
    "INSTRUMENTATION_NAME",
    "NonsTracer",
    "Span",
    "SpanKind",
    "SpanStatus",
    "async_traced_operation",
    "coerce_attribute",
    "error_type_of",
    "get_tracer",
    "traced_operation",
)


class SpanKind(enum.StrEnum):
    """What a span stands for, in the NoN docs' vocabulary (`nons.span_kind`)."""

    NETWORK = "network"
    LAYER = "layer"
    NODE = "node"
    OPERATOR = "operator"
    LLM_CALL = "llm_call"
    RETRY = "retry"
    FALLBACK = "fallback"
    CUSTOM = "custom"


class SpanStatus(enum.StrEnum):
    """Life-cycle state of a span, as the NoN docs name it (`nons.status`)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


_OTEL_KINDS = {SpanKind.LLM_CALL: trace.SpanKind.CLIENT}
"""OTel span kind per NoN kind; everything else is INTERNAL."""

_ERROR_STATUSES = frozenset({SpanStatus.ERROR, SpanStatus.TIMEOUT})
"""Statuses that mark the OTel span as failed."""

_FIELD_PREFIX = "nons."
"""Prefix of attributes set from `start_span` keyword fields."""


class Span:
    """A running span: an OTel span plus the NoN docs' methods.

    It is the current span from `start_span` until `finish`, so spans started in
    between (the runtime's too) become its children.
    """

    def __init__(
        self,
        otel_span: trace.Span,
        operation_name: str,
        kind: SpanKind,
        token: Token[Context] | None,
    ) -> None:
        self.otel_span = otel_span
        """The underlying OpenTelemetry span."""
        self.operation_name = operation_name
        """The name the span was started with."""
        self.kind = kind
        """Its NoN kind."""
        self.status = SpanStatus.RUNNING
        """RUNNING until `finish`, then the final status."""
        self._token = token
        self._failed = False

    @property
    def trace_id(self) -> str:
        """The 32-hex-digit trace id (all zeros when tracing is off)."""
        return format(self.otel_span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        """The 16-hex-digit span id (all zeros when tracing is off)."""
        return format(self.otel_span.get_span_context().span_id, "016x")

    @property
    def is_finished(self) -> bool:
        """Whether `finish` was called."""
        return self.status not in (SpanStatus.RUNNING, SpanStatus.PENDING)

    def add_tag(self, key: str, value: object) -> None:
        """Set one attribute; values that OTel cannot carry are stored as text."""
        coerced = coerce_attribute(value)
        if coerced is not None:
            self.otel_span.set_attribute(key, coerced)

    def add_tags(self, tags: Mapping[str, object]) -> None:
        """Set several attributes at once."""
        for key, value in tags.items():
            self.add_tag(key, value)

    def add_log(
        self, event: str | Mapping[str, object], fields: Mapping[str, object] | None = None
    ) -> None:
        """Add a span event.

        The docs call `add_log({...})` with a dict: that becomes an event named
        `log` with the dict as attributes. A string names the event and `fields`
        become its attributes.
        """
        if isinstance(event, str):
            name, attributes = event, dict(fields or {})
        else:
            name, attributes = "log", {**event, **(fields or {})}
        self.otel_span.add_event(name, _attributes(attributes))

    def set_error(self, error: BaseException) -> None:
        """Record an exception on the span and mark it failed."""
        self._failed = True
        self.otel_span.record_exception(error)
        self.otel_span.set_attribute("error.type", error_type_of(error))
        self.otel_span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def finish(self, status: SpanStatus | None = None) -> None:
        """End the span (once; later calls do nothing) and restore the previous context.

        Args:
            status: the outcome; `ERROR` and `TIMEOUT` mark the OTel span failed,
                `SUCCESS` marks it OK. `None` means ERROR after `set_error`, else SUCCESS.
        """
        if self.is_finished:
            return
        if status is None:
            status = SpanStatus.ERROR if self._failed else SpanStatus.SUCCESS
        self.status = status
        self.otel_span.set_attribute("nons.status", status.value)
        if status in _ERROR_STATUSES:
            if not self._failed:
                self.otel_span.set_status(Status(StatusCode.ERROR, status.value))
        elif status is SpanStatus.SUCCESS and not self._failed:
            self.otel_span.set_status(Status(StatusCode.OK))
        self.otel_span.end()
        self._restore_context()

    def _restore_context(self) -> None:
        token, self._token = self._token, None
        if token is not None and trace.get_current_span() is self.otel_span:
            otel_context.detach(token)

    def _finish_after(self, error: BaseException | None) -> None:
        if error is None:
            self.finish()
        elif isinstance(error, asyncio.CancelledError):
            self.finish(SpanStatus.CANCELLED)
        else:
            self.set_error(error)
            self.finish(SpanStatus.TIMEOUT if isinstance(error, TimeoutError) else None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._finish_after(exc)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._finish_after(exc)


class NonsTracer:
    """Starts NoN spans on an OTel tracer provider (default: the global one).

    With the global provider, spans follow whatever `configure_telemetry` installs,
    even when installed after this tracer was created; the first span installs the
    providers the `OTEL_*` variables configure if the application has none
    (`ensure_telemetry`).
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        self._on_global_provider = tracer_provider is None

    def start_span(
        self,
        operation_name: str,
        kind: SpanKind = SpanKind.CUSTOM,
        tags: Mapping[str, object] | None = None,
        *,
        parent_context: Context | trace.SpanContext | None = None,
        **fields: object,
    ) -> Span:
        """Start a span and make it current until it finishes.

        Args:
            operation_name: the span name.
            kind: its NoN kind (`nons.span_kind`); `LLM_CALL` spans are OTel CLIENT spans.
            tags: attributes set as given (non-primitive values as text).
            parent_context: an explicit parent (an OTel context or a span context);
                the current context when `None`.
            **fields: the docs' span fields (`component_type=`, `component_id=`,
                `layer_index=`...), stored as `nons.<field>` attributes.
        """
        if self._on_global_provider:
            ensure_telemetry()
        if isinstance(parent_context, trace.SpanContext):
            parent_context = trace.set_span_in_context(trace.NonRecordingSpan(parent_context))
        attributes = _attributes(tags or {})
        attributes["nons.span_kind"] = kind.value
        for key, value in fields.items():
            coerced = coerce_attribute(value)
            if coerced is not None:
                attributes[_FIELD_PREFIX + key] = coerced
        otel_span = self._tracer.start_span(
            operation_name,
            context=parent_context,
            kind=_OTEL_KINDS.get(kind, trace.SpanKind.INTERNAL),
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(otel_span, parent_context))
        return Span(otel_span, operation_name, kind, token)

    def finish_span(self, span: Span, status: SpanStatus | None = None) -> None:
        """End `span` (the docs' spelling of `span.finish(status)`)."""
        span.finish(status)

    @contextmanager
    def traced_operation(
        self,
        operation_name: str,
        kind: SpanKind = SpanKind.CUSTOM,
        tags: Mapping[str, object] | None = None,
        *,
        parent_context: Context | trace.SpanContext | None = None,
        **fields: object,
    ) -> Iterator[Span]:
        """A span around a block; an exception marks it failed and propagates."""
        with self.start_span(
            operation_name, kind, tags=tags, parent_context=parent_context, **fields
        ) as span:
            yield span

    @asynccontextmanager
    async def async_traced_operation(
        self,
        operation_name: str,
        kind: SpanKind = SpanKind.CUSTOM,
        tags: Mapping[str, object] | None = None,
        *,
        parent_context: Context | trace.SpanContext | None = None,
        **fields: object,
    ) -> AsyncIterator[Span]:
        """The async form of `traced_operation`."""
        async with self.start_span(
            operation_name, kind, tags=tags, parent_context=parent_context, **fields
        ) as span:
            yield span


_global_tracer: NonsTracer | None = None


def get_tracer(tracer_provider: trace.TracerProvider | None = None) -> NonsTracer:
    """The tracer of the NoN docs: on the global provider unless one is given."""
    global _global_tracer
    if tracer_provider is not None:
        return NonsTracer(tracer_provider)
    if _global_tracer is None:
        _global_tracer = NonsTracer()
    return _global_tracer


def traced_operation(
    operation_name: str,
    kind: SpanKind = SpanKind.CUSTOM,
    tags: Mapping[str, object] | None = None,
    *,
    parent_context: Context | trace.SpanContext | None = None,
    **fields: object,
) -> AbstractContextManager[Span]:
    """A span around a block on the global tracer (see `NonsTracer.traced_operation`)."""
    return get_tracer().traced_operation(
        operation_name, kind, tags, parent_context=parent_context, **fields
    )


def async_traced_operation(
    operation_name: str,
    kind: SpanKind = SpanKind.CUSTOM,
    tags: Mapping[str, object] | None = None,
    *,
    parent_context: Context | trace.SpanContext | None = None,
    **fields: object,
) -> AbstractAsyncContextManager[Span]:
    """The async form of `traced_operation`, on the global tracer."""
    return get_tracer().async_traced_operation(
        operation_name, kind, tags, parent_context=parent_context, **fields
    )


def coerce_attribute(value: object) -> AttributeValue | None:
    """An OTel attribute value for `value`: primitives as is, enums by value, others as text.

    Returns:
        `None` for `None` (OTel drops such attributes anyway).
    """
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = list(value)
        for kind in (str, bool, int, float):
            if all(type(item) is kind for item in items):
                return items
        return [str(item) for item in items]
    return str(value)


def _attributes(values: Mapping[str, object]) -> dict[str, AttributeValue]:
    result: dict[str, AttributeValue] = {}
    for key, value in values.items():
        coerced = coerce_attribute(value)
        if coerced is not None:
            result[str(key)] = coerced
    return result
