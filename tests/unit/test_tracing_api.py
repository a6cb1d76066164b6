from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from nons.core.errors import NodeTimeoutError
from nons.observability.tracing import (
    NonsTracer,
    SpanKind,
    SpanStatus,
    coerce_attribute,
    get_tracer,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def tracer(provider: TracerProvider) -> NonsTracer:
    return get_tracer(provider)


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_docs_style_custom_span_with_child(
    tracer: NonsTracer, exporter: InMemorySpanExporter
) -> None:
    span = tracer.start_span(
        "custom_business_logic",
        SpanKind.CUSTOM,
        tags={"network_id": "n1", "priority": SpanStatus.RUNNING, "obj": object()},
        component_type="network",
        layer_index=2,
    )
    span.add_tag("threshold", 0.5)
    span.add_tags({"items": [1, 2], "mixed": [1, "a"]})
    child = tracer.start_span("inner", SpanKind.LLM_CALL)
    child.finish()
    span.add_log({"event": "validation_passed", "score": 0.9})
    span.add_log("checkpoint", {"step": 3})
    span.finish(status=SpanStatus.SUCCESS)

    spans = by_name(exporter)
    outer, inner = spans["custom_business_logic"], spans["inner"]
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id
    assert inner.kind is trace.SpanKind.CLIENT
    assert outer.kind is trace.SpanKind.INTERNAL
    attrs = dict(outer.attributes or {})
    assert attrs["network_id"] == "n1"
    assert attrs["priority"] == "running"
    assert str(attrs["obj"]).startswith("<object object")
    assert attrs["nons.component_type"] == "network"
    assert attrs["nons.layer_index"] == 2
    assert attrs["nons.span_kind"] == "custom"
    assert attrs["nons.status"] == "success"
    assert attrs["threshold"] == 0.5
    assert tuple(attrs["items"]) == (1, 2)  # type: ignore[arg-type]
    assert tuple(attrs["mixed"]) == ("1", "a")  # type: ignore[arg-type]
    events = [(event.name, dict(event.attributes or {})) for event in outer.events]
    assert events == [
        ("log", {"event": "validation_passed", "score": 0.9}),
        ("checkpoint", {"step": 3}),
    ]
    assert outer.status.status_code is StatusCode.OK
    assert span.trace_id == format(outer.context.trace_id, "032x")
    assert span.span_id == format(outer.context.span_id, "016x")


def test_finish_restores_the_previous_current_span(tracer: NonsTracer) -> None:
    before = trace.get_current_span()
    span = tracer.start_span("x")
    assert trace.get_current_span() is span.otel_span
    span.finish()
    assert trace.get_current_span() is before


def test_finish_with_error_status_marks_span_failed(
    tracer: NonsTracer, exporter: InMemorySpanExporter
) -> None:
    span = tracer.start_span("fails", SpanKind.NODE)
    span.finish(status=SpanStatus.ERROR)
    span.finish(status=SpanStatus.SUCCESS)  # second finish is ignored
    finished = by_name(exporter)["fails"]
    assert finished.status.status_code is StatusCode.ERROR
    assert dict(finished.attributes or {})["nons.status"] == "error"
    assert span.status is SpanStatus.ERROR
    assert len(exporter.get_finished_spans()) == 1


def test_finish_span_and_set_error(tracer: NonsTracer, exporter: InMemorySpanExporter) -> None:
    span = tracer.start_span("node", SpanKind.NODE)
    span.set_error(NodeTimeoutError("node n1 timed out"))
    tracer.finish_span(span)
    finished = by_name(exporter)["node"]
    assert finished.status.status_code is StatusCode.ERROR
    assert dict(finished.attributes or {})["error.type"] == "node_timeout"
    assert [event.name for event in finished.events] == ["exception"]


async def test_async_context_manager_records_exception(
    tracer: NonsTracer, exporter: InMemorySpanExporter
) -> None:
    current: list[trace.Span] = []

    async def operation() -> None:
        async with tracer.start_span("async_op", SpanKind.OPERATOR) as span:
            current.append(trace.get_current_span())
            assert current[0] is span.otel_span
            raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await operation()
    assert len(current) == 1
    finished = by_name(exporter)["async_op"]
    assert finished.status.status_code is StatusCode.ERROR
    attrs = dict(finished.attributes or {})
    assert attrs["error.type"] == "ValueError"
    assert attrs["nons.status"] == "error"
    exception_event = finished.events[0]
    assert exception_event.name == "exception"
    assert dict(exception_event.attributes or {})["exception.message"] == "bad input"


async def test_async_traced_operation_nests_and_succeeds(
    tracer: NonsTracer, exporter: InMemorySpanExporter
) -> None:
    async with tracer.async_traced_operation("network", SpanKind.NETWORK) as outer:
        with tracer.traced_operation("layer", SpanKind.LAYER, layer_index=0):
            pass
    spans = by_name(exporter)
    assert spans["layer"].parent is not None
    assert spans["layer"].parent.span_id == spans["network"].context.span_id
    assert spans["network"].status.status_code is StatusCode.OK
    assert outer.status is SpanStatus.SUCCESS


def test_timeout_inside_context_manager_is_timeout_status(
    tracer: NonsTracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(TimeoutError), tracer.traced_operation("slow") as span:
        raise TimeoutError
    assert span.status is SpanStatus.TIMEOUT
    assert by_name(exporter)["slow"].status.status_code is StatusCode.ERROR


def test_explicit_parent_span_context(tracer: NonsTracer, exporter: InMemorySpanExporter) -> None:
    parent = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    with tracer.start_span("child", parent_context=parent) as span:
        assert span.trace_id == "0af7651916cd43dd8448eb211c80319c"
    finished = by_name(exporter)["child"]
    assert finished.parent is not None
    assert finished.parent.span_id == 0xB7AD6B7169203331


def test_global_tracer_is_shared_and_usable() -> None:
    tracer = get_tracer()
    assert tracer is get_tracer()
    with tracer.start_span("on_the_global_provider") as span:
        span.add_log({"a": 1})
        span.add_tag("k", "v")
    assert span.status is SpanStatus.SUCCESS
    assert span.is_finished


def test_coerce_attribute() -> None:
    assert coerce_attribute(None) is None
    assert coerce_attribute(SpanKind.NODE) == "node"
    assert coerce_attribute(True) is True
    assert coerce_attribute({"a": 1}) == "{'a': 1}"
    assert coerce_attribute(("x", "y")) == ["x", "y"]
