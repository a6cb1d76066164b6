from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import sampling

from nons.core.errors import ConfigurationError
from nons.observability.setup import Telemetry, TracingSettings, _sampler


def test_defaults_follow_the_specification() -> None:
    settings = TracingSettings.from_env({})
    assert settings.traces_protocol == "grpc"
    assert settings.traces_endpoint is None
    assert settings.service_name is None
    assert settings.sampler == "parentbased_always_on"
    assert not settings.tracing_enabled
    assert not settings.metrics_enabled


def test_grpc_uses_the_base_endpoint_as_is() -> None:
    settings = TracingSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"})
    assert settings.traces_endpoint == "http://jaeger:4317"
    assert settings.metrics_endpoint == "http://jaeger:4317"
    assert settings.tracing_enabled
    assert settings.metrics_enabled


def test_http_appends_signal_paths_and_signal_endpoints_win() -> None:
    settings = TracingSettings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9090/otlp",
            "OTEL_SERVICE_NAME": "svc",
        }
    )
    assert settings.traces_protocol == "http/protobuf"
    assert settings.traces_endpoint == "http://jaeger:4318/v1/traces"
    assert settings.metrics_endpoint == "http://metrics:9090/otlp"
    assert settings.service_name == "svc"


def test_traces_only_endpoint_enables_tracing_only() -> None:
    settings = TracingSettings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://j:4317"})
    assert settings.tracing_enabled
    assert not settings.metrics_enabled


def test_disabled_and_none_switch_everything_off() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://j:4317"}
    assert not TracingSettings.from_env({**base, "OTEL_SDK_DISABLED": "true"}).tracing_enabled
    off = TracingSettings.from_env({**base, "OTEL_TRACES_EXPORTER": "none"})
    assert not off.tracing_enabled
    assert off.metrics_enabled
    console = TracingSettings.from_env({"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert console.tracing_enabled
    assert console.traces_exporters == ("console", "otlp")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "half"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name) as caught:
        TracingSettings.from_env({name: value})
    assert value not in str(caught.value)


def test_samplers() -> None:
    ratio = _sampler(
        TracingSettings.from_env(
            {"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
        )
    )
    assert isinstance(ratio, sampling.TraceIdRatioBased)
    assert ratio.rate == 0.25
    assert _sampler(TracingSettings.from_env({})) is sampling.DEFAULT_ON
    off = TracingSettings.from_env({"OTEL_TRACES_SAMPLER": "always_off"})
    assert _sampler(off) is sampling.ALWAYS_OFF


def test_empty_telemetry_shutdown_is_idempotent() -> None:
    telemetry = Telemetry()
    assert not telemetry.installed
    telemetry.force_flush()
    telemetry.shutdown()
    telemetry.shutdown()
