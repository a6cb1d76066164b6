"""W3C trace context over NATS headers, so one trace spans coordinator and actors.

Every NATS message carries `traceparent` (and `tracestate` when set). Injection goes
through the global OpenTelemetry propagator (W3C trace context and baggage unless
`OTEL_PROPAGATORS` says otherwise), so a user's propagator choice is honoured.
Extraction reads header names case-insensitively: nats-py keeps the case a client
used, and a Go or CLI client may well send `Traceparent`.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

__all__ = (
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "HeaderGetter",
    "HeaderSetter",
    "extract_context",
    "inject_headers",
    "span_id_hex",
    "trace_id_hex",
)

TRACEPARENT_HEADER = "traceparent"
"""W3C trace context header carrying trace id, parent span id and flags."""

TRACESTATE_HEADER = "tracestate"
"""W3C vendor-specific trace state header."""

_EMPTY_CONTEXT = Context()
"""Returned for messages without headers (an empty, immutable OTel context)."""


class HeaderSetter(Setter[dict[str, str]]):
    """Writes propagation fields into a NATS header dict."""

    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        """Set one header; NATS headers are plain strings."""
        carrier[key] = value


class HeaderGetter(Getter[Mapping[str, str]]):
    """Reads propagation fields from NATS headers whatever the case of their names."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        """The header's value as a one-item list, or `None` when absent.

        The exact (lower-case) name is tried first: that is what our own code and
        most clients send, and it keeps the common case a single dict lookup.
        """
        value = carrier.get(key)
        if value is None:
            for name, candidate in carrier.items():
                if name.lower() == key:
                    value = candidate
                    break
            else:
                return None
        return [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        """All header names, lower-cased as the propagators expect."""
        return [name.lower() for name in carrier]


_SETTER = HeaderSetter()
_GETTER = HeaderGetter()


def inject_headers(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add the trace context of `context` (default: the current one) to `headers`.

    Args:
        headers: the outgoing message's headers, changed in place.
        context: the context to propagate; the current context when `None`.

    Returns:
        `headers`, for chaining into a publish call.
    """
    propagate.inject(headers, context=context, setter=_SETTER)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """The remote trace context carried by an incoming message's headers.

    Missing or malformed `traceparent` headers give a context without a parent,
    so a span started in it begins a new trace instead of failing.
    """
    if not headers:
        return _EMPTY_CONTEXT
    return propagate.extract(headers, context=_EMPTY_CONTEXT, getter=_GETTER)


def _span_context(
    source: trace.Span | trace.SpanContext | Context | None,
) -> trace.SpanContext:
    if isinstance(source, trace.SpanContext):
        return source
    if isinstance(source, trace.Span):
        return source.get_span_context()
    return trace.get_current_span(source).get_span_context()


def trace_id_hex(source: trace.Span | trace.SpanContext | Context | None = None) -> str | None:
    """The 32-hex-digit trace id of a span, span context or context (default: current).

    Returns:
        The id, or `None` when there is no valid span (tracing off, no parent).
    """
    span_context = _span_context(source)
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def span_id_hex(source: trace.Span | trace.SpanContext | Context | None = None) -> str | None:
    """The 16-hex-digit span id of a span, span context or context (default: current).

    Returns:
        The id, or `None` when there is no valid span.
    """
    span_context = _span_context(source)
    if not span_context.is_valid:
        return None
    return format(span_context.span_id, "016x")
