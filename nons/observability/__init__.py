"""Tracing, propagation over NATS headers, metrics and execution events.

Import the submodules (`nons.observability.tracing`, `.propagation`, `.metrics`,
`.setup`, `.genai`, `.events`); this package imports nothing itself, so that
importing one of them does not pull in the OpenTelemetry SDK or exporters.
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
