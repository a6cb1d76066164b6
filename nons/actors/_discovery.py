"""Discovery replies that always fit in one message: per network when per node is too big.

An actor host serves one micro endpoint per node; at about 200 bytes per endpoint
in `$SRV.INFO` and 300 in `$SRV.STATS`, a few thousand nodes in one process would
pass the server's max_payload, and nats.micro would then fail to publish and answer
nothing, so the services client silently drops the actor. Here a reply that would not
fit is folded to one entry per network, with figures summed and a metadata note
saying how many node endpoints were folded: a bounded, clear answer, never silence.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from nats.micro.service import EndpointInfo, EndpointStats

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.micro.service import Service, ServiceInfo, ServiceStats

__all__ = ("FOLDED_KEY", "bound_discovery")

FOLDED_KEY = "nons_folded_endpoints"
"""Service metadata key: how many node endpoints a folded reply stands for."""

_MARGIN_BYTES = 4096
"""Room left under max_payload for the reply's headers and encoding slack."""


def bound_discovery(service: Service, max_payload: int, network_of: Callable[[str], str]) -> None:
    """Make `service`'s INFO and STATS replies fold per network when they would not fit.

    `network_of` maps an endpoint subject to its network's name.
    """
    limit = max(max_payload - _MARGIN_BYTES, 1024)
    info, stats = service.info, service.stats
    service.info = lambda: _fold_info(info(), limit, network_of)  # type: ignore[method-assign]
    service.stats = lambda: _fold_stats(stats(), limit, network_of)  # type: ignore[method-assign]


def _size(document: ServiceInfo | ServiceStats) -> int:
    return len(json.dumps(document.to_dict()).encode())


def _fold_info(info: ServiceInfo, limit: int, network_of: Callable[[str], str]) -> ServiceInfo:
    if _size(info) <= limit:
        return info
    networks: dict[str, int] = {}
    for endpoint in info.endpoints:
        network = network_of(endpoint.subject)
        networks[network] = networks.get(network, 0) + 1
    endpoints = [
        EndpointInfo(
            name=network,
            subject=f"nons.node.{network}.>",
            queue_group="",
            metadata={"network": network, "node_id": "*", "nodes": str(count)},
        )
        for network, count in sorted(networks.items())
    ]
    metadata = {**info.metadata, FOLDED_KEY: str(len(info.endpoints))}
    return dataclasses.replace(info, endpoints=endpoints, metadata=metadata)


def _fold_stats(stats: ServiceStats, limit: int, network_of: Callable[[str], str]) -> ServiceStats:
    if _size(stats) <= limit:
        return stats
    folded: dict[str, EndpointStats] = {}
    for endpoint in stats.endpoints:
        network = network_of(endpoint.subject)
        total = folded.get(network)
        if total is None:
            folded[network] = dataclasses.replace(
                endpoint,
                name=network,
                subject=f"nons.node.{network}.>",
                queue_group="",
                data=dict(endpoint.data or {}),
            )
            continue
        total.num_requests += endpoint.num_requests
        total.num_errors += endpoint.num_errors
        total.processing_time += endpoint.processing_time
        total.last_error = endpoint.last_error or total.last_error
        total.data = _summed(total.data or {}, endpoint.data or {})
    for total in folded.values():
        total.average_processing_time = (
            int(total.processing_time / total.num_requests) if total.num_requests else 0
        )
    metadata = {**stats.metadata, FOLDED_KEY: str(len(stats.endpoints))}
    return dataclasses.replace(
        stats, endpoints=[folded[name] for name in sorted(folded)], metadata=metadata
    )


def _summed(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two endpoints' `data` added up (counts summed, anything else the latest)."""
    summed: dict[str, Any] = {}
    for key in {**total, **more}:
        mine, theirs = total.get(key), more.get(key)
        if isinstance(mine, int) and isinstance(theirs, int):
            summed[key] = mine + theirs
        else:
            summed[key] = theirs if theirs is not None else mine
    return summed
