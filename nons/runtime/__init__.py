"""The transport that actors and coordinators share, and nothing above it.

NATS connection, bus, embedded server, wire messages, the one exception <-> wire
converter, event publishing and the event stream.

May import `nons.core`, `nons.resilience` and `nons.observability`; never the
coordinator, actors, client or CLI. The modules `client`, `batch`, `local`,
`budget`, `model_stats` and `policies` here are re-export shims of their new homes.
"""

from __future__ import annotations

__all__ = ()
