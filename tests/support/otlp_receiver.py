"""A local OTLP/HTTP receiver: what Jaeger would get, decoded for assertions.

It listens on 127.0.0.1 (a free port), accepts `POST /v1/traces` and `/v1/metrics`
in protobuf, and keeps spans and metric points as plain records. Use it as a
context manager; `span_tree` renders spans as an indented tree to assert on.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Self, TypeVar

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

__all__ = ("MetricRecord", "OtlpReceiver", "SpanRecord", "span_tree")

T = TypeVar("T")

Value = str | bool | int | float | bytes | list["Value"] | dict[str, "Value"] | None

SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True, kw_only=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Value]
    status_code: str
    status_message: str
    events: list[tuple[str, dict[str, Value]]]
    service_name: str
    start_time_unix_nano: int
    end_time_unix_nano: int


@dataclass(frozen=True, kw_only=True)
class MetricRecord:
    name: str
    unit: str
    kind: str
    points: list[tuple[dict[str, Value], float]]
    """(attributes, value) per data point; histograms give their sum."""
    service_name: str


@dataclass
class _Store:
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    spans: list[SpanRecord] = field(default_factory=list)
    metrics: list[MetricRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class OtlpReceiver:
    """An OTLP/HTTP endpoint in a background thread.

    Attributes:
        endpoint: base URL for `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://127.0.0.1:PORT`).
    """

    def __init__(self) -> None:
        self._store = _Store()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    def start(self) -> None:
        store = self._store

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = _decode_body(
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                    self.headers.get("Content-Encoding", ""),
                )
                if self.path == "/v1/traces":
                    spans = _spans(body)
                    response = ExportTraceServiceResponse().SerializeToString()
                    with store.changed:
                        store.spans.extend(spans)
                        store.changed.notify_all()
                elif self.path == "/v1/metrics":
                    metric_records = _metrics(body)
                    response = ExportMetricsServiceResponse().SerializeToString()
                    with store.changed:
                        store.metrics.extend(metric_records)
                        store.changed.notify_all()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(response)))
                self.end_headers()
                self.wfile.write(response)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def spans(self) -> list[SpanRecord]:
        with self._store.lock:
            return list(self._store.spans)

    @property
    def metrics(self) -> list[MetricRecord]:
        with self._store.lock:
            return list(self._store.metrics)

    def wait_for_spans(
        self, predicate: Callable[[list[SpanRecord]], bool], timeout: float = 10.0
    ) -> list[SpanRecord]:
        """All spans received once `predicate(spans)` holds; AssertionError after `timeout`."""
        return self._wait(lambda: self._store.spans, predicate, timeout, "spans")

    def wait_for_metrics(
        self, predicate: Callable[[list[MetricRecord]], bool], timeout: float = 10.0
    ) -> list[MetricRecord]:
        """All metric records once `predicate(records)` holds; AssertionError after `timeout`."""
        return self._wait(lambda: self._store.metrics, predicate, timeout, "metrics")

    def _wait(
        self,
        items: Callable[[], list[T]],
        predicate: Callable[[list[T]], bool],
        timeout: float,
        what: str,
    ) -> list[T]:
        deadline = time.monotonic() + timeout
        with self._store.changed:
            while True:
                snapshot = list(items())
                if predicate(snapshot):
                    return snapshot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching {what} within {timeout}s: {snapshot!r}")
                self._store.changed.wait(remaining)


def span_tree(records: Sequence[SpanRecord], attributes: Sequence[str] = ()) -> str:
    """Spans as an indented tree (two spaces per level), children by start time.

    Each line is the span name, then `[key=value ...]` for the requested attributes
    that are present. Spans whose parent is not among `records` are roots.
    """
    by_id = {record.span_id: record for record in records}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for record in records:
        if record.parent_span_id and record.parent_span_id in by_id:
            children.setdefault(record.parent_span_id, []).append(record)
        else:
            roots.append(record)
    lines: list[str] = []

    def render(record: SpanRecord, depth: int) -> None:
        shown = [
            f"{key}={record.attributes[key]!s}" for key in attributes if key in record.attributes
        ]
        suffix = f" [{' '.join(shown)}]" if shown else ""
        lines.append(f"{'  ' * depth}{record.name}{suffix}")
        for child in sorted(children.get(record.span_id, []), key=_start):
            render(child, depth + 1)

    for root in sorted(roots, key=_start):
        render(root, 0)
    return "\n".join(lines)


def _start(record: SpanRecord) -> tuple[int, str]:
    return (record.start_time_unix_nano, record.name)


def _decode_body(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def _value(value: AnyValue) -> Value:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    result: Value = getattr(value, which)
    return result


def _attributes(items: Sequence[KeyValue]) -> dict[str, Value]:
    return {item.key: _value(item.value) for item in items}


def _service_name(resource: Resource) -> str:
    name = _attributes(resource.attributes).get("service.name")
    return name if isinstance(name, str) else ""


def _spans(body: bytes) -> list[SpanRecord]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    records: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        service = _service_name(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=SPAN_KINDS.get(span.kind, str(span.kind)),
                        attributes=_attributes(span.attributes),
                        status_code=STATUS_CODES.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        events=[
                            (event.name, _attributes(event.attributes)) for event in span.events
                        ],
                        service_name=service,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                    )
                )
    return records


def _metrics(body: bytes) -> list[MetricRecord]:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    records: list[MetricRecord] = []
    for resource_metrics in request.resource_metrics:
        service = _service_name(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data") or ""
                points: list[tuple[dict[str, Value], float]] = []
                if kind in ("sum", "gauge"):
                    data = metric.sum if kind == "sum" else metric.gauge
                    for point in data.data_points:
                        number = point.as_double if point.HasField("as_double") else point.as_int
                        points.append((_attributes(point.attributes), float(number)))
                elif kind == "histogram":
                    for hist_point in metric.histogram.data_points:
                        points.append((_attributes(hist_point.attributes), hist_point.sum))
                records.append(
                    MetricRecord(
                        name=metric.name,
                        unit=metric.unit,
                        kind=kind,
                        points=points,
                        service_name=service,
                    )
                )
    return records
