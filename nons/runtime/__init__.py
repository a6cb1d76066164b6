"""The bus: NATS connection, embedded server, messages, coordinator and policies.

Everything here executes what `nons.core` describes, over real NATS.
"""

from __future__ import annotations

__all__ = ()
