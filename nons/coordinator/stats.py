"""Per-network figures for `$SRV.STATS`: what each network endpoint served and what failed.

A coordinator serves several networks, one micro endpoint each. nats.micro counts a
request and, only when the handler raises, an error; but a coordinator's handler
hands the execution to a task and returns, and a failed execution is a reply, not an
exception. So the coordinator counts here, per network, and `patched` writes the
failures into each endpoint's `num_errors` and `last_error`: `nats micro stats`, the
services client and `nons ls` then show what failed, where.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.micro.service import ServiceStats

    from nons.runtime.messages import ExecReply

__all__ = ("ExecutionStats", "NetworkStats")


@dataclass(slots=True)
class NetworkStats:
    """What one network's endpoint did."""

    in_flight: int = 0
    completed: int = 0
    partial: int = 0
    failed: int = 0
    last_error: str | None = None
    """`error.type` of the last failed or partial execution."""

    @property
    def errors(self) -> int:
        """Executions that did not complete: failed and partial ones."""
        return self.failed + self.partial


class ExecutionStats:
    """The per-network counts of one coordinator, by network name."""

    def __init__(self, networks: list[str]) -> None:
        self.networks: dict[str, NetworkStats] = {name: NetworkStats() for name in networks}

    def _of(self, network: str) -> NetworkStats:
        return self.networks.setdefault(network, NetworkStats())

    def started(self, network: str) -> None:
        """An execution of `network` was accepted."""
        self._of(network).in_flight += 1

    def finished(self, network: str, reply: ExecReply, *, started: bool = True) -> None:
        """An execution of `network` replied (`started=False`: refused before it ran)."""
        stats = self._of(network)
        if started:
            stats.in_flight -= 1
        if reply.status == "completed":
            stats.completed += 1
            return
        if reply.status == "partial":
            stats.partial += 1
        else:
            stats.failed += 1
        stats.last_error = reply.error.type if reply.error is not None else reply.status

    @property
    def completed(self) -> int:
        """Completed executions, all networks."""
        return sum(stats.completed for stats in self.networks.values())

    @property
    def failed(self) -> int:
        """Failed executions, all networks."""
        return sum(stats.failed for stats in self.networks.values())

    def data(self, network: str) -> dict[str, Any]:
        """One network endpoint's `data` in `$SRV.STATS`."""
        stats = self._of(network)
        return {
            "in_flight": stats.in_flight,
            "completed": stats.completed,
            "partial": stats.partial,
            "failed": stats.failed,
        }

    def patched(self, service_stats: ServiceStats) -> ServiceStats:
        """`service_stats` with each network endpoint's failures as its errors."""
        endpoints = []
        for endpoint in service_stats.endpoints:
            stats = self.networks.get(endpoint.name)
            if stats is not None:
                endpoint = dataclasses.replace(
                    endpoint,
                    num_errors=endpoint.num_errors + stats.errors,
                    last_error=stats.last_error or endpoint.last_error,
                )
            endpoints.append(endpoint)
        return dataclasses.replace(service_stats, endpoints=endpoints)
