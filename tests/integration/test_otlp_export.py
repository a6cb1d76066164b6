from __future__ import annotations

import subprocess
import sys
import textwrap

from opentelemetry import metrics, trace

from nons.observability.setup import configure_telemetry
from tests.support.otlp_receiver import OtlpReceiver, SpanRecord, span_tree
from tests.support.processes import nons_env

EMIT_SPANS = textwrap.dedent(
    """
    import os
    from nons.observability.setup import configure_telemetry
    from nons.observability.tracing import SpanKind, get_tracer
    from nons.observability.metrics import get_metrics_collector

    telemetry = configure_telemetry("nons-default", os.environ)
    assert telemetry.installed
    tracer = get_tracer()
    with tracer.start_span("execution triage", SpanKind.NETWORK, network="triage"):
        with tracer.start_span("layer 0", SpanKind.LAYER, layer_index=0) as layer:
            layer.add_log({"event": "fan_out", "nodes": 2})
            tracer.start_span("node n0", SpanKind.NODE).finish()
            try:
                with tracer.start_span("node n1", SpanKind.NODE):
                    raise ValueError("boom")
            except ValueError:
                pass
    get_metrics_collector().record_counter("test.requests", 3, tags={"route": "a"})
    telemetry.shutdown()
    telemetry.shutdown()
    print("done")
    """
)


def child_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in nons_env().items() if not key.startswith("OTEL_")}
    env.update(overrides)
    return env


def run_child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_spans_and_metrics_reach_an_otlp_http_receiver() -> None:
    with OtlpReceiver() as receiver:
        result = run_child(
            EMIT_SPANS,
            child_env(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_SERVICE_NAME": "x",
                }
            ),
        )
        assert "done" in result.stdout
        spans = receiver.wait_for_spans(lambda found: len(found) >= 4, timeout=10)
        records = receiver.wait_for_metrics(
            lambda found: any(m.name == "test.requests" for m in found), timeout=10
        )

    assert span_tree(spans, attributes=("nons.span_kind",)) == textwrap.dedent(
        """\
        execution triage [nons.span_kind=network]
          layer 0 [nons.span_kind=layer]
            node n0 [nons.span_kind=node]
            node n1 [nons.span_kind=node]"""
    )
    assert {span.service_name for span in spans} == {"x"}
    assert len({span.trace_id for span in spans}) == 1
    by_name: dict[str, SpanRecord] = {span.name: span for span in spans}
    assert by_name["execution triage"].attributes["nons.network"] == "triage"
    assert by_name["node n1"].status_code == "ERROR"
    assert by_name["node n1"].attributes["error.type"] == "ValueError"
    assert by_name["node n0"].status_code == "OK"
    assert by_name["layer 0"].events == [("log", {"event": "fan_out", "nodes": 2})]

    (metric,) = [m for m in records if m.name == "test.requests"]
    assert metric.service_name == "x"
    assert metric.points == [({"route": "a"}, 3.0)]


def test_console_exporter_prints_spans() -> None:
    code = textwrap.dedent(
        """
        import os
        from nons.observability.setup import configure_telemetry
        from nons.observability.tracing import get_tracer

        with configure_telemetry("nons-actor", os.environ) as telemetry:
            assert telemetry.tracer_provider is not None
            assert telemetry.meter_provider is None
            get_tracer().start_span("printed-span").finish()
        """
    )
    result = run_child(
        code, child_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"})
    )
    assert '"name": "printed-span"' in result.stdout
    assert '"service.name": "nons-actor"' in result.stdout


def test_nothing_configured_installs_nothing_in_a_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        from opentelemetry import metrics, trace
        from nons.observability.setup import configure_telemetry

        telemetry = configure_telemetry("nons-coordinator", os.environ)
        assert not telemetry.installed
        assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
        assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
        assert not any(name.startswith("opentelemetry.sdk") for name in sys.modules), sorted(
            name for name in sys.modules if name.startswith("opentelemetry.sdk")
        )
        telemetry.shutdown()
        print("nothing")
        """
    )
    assert "nothing" in run_child(code, child_env({})).stdout


def test_nothing_configured_leaves_global_providers_alone() -> None:
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    for environ in (
        {},
        {"OTEL_SERVICE_NAME": "x"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
        },
    ):
        with configure_telemetry("nons-coordinator", environ) as telemetry:
            assert not telemetry.installed, environ
        assert trace.get_tracer_provider() is tracer_provider
        assert metrics.get_meter_provider() is meter_provider
