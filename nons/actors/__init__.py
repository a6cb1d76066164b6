"""Node actors: processes that serve `nons.node.<network>.<node_id>` subjects."""

from __future__ import annotations

from nons.actors.host import ActorHost, ActorSettings

__all__ = ("ActorHost", "ActorSettings")
