"""Install OpenTelemetry tracing and metrics from the standard `OTEL_*` variables.

Nothing is installed unless an exporter is configured: with no OTLP endpoint (and no
`OTEL_TRACES_EXPORTER=console`) the API's no-op providers stay in place and tracing
costs next to nothing. Only the standard variables are read, the way the OTel SDK
auto-configuration reads them, so a deployment points spans at Jaeger with the
variables it already knows. Endpoints and samplers are built from the mapping given
to `from_env` (not from `os.environ`), so what a caller passes is what is used;
exporter details this module does not handle (headers, certificates, compression,
timeouts) are still read by the exporters themselves.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Literal, Self

import msgspec
from opentelemetry import metrics, trace

from nons.core.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = ("OtlpProtocol", "Telemetry", "TracingSettings", "configure_telemetry")

OtlpProtocol = Literal["grpc", "http/protobuf"]
"""OTLP transports this module can build an exporter for."""

_TRUE = frozenset({"true", "1", "yes", "on"})
"""Spellings of a true boolean variable (the spec only requires `true`)."""

_SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
"""Sampler names of the specification."""

_SIGNAL_PATHS = {"traces": "v1/traces", "metrics": "v1/metrics"}
"""Paths an OTLP/HTTP exporter appends to `OTEL_EXPORTER_OTLP_ENDPOINT`."""


class TracingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What `configure_telemetry` installs, as read from the `OTEL_*` variables."""

    disabled: bool = False
    """`OTEL_SDK_DISABLED=true`: install nothing whatever else is set."""
    service_name: str | None = None
    """`OTEL_SERVICE_NAME`; the process's default name when `None`."""
    traces_exporters: tuple[str, ...] = ("otlp",)
    """`OTEL_TRACES_EXPORTER` entries: `otlp`, `console` or `none`."""
    metrics_exporters: tuple[str, ...] = ("otlp",)
    """`OTEL_METRICS_EXPORTER` entries: `otlp`, `console` or `none`."""
    traces_endpoint: str | None = None
    """Full URL for spans, or `None` when no OTLP endpoint is configured."""
    metrics_endpoint: str | None = None
    """Full URL for metrics, or `None` when no OTLP endpoint is configured."""
    traces_protocol: OtlpProtocol = "grpc"
    """`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL` (spec default)."""
    metrics_protocol: OtlpProtocol = "grpc"
    """`OTEL_EXPORTER_OTLP_METRICS_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`."""
    sampler: str = "parentbased_always_on"
    """`OTEL_TRACES_SAMPLER`."""
    sampler_arg: float | None = None
    """`OTEL_TRACES_SAMPLER_ARG` (a ratio for the `traceidratio` samplers)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingSettings:
        """Read the standard variables from `environ`.

        Raises:
            ConfigurationError: an unknown protocol, exporter or sampler, or a sampler
                argument that is not a number; the message names the variable.
        """
        protocol = _protocol(environ, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        traces_protocol = _protocol(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)
        metrics_protocol = _protocol(environ, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", protocol)
        sampler = _get(environ, "OTEL_TRACES_SAMPLER") or "parentbased_always_on"
        if sampler.lower() not in _SAMPLERS:
            known = ", ".join(sorted(_SAMPLERS))
            raise ConfigurationError(f"OTEL_TRACES_SAMPLER must be one of {known}")
        raw_arg = _get(environ, "OTEL_TRACES_SAMPLER_ARG")
        try:
            sampler_arg = float(raw_arg) if raw_arg else None
        except ValueError:
            raise ConfigurationError("OTEL_TRACES_SAMPLER_ARG must be a number") from None
        return cls(
            disabled=(_get(environ, "OTEL_SDK_DISABLED") or "").lower() in _TRUE,
            service_name=_get(environ, "OTEL_SERVICE_NAME"),
            traces_exporters=_exporters(environ, "OTEL_TRACES_EXPORTER"),
            metrics_exporters=_exporters(environ, "OTEL_METRICS_EXPORTER"),
            traces_endpoint=_endpoint(environ, "traces", traces_protocol),
            metrics_endpoint=_endpoint(environ, "metrics", metrics_protocol),
            traces_protocol=traces_protocol,
            metrics_protocol=metrics_protocol,
            sampler=sampler.lower(),
            sampler_arg=sampler_arg,
        )

    @property
    def tracing_enabled(self) -> bool:
        """Whether a span exporter is configured (OTLP with an endpoint, or console)."""
        if self.disabled:
            return False
        return "console" in self.traces_exporters or (
            "otlp" in self.traces_exporters and self.traces_endpoint is not None
        )

    @property
    def metrics_enabled(self) -> bool:
        """Whether a metric exporter is configured (an OTLP endpoint, or console)."""
        if self.disabled:
            return False
        return "console" in self.metrics_exporters or (
            "otlp" in self.metrics_exporters and self.metrics_endpoint is not None
        )


class Telemetry:
    """The providers `configure_telemetry` installed, to flush and shut down on exit.

    When nothing was configured both providers are `None` and every method is a no-op.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        """The installed SDK tracer provider, or `None` (the API no-op one is in use)."""
        self.meter_provider = meter_provider
        """The installed SDK meter provider, or `None`."""
        self._shut_down = False

    @property
    def installed(self) -> bool:
        """Whether any provider was installed."""
        return self.tracer_provider is not None or self.meter_provider is not None

    def force_flush(self, timeout_millis: int = 5_000) -> None:
        """Export buffered spans and metrics now (before a fork or a long pause)."""
        if self._shut_down:
            return
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the exporters; later calls do nothing."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


def configure_telemetry(
    service_name: str,
    environ: Mapping[str, str],
    *,
    install_traces: bool = True,
    install_metrics: bool = True,
) -> Telemetry:
    """Install global tracer and meter providers when the environment asks for them.

    Args:
        service_name: the default `service.name` (`nons-coordinator`, `nons-actor`...);
            `OTEL_SERVICE_NAME` wins when set.
        environ: the process environment (the CLI passes `os.environ`).
        install_traces: build a tracer provider when the variables configure one
            (False leaves the global one alone, as when the application has its own).
        install_metrics: the same for the meter provider.

    Returns:
        A `Telemetry` to shut down on exit; empty when nothing was configured.

    Raises:
        ConfigurationError: the variables are invalid (see `TracingSettings.from_env`).
    """
    settings = TracingSettings.from_env(environ)
    tracing = install_traces and settings.tracing_enabled
    metering = install_metrics and settings.metrics_enabled
    if not (tracing or metering):
        return Telemetry()
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION
    from opentelemetry.sdk.resources import Resource as SdkResource

    resource = SdkResource.create(
        {
            SERVICE_NAME: settings.service_name or service_name,
            SERVICE_VERSION: _package_version(),
        }
    )
    tracer_provider = _tracer_provider(settings, resource) if tracing else None
    meter_provider = _meter_provider(settings, resource) if metering else None
    if tracer_provider is not None:
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _tracer_provider(settings: TracingSettings, resource: Resource) -> TracerProvider:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource, sampler=_sampler(settings))
    for exporter in _span_exporters(settings):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _span_exporters(settings: TracingSettings) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    if "console" in settings.traces_exporters:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append(ConsoleSpanExporter())
    endpoint = settings.traces_endpoint
    if "otlp" in settings.traces_exporters and endpoint is not None:
        if settings.traces_protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter as HttpSpanExporter,
            )

            exporters.append(HttpSpanExporter(endpoint=endpoint))
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            exporters.append(GrpcSpanExporter(endpoint=endpoint))
    return exporters


def _meter_provider(settings: TracingSettings, resource: Resource) -> MeterProvider:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers = [PeriodicExportingMetricReader(exporter) for exporter in _metric_exporters(settings)]
    return MeterProvider(resource=resource, metric_readers=readers)


def _metric_exporters(settings: TracingSettings) -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    if "console" in settings.metrics_exporters:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        exporters.append(ConsoleMetricExporter())
    endpoint = settings.metrics_endpoint
    if "otlp" in settings.metrics_exporters and endpoint is not None:
        if settings.metrics_protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HttpMetricExporter,
            )

            exporters.append(HttpMetricExporter(endpoint=endpoint))
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            exporters.append(GrpcMetricExporter(endpoint=endpoint))
    return exporters


def _sampler(settings: TracingSettings) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    match settings.sampler:
        case "always_on":
            return sampling.ALWAYS_ON
        case "always_off":
            return sampling.ALWAYS_OFF
        case "parentbased_always_off":
            return sampling.DEFAULT_OFF
        case "traceidratio":
            return sampling.TraceIdRatioBased(ratio)
        case "parentbased_traceidratio":
            return sampling.ParentBasedTraceIdRatio(ratio)
        case _:
            return sampling.DEFAULT_ON


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _protocol(environ: Mapping[str, str], name: str, default: OtlpProtocol) -> OtlpProtocol:
    value = _get(environ, name)
    if value is None:
        return default
    if value == "grpc":
        return "grpc"
    if value == "http/protobuf":
        return "http/protobuf"
    raise ConfigurationError(f"{name} must be 'grpc' or 'http/protobuf'")


def _exporters(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = _get(environ, name) or "otlp"
    names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    unknown = [part for part in names if part not in {"otlp", "console", "none"}]
    if unknown:
        raise ConfigurationError(f"{name} must list 'otlp', 'console' or 'none'")
    return tuple(part for part in names if part != "none")


def _endpoint(
    environ: Mapping[str, str], signal: Literal["traces", "metrics"], protocol: OtlpProtocol
) -> str | None:
    specific = _get(environ, f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if specific is not None:
        return specific
    base = _get(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if base is None or protocol == "grpc":
        return base
    return f"{base.rstrip('/')}/{_SIGNAL_PATHS[signal]}"


def _package_version() -> str:
    try:
        return importlib.metadata.version("nons")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
