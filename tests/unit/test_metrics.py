from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
    Sum,
)

from nons.observability.metrics import (
    DURATION_BUCKETS_S,
    MetricsCollector,
    MetricType,
    RuntimeMetrics,
    get_metrics_collector,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def points(metric: Metric) -> dict[frozenset[tuple[str, object]], float]:
    result: dict[frozenset[tuple[str, object]], float] = {}
    for point in metric.data.data_points:
        key = frozenset((point.attributes or {}).items())
        if isinstance(point, NumberDataPoint):
            result[key] = point.value
        elif isinstance(point, HistogramDataPoint):
            result[key] = point.sum
    return result


def test_counter_gauge_histogram_with_tags(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    collector = get_metrics_collector(provider)
    collector.record_counter("requests", tags={"route": "a"})
    collector.record_counter("requests", 2, tags={"route": "a"})
    collector.record_counter("requests", 5, tags={"route": "b"})
    collector.record_gauge("queue_depth", 7, tags={"queue": "q"})
    collector.record_gauge("queue_depth", 3, tags={"queue": "q"})
    collector.record_histogram("latency", 0.25, tags={"route": "a"}, unit="s")
    collector.record_histogram("latency", 0.75, tags={"route": "a"}, unit="s")

    metrics = collect(reader)
    assert isinstance(metrics["requests"].data, Sum)
    assert metrics["requests"].data.is_monotonic
    assert points(metrics["requests"]) == {
        frozenset({("route", "a")}): 3,
        frozenset({("route", "b")}): 5,
    }
    assert isinstance(metrics["queue_depth"].data, Gauge)
    assert points(metrics["queue_depth"]) == {frozenset({("queue", "q")}): 3}
    assert metrics["latency"].unit == "s"
    (hist,) = metrics["latency"].data.data_points
    assert isinstance(hist, HistogramDataPoint)
    assert (hist.count, hist.sum) == (2, 1.0)


def test_source_spellings_are_aliases(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    collector = MetricsCollector(provider)
    collector.increment_counter("calls", labels={"op": "x"}, component_type="node")
    collector.increment_counter("calls", 4, tags={"op": "x"}, component_type="node")
    collector.set_gauge("temp", 1.5)
    collector.record_timing("step", 12.0, labels={"op": "x"}, trace_id="dropped")
    collector.record_cost("spend", 0.02)
    collector.record_tokens("tokens", 42, labels={"dir": "in"})
    collector.record_metric("generic", 9, MetricType.COUNTER, labels={"k": "v"})

    metrics = collect(reader)
    assert points(metrics["calls"]) == {
        frozenset({("op", "x"), ("nons.component_type", "node")}): 5
    }
    assert points(metrics["temp"]) == {frozenset(): 1.5}
    assert metrics["step"].unit == "ms"
    assert points(metrics["step"]) == {frozenset({("op", "x")}): 12.0}
    assert metrics["spend"].unit == "USD"
    assert points(metrics["spend"]) == {frozenset(): 0.02}
    assert points(metrics["tokens"]) == {frozenset({("dir", "in")}): 42}
    assert points(metrics["generic"]) == {frozenset({("k", "v")}): 9}


def test_timed_operation_counts_outcome(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    collector = MetricsCollector(provider)
    with collector.timed_operation("op"):
        pass
    with pytest.raises(RuntimeError), collector.timed_operation("op"):
        raise RuntimeError
    metrics = collect(reader)
    assert points(metrics["op.success"]) == {frozenset(): 1}
    assert points(metrics["op.error"]) == {frozenset(): 1}
    (hist,) = metrics["op"].data.data_points
    assert isinstance(hist, HistogramDataPoint)
    assert hist.count == 2


def test_runtime_metrics(provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    runtime = RuntimeMetrics(provider)
    runtime.execution_finished("triage", "completed", 1.5, tokens_in=10, tokens_out=4, cost_usd=0.1)
    runtime.execution_finished("triage", "failed", 0.5)
    runtime.node_call_finished("triage", "n0", "completed", 0.2)
    runtime.retry("triage", "n0")
    runtime.failure("triage", "n0", "node_timeout")
    runtime.in_flight(1, "triage", "n0")
    runtime.in_flight(1, "triage", "n0")
    runtime.in_flight(-1, "triage", "n0")
    runtime.late_reply("triage")

    metrics = collect(reader)
    net = ("nons.network", "triage")
    node = ("nons.node_id", "n0")
    assert points(metrics["nons.executions"]) == {
        frozenset({net, ("nons.status", "completed")}): 1,
        frozenset({net, ("nons.status", "failed")}): 1,
    }
    assert points(metrics["nons.tokens"]) == {
        frozenset({net, ("gen_ai.token.type", "input")}): 10,
        frozenset({net, ("gen_ai.token.type", "output")}): 4,
    }
    assert points(metrics["nons.cost"]) == {frozenset({net}): 0.1}
    assert points(metrics["nons.node.calls"]) == {
        frozenset({net, node, ("nons.status", "completed")}): 1
    }
    assert points(metrics["nons.node.retries"]) == {frozenset({net, node}): 1}
    assert points(metrics["nons.node.failures"]) == {
        frozenset({net, node, ("error.type", "node_timeout")}): 1
    }
    in_flight = metrics["nons.node.in_flight"]
    assert isinstance(in_flight.data, Sum)
    assert not in_flight.data.is_monotonic
    assert points(in_flight) == {frozenset({net, node}): 1}
    assert points(metrics["nons.late_replies"]) == {frozenset({net}): 1}
    duration = metrics["nons.execution.duration"]
    assert duration.unit == "s"
    first = duration.data.data_points[0]
    assert isinstance(first, HistogramDataPoint)
    assert tuple(first.explicit_bounds) == DURATION_BUCKETS_S
    assert metrics["nons.node.duration"].unit == "s"


def test_global_collector_is_shared() -> None:
    collector = get_metrics_collector()
    assert collector is get_metrics_collector()
    collector.record_counter("nothing_installed", tags={"a": "b"})
    collector.record_gauge("nothing_installed_gauge", 1.0)
