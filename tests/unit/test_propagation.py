from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from nons.observability.propagation import (
    extract_context,
    inject_headers,
    span_id_hex,
    trace_id_hex,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    yield provider.get_tracer("test")
    provider.shutdown()


def test_round_trip_keeps_trace_and_parent(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("publish") as span:
        headers = inject_headers({"Nons-Execution-Id": "e1"})
    assert headers["Nons-Execution-Id"] == "e1"
    assert headers["traceparent"].startswith(f"00-{trace_id_hex(span)}-{span_id_hex(span)}-")

    context = extract_context(headers)
    assert trace_id_hex(context) == trace_id_hex(span)
    assert span_id_hex(context) == span_id_hex(span)
    child = tracer.start_span("process", context=context)
    child.end()
    assert isinstance(child, ReadableSpan)
    assert trace_id_hex(child) == trace_id_hex(span)
    assert child.parent is not None
    assert child.parent.span_id == span.get_span_context().span_id


def test_explicit_context_is_injected(tracer: trace.Tracer) -> None:
    span = tracer.start_span("detached")
    headers = inject_headers({}, trace.set_span_in_context(span))
    span.end()
    assert trace_id_hex(extract_context(headers)) == trace_id_hex(span)


def test_tracestate_round_trips(tracer: trace.Tracer) -> None:
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=value",
    }
    with tracer.start_as_current_span("child", context=extract_context(headers)):
        out = inject_headers({})
    assert out["tracestate"] == "vendor=value"
    assert out["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")


@pytest.mark.parametrize("name", ["traceparent", "Traceparent", "TRACEPARENT", "TraceParent"])
def test_header_names_are_read_case_insensitively(name: str) -> None:
    headers = {name: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    context = extract_context(headers)
    assert trace_id_hex(context) == "0af7651916cd43dd8448eb211c80319c"
    assert span_id_hex(context) == "b7ad6b7169203331"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"traceparent": "garbage"},
        {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"},
        {"Nons-Execution-Id": "e1"},
    ],
)
def test_missing_or_invalid_header_gives_no_parent(
    headers: dict[str, str] | None, tracer: trace.Tracer
) -> None:
    context = extract_context(headers)
    assert trace_id_hex(context) is None
    assert span_id_hex(context) is None
    span = tracer.start_span("root", context=context)
    span.end()
    assert isinstance(span, ReadableSpan)
    assert span.parent is None
    assert trace_id_hex(span) is not None


def test_no_current_span_injects_nothing() -> None:
    assert inject_headers({"a": "b"}) == {"a": "b"}
    assert trace_id_hex() is None
