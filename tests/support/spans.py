"""In-memory span capture and the indented span tree tests assert on (STYLE: trees, not lists)."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def capturing_provider(service: str | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A private tracer provider whose spans land in the returned exporter."""
    exporter = InMemorySpanExporter()
    resource = Resource.create({"service.name": service}) if service else None
    provider = TracerProvider(resource=resource) if resource else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def span_tree(spans: list[ReadableSpan]) -> str:
    """Span names indented under their parents, siblings in start order."""
    index = {span.context.span_id: span for span in spans}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in index else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: (s.start_time or 0, s.name)):
            lines.append("  " * depth + span.name)
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
