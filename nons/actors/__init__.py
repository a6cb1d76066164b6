"""Node actors: processes that serve `nons.node.<network>.<node_id>` subjects.

May import `nons.core`, `nons.operators`, `nons.providers`, `nons.resilience`,
`nons.runtime` (transport) and `nons.observability`; never the coordinator, the
client or the CLI.
"""

from __future__ import annotations

from nons.actors.host import ActorHost, ActorSettings

__all__ = ("ActorHost", "ActorSettings")
