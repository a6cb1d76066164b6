"""Metrics on the OpenTelemetry metrics API: the NoN docs' collector and the runtime's own.

`get_metrics_collector()` keeps the documented calls working (`record_counter`,
`record_gauge` with `tags=`, and the NoN source's `increment_counter`, `set_gauge`...)
while the values go to whatever `MeterProvider` is installed. `RuntimeMetrics` holds
the instruments the coordinator and actors update. With no provider installed, every
call lands on the API's no-op instruments. There is no point store here: query
metrics in the backend the exporter feeds.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import metrics

from nons.observability.autoconfigure import ensure_telemetry
from nons.observability.tracing import INSTRUMENTATION_NAME, coerce_attribute

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.metrics import Counter, Histogram, UpDownCounter
    from opentelemetry.metrics import _Gauge as Gauge
    from opentelemetry.util.types import AttributeValue

__all__ = (
    "DURATION_BUCKETS_S",
    "MetricType",
    "MetricsCollector",
    "RuntimeMetrics",
    "get_metrics_collector",
)

DURATION_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Histogram boundaries for durations in seconds: LLM calls take from ms to minutes."""

Labels = Mapping[str, object]
"""Metric attributes as callers pass them; values are coerced like span tags."""


class MetricType(enum.StrEnum):
    """Kinds of metric the NoN docs name (`record_metric(metric_type=...)`)."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    TIMER = "timer"
    COST = "cost"
    TOKEN = "token"


class MetricsCollector:
    """The documented metrics API, one OTel instrument per metric name.

    Instruments are created on first use and cached, so recording a value costs a
    dict lookup plus the instrument call. On the global provider, creating one first
    installs the providers the `OTEL_*` variables configure if the application has
    none (`ensure_telemetry`).
    """

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._meter = metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
        self._on_global_provider = meter_provider is None
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms: dict[str, Histogram] = {}

    def record_counter(
        self, name: str, value: float = 1, tags: Labels | None = None, unit: str = ""
    ) -> None:
        """Add `value` (not negative) to a monotonic counter."""
        counter = self._counters.get(name)
        if counter is None:
            self._ensure_telemetry()
            counter = self._counters[name] = self._meter.create_counter(name, unit=unit)
        counter.add(value, _attributes(tags))

    def record_gauge(
        self, name: str, value: float, tags: Labels | None = None, unit: str = ""
    ) -> None:
        """Set a gauge's current value (a synchronous OTel gauge)."""
        gauge = self._gauges.get(name)
        if gauge is None:
            self._ensure_telemetry()
            gauge = self._gauges[name] = self._meter.create_gauge(name, unit=unit)
        gauge.set(value, _attributes(tags))

    def record_histogram(
        self, name: str, value: float, tags: Labels | None = None, unit: str = ""
    ) -> None:
        """Record one observation in a histogram."""
        histogram = self._histograms.get(name)
        if histogram is None:
            self._ensure_telemetry()
            histogram = self._histograms[name] = self._meter.create_histogram(name, unit=unit)
        histogram.record(value, _attributes(tags))

    def record_metric(
        self,
        metric_name: str,
        value: float,
        metric_type: MetricType = MetricType.GAUGE,
        unit: str = "",
        labels: Labels | None = None,
        *,
        tags: Labels | None = None,
    ) -> None:
        """Record a value by `MetricType`, as the NoN source's generic method does."""
        attributes = _merge(labels, {"tags": tags})
        match metric_type:
            case MetricType.COUNTER | MetricType.COST | MetricType.TOKEN:
                self.record_counter(metric_name, value, attributes, unit)
            case MetricType.HISTOGRAM | MetricType.TIMER:
                self.record_histogram(metric_name, value, attributes, unit)
            case _:
                self.record_gauge(metric_name, value, attributes, unit)

    def increment_counter(
        self, name: str, value: float = 1, labels: Labels | None = None, **metadata: object
    ) -> None:
        """The NoN source's spelling of `record_counter` (`labels=`).

        `component_type` and `component_id` become attributes; other metadata is
        dropped so that per-call values (trace ids) never explode cardinality.
        """
        self.record_counter(name, value, _merge(labels, metadata))

    def set_gauge(
        self, name: str, value: float, labels: Labels | None = None, **metadata: object
    ) -> None:
        """The NoN source's spelling of `record_gauge`."""
        self.record_gauge(name, value, _merge(labels, metadata))

    def record_timing(
        self, name: str, duration_ms: float, labels: Labels | None = None, **metadata: object
    ) -> None:
        """A duration in milliseconds, into a histogram with unit `ms`."""
        self.record_histogram(name, duration_ms, _merge(labels, metadata), unit="ms")

    def record_cost(
        self, name: str, cost_usd: float, labels: Labels | None = None, **metadata: object
    ) -> None:
        """Money spent, into a counter with unit `USD`."""
        self.record_counter(name, cost_usd, _merge(labels, metadata), unit="USD")

    def record_tokens(
        self, name: str, token_count: int, labels: Labels | None = None, **metadata: object
    ) -> None:
        """Tokens used, into a counter with unit `{token}`."""
        self.record_counter(name, token_count, _merge(labels, metadata), unit="{token}")

    @contextmanager
    def timed_operation(self, metric_name: str, labels: Labels | None = None) -> Iterator[None]:
        """Time a block: a `ms` histogram plus a `<name>.success` or `<name>.error` counter."""
        start = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "success"
        finally:
            self.record_timing(metric_name, (time.perf_counter() - start) * 1000.0, labels)
            self.record_counter(f"{metric_name}.{outcome}", 1, labels)

    def _ensure_telemetry(self) -> None:
        if self._on_global_provider:
            ensure_telemetry()


class RuntimeMetrics:
    """The coordinator's and actors' instruments, created once per process or provider."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        if meter_provider is None:
            # The embedded runtime of `forward()` starts here: telemetry from OTEL_*.
            ensure_telemetry()
        meter = metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
        self.executions: Counter = meter.create_counter(
            "nons.executions", unit="{execution}", description="Executions by network and status."
        )
        self.node_calls: Counter = meter.create_counter(
            "nons.node.calls", unit="{call}", description="Node calls by node and status."
        )
        self.retries: Counter = meter.create_counter(
            "nons.node.retries", unit="{retry}", description="Node calls retried."
        )
        self.failures: Counter = meter.create_counter(
            "nons.node.failures", unit="{failure}", description="Failed node calls by error type."
        )
        self.execution_duration: Histogram = meter.create_histogram(
            "nons.execution.duration",
            unit="s",
            description="Wall time of whole executions.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self.node_duration: Histogram = meter.create_histogram(
            "nons.node.duration",
            unit="s",
            description="Wall time of node calls, as the coordinator sees them.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self.tokens: Counter = meter.create_counter(
            "nons.tokens", unit="{token}", description="Model tokens by gen_ai.token.type."
        )
        self.cost: Counter = meter.create_counter(
            "nons.cost", unit="USD", description="Model spend in US dollars."
        )
        self.in_flight_calls: UpDownCounter = meter.create_up_down_counter(
            "nons.node.in_flight", unit="{call}", description="Node calls an actor is running."
        )
        self.late_replies: Counter = meter.create_counter(
            "nons.late_replies", unit="{reply}", description="Replies after their deadline."
        )

    def execution_finished(
        self,
        network: str,
        status: str,
        duration_s: float,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Count an execution with its final status, duration, tokens and cost."""
        by_network: dict[str, AttributeValue] = {"nons.network": network}
        self.executions.add(1, {"nons.network": network, "nons.status": status})
        self.execution_duration.record(duration_s, {"nons.network": network, "nons.status": status})
        if tokens_in:
            self.tokens.add(tokens_in, {**by_network, "gen_ai.token.type": "input"})
        if tokens_out:
            self.tokens.add(tokens_out, {**by_network, "gen_ai.token.type": "output"})
        if cost_usd:
            self.cost.add(cost_usd, by_network)

    def node_call_finished(
        self, network: str, node_id: str, status: str, duration_s: float
    ) -> None:
        """Count one node call (one attempt) and its duration."""
        attributes = {"nons.network": network, "nons.node_id": node_id, "nons.status": status}
        self.node_calls.add(1, attributes)
        self.node_duration.record(duration_s, attributes)

    def retry(self, network: str, node_id: str) -> None:
        """Count a retry of a node call."""
        self.retries.add(1, {"nons.network": network, "nons.node_id": node_id})

    def failure(self, network: str, node_id: str, error_type: str) -> None:
        """Count a node call that failed, by wire error type."""
        self.failures.add(
            1, {"nons.network": network, "nons.node_id": node_id, "error.type": error_type}
        )

    def in_flight(self, delta: int, network: str, node_id: str) -> None:
        """Move the in-flight gauge of an actor's node by `delta` (+1 on start, -1 on end)."""
        self.in_flight_calls.add(delta, {"nons.network": network, "nons.node_id": node_id})

    def late_reply(self, network: str) -> None:
        """Count a node reply that arrived after the coordinator stopped waiting."""
        self.late_replies.add(1, {"nons.network": network})


_global_collector: MetricsCollector | None = None


def get_metrics_collector(
    meter_provider: metrics.MeterProvider | None = None,
) -> MetricsCollector:
    """The collector of the NoN docs: on the global provider unless one is given."""
    global _global_collector
    if meter_provider is not None:
        return MetricsCollector(meter_provider)
    if _global_collector is None:
        _global_collector = MetricsCollector()
    return _global_collector


_METADATA_ATTRIBUTES = {
    "component_type": "nons.component_type",
    "component_id": "nons.component_id",
}
"""Keyword metadata of the NoN source kept as attributes (bounded cardinality)."""


def _merge(labels: Labels | None, extra: Mapping[str, object] | None) -> Labels | None:
    if not extra:
        return labels
    merged = dict(labels or {})
    tags = extra.get("tags")
    if isinstance(tags, Mapping):
        merged.update(tags)
    for key, attribute in _METADATA_ATTRIBUTES.items():
        value = extra.get(key)
        if value:
            merged[attribute] = value
    return merged


def _attributes(tags: Labels | None) -> dict[str, AttributeValue] | None:
    if not tags:
        return None
    result: dict[str, AttributeValue] = {}
    for key, value in tags.items():
        coerced = coerce_attribute(value)
        if coerced is not None:
            result[key] = coerced
    return result
