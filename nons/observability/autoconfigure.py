"""Telemetry from the standard `OTEL_*` variables for programs that use NoN as a library.

The `nons` processes configure OpenTelemetry at their entry point. A Python program
gets the same on first use: the embedded runtime of `forward()` (its coordinator and
actors), the first span of `get_tracer()` and the first metric of
`get_metrics_collector()` call `ensure_telemetry`, which installs each global provider
the application has not installed from the variables (through `configure_telemetry`,
once per process) and flushes it at exit. A provider the application installed first
is never replaced; one it installs after the first use comes too late, as OpenTelemetry
allows a global provider to be set only once.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider

from nons.observability.setup import configure_telemetry

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("CAPTURE_CONTENT_VAR", "DEFAULT_SERVICE_NAME", "capture_content", "ensure_telemetry")

DEFAULT_SERVICE_NAME = "nons"
"""`service.name` of a program's telemetry unless `OTEL_SERVICE_NAME` names it."""

CAPTURE_CONTENT_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The OpenTelemetry GenAI switch for recording prompts and outputs on LLM spans."""

_lock = threading.Lock()
_done = False


def ensure_telemetry(environ: Mapping[str, str] | None = None) -> None:
    """Install the providers the `OTEL_*` variables configure, unless already installed.

    Runs once per process; later calls return at once. The tracer and the meter
    provider are decided separately: one the application (or `nons`) installed is
    kept while the other may still come from the variables. Installed providers
    are shut down (flushed) at exit; with a tracer provider, model calls get GenAI
    spans as in `nons actor`.

    Args:
        environ: the variables to read; `os.environ` by default (this is the
            library's edge, read once).

    Raises:
        ConfigurationError: the variables are invalid (naming the variable); the
            next call tries again.
    """
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        variables = os.environ if environ is None else environ
        install_traces = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        install_metrics = isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)
        if install_traces or install_metrics:
            telemetry = configure_telemetry(
                DEFAULT_SERVICE_NAME,
                variables,
                install_traces=install_traces,
                install_metrics=install_metrics,
            )
            if telemetry.installed:
                atexit.register(telemetry.shutdown)
            if telemetry.tracer_provider is not None:
                from nons.observability.genai import install_genai_tracing

                install_genai_tracing(capture_content=capture_content(variables))
        _done = True


def capture_content(environ: Mapping[str, str]) -> bool:
    """Whether prompts and outputs go on LLM spans (off unless the GenAI variable says true)."""
    return environ.get(CAPTURE_CONTENT_VAR, "").strip().lower() in ("1", "true", "yes")
