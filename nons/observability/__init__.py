"""OpenTelemetry: tracing, propagation over NATS headers, metrics, setup, GenAI spans.

Import the submodules (`nons.observability.tracing`, `.propagation`, `.metrics`,
`.setup`, `.genai`); this package imports nothing itself, so that importing one of
them does not pull in the OpenTelemetry SDK or exporters. The event schema moved
to `nons.core.events` (`.events` here re-exports it). May import `nons.core` and
`nons.providers` (`genai` wraps model clients); core and resilience never import it.
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
