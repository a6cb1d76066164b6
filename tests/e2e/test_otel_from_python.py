"""A Python program exports through the standard `OTEL_*` variables with no setup code.

Issue 16, item 4: `net.forward()`, the docs' custom spans and the metrics collector
install OpenTelemetry from the environment on first use when the application has
installed no provider of its own, flush at exit, and never replace one it has.
Each user script runs as a real subprocess against a local OTLP/HTTP receiver.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.otlp_receiver import OtlpReceiver, span_tree
from tests.support.processes import nons_env

RUN_TIMEOUT_S = 60.0
"""Bound on one user script (about two seconds on the mock)."""

FORWARD_SCRIPT = textwrap.dedent(
    """
    import asyncio
    from nons import NoN, Node
    from nons.observability.metrics import get_metrics_collector
    from nons.observability.tracing import traced_operation

    net = NoN.from_operators(["transform", Node("generate") * 2], name="otelpy")

    async def main() -> None:
        with traced_operation("user request") as span:
            result = await net.forward("the app crashes when I upload a photo")
        collector = get_metrics_collector()
        collector.record_counter("app.requests", 2, tags={"route": "upload"})
        collector.record_gauge("app.queue_depth", 7)
        print("trace", result.metadata.trace_id, span.trace_id)

    asyncio.run(main())
    """
)
"""The docs' program: a custom span around `forward()`, then custom metrics."""

API_ONLY_SCRIPT = textwrap.dedent(
    """
    from nons.observability.metrics import get_metrics_collector
    from nons.observability.tracing import get_tracer

    tracer = get_tracer()
    span = tracer.start_span("custom work")
    tracer.start_span("custom child").finish()
    span.finish()
    get_metrics_collector().record_counter("app.jobs", 3)
    print("done")
    """
)
"""No network at all: `get_tracer()` and `get_metrics_collector()` alone."""

APP_PROVIDERS_SCRIPT = textwrap.dedent(
    """
    import asyncio
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from nons import NoN
    from nons.observability.metrics import get_metrics_collector
    from nons.observability.tracing import get_tracer

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)

    async def main() -> None:
        with get_tracer().start_span("app span"):
            await NoN.from_operators(["transform"], name="appprov").forward("hi")
        get_metrics_collector().record_counter("app.kept", 1)

    asyncio.run(main())
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider
    names = {span.name for span in exporter.get_finished_spans()}
    assert {"app span", "process nons.exec.appprov"} <= names, names
    data = reader.get_metrics_data()
    recorded = {
        metric.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"app.kept", "nons.executions"} <= recorded, recorded
    print("kept")
    """
)
"""An application with providers of its own, and `OTEL_*` pointing elsewhere."""


def run_script(code: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in nons_env().items()
        if not key.startswith(("OTEL_", "ANTHROPIC_", "OPENAI_", "NONS_"))
    }
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "otel-from-python",
            # Far longer than the run: metrics arrive only through the flush at exit.
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        }
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def metric_points(receiver: OtlpReceiver, name: str) -> list[float]:
    return [value for m in receiver.metrics if m.name == name for _, value in m.points]


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_forward_custom_spans_and_metrics_export_from_otel_variables() -> None:
    with OtlpReceiver() as receiver:
        completed = run_script(FORWARD_SCRIPT, receiver.endpoint)
        line = next(text for text in completed.stdout.splitlines() if text.startswith("trace "))
        _, trace_id, user_trace_id = line.split()
        spans = receiver.wait_for_spans(
            lambda found: any(s.name == "process nons.exec.otelpy" for s in found), timeout=10
        )
        receiver.wait_for_metrics(
            lambda found: any(m.name == "app.queue_depth" for m in found), timeout=10
        )
        requests = metric_points(receiver, "app.requests")
        depth = metric_points(receiver, "app.queue_depth")
        executions = metric_points(receiver, "nons.executions")
    assert trace_id == user_trace_id
    assert {span.trace_id for span in spans} == {trace_id}
    assert {span.service_name for span in spans} == {"otel-from-python"}
    assert span_tree(spans) == textwrap.dedent(
        """\
        user request
          send nons.exec.otelpy
            process nons.exec.otelpy
              layer 0
                send nons.node.otelpy.l0-transform
                  process nons.node.otelpy.l0-transform
                    chat mock-1
              layer 1
                send nons.node.otelpy.l1-generate-0
                  process nons.node.otelpy.l1-generate-0
                    chat mock-1
                send nons.node.otelpy.l1-generate-1
                  process nons.node.otelpy.l1-generate-1
                    chat mock-1"""
    )
    assert (requests, depth, executions) == ([2.0], [7.0], [1.0])


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_tracer_and_collector_alone_export_from_otel_variables() -> None:
    with OtlpReceiver() as receiver:
        run_script(API_ONLY_SCRIPT, receiver.endpoint)
        spans = receiver.wait_for_spans(lambda found: len(found) >= 2, timeout=10)
        receiver.wait_for_metrics(lambda found: any(m.name == "app.jobs" for m in found))
        jobs = metric_points(receiver, "app.jobs")
    assert span_tree(spans) == "custom work\n  custom child"
    assert jobs == [3.0]


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_providers_the_application_installed_are_kept() -> None:
    with OtlpReceiver() as receiver:
        completed = run_script(APP_PROVIDERS_SCRIPT, receiver.endpoint)
        # The child has exited: everything it would ever send has been received.
        spans, metrics = receiver.spans, receiver.metrics
    assert "kept" in completed.stdout
    assert (spans, metrics) == ([], [])
