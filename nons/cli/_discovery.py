"""`nons ls`: ask `$SRV.INFO` and `$SRV.STATS` who serves what, and print it by network.

Discovery requests get one reply per service instance, so they cannot use a plain
request (which keeps the first reply only): the replies are gathered on an inbox for
a bounded time instead.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from nons.cli._common import emit

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ("SERVICE_NAMES", "discover", "print_services")

SERVICE_NAMES = ("nons-coordinator", "nons-actor")
"""The micro-service names coordinators and actor hosts register under."""


async def discover(nc: NatsClient, timeout_s: float) -> list[dict[str, Any]]:
    """Every nons service that answers within `timeout_s`: its info with stats merged in.

    Each service is a dict of its `$SRV.INFO` reply; each endpoint also gets the
    `num_requests`, `num_errors`, `average_processing_time` and `data` of its stats.
    """
    inbox = nc.new_inbox()
    replies: list[Msg] = []

    async def collect(msg: Msg) -> None:
        replies.append(msg)

    subscription = await nc.subscribe(f"{inbox}.*", cb=collect)
    try:
        for index, (kind, name) in enumerate(
            (kind, name) for kind in ("INFO", "STATS") for name in SERVICE_NAMES
        ):
            await nc.publish(f"$SRV.{kind}.{name}", b"", reply=f"{inbox}.{index}")
        await nc.flush()
        await asyncio.sleep(timeout_s)  # replies from every instance arrive meanwhile
    finally:
        await subscription.unsubscribe()
    return _merge(replies)


def print_services(services: list[dict[str, Any]], *, as_json: bool, url: str) -> None:
    """Print services grouped by network, or as one JSON document."""
    if as_json:
        emit(json.dumps({"services": services}, sort_keys=True))
        return
    if not services:
        emit(f"no nons coordinator or actor answered at {url}", sys.stderr)
        return
    by_network: dict[str, list[str]] = {}
    for service in sorted(services, key=lambda s: (s.get("name", ""), s.get("id", ""))):
        for endpoint in service.get("endpoints") or []:
            network, line = _endpoint_line(service, endpoint)
            by_network.setdefault(network, []).append(line)
    for network in sorted(by_network):
        emit(f"network {network}")
        for line in by_network[network]:
            emit(f"  {line}")


def _endpoint_line(service: dict[str, Any], endpoint: dict[str, Any]) -> tuple[str, str]:
    metadata = endpoint.get("metadata") or {}
    kind = "coordinator" if service.get("name") == "nons-coordinator" else "actor"
    network = metadata.get("network") or endpoint.get("name", "?")
    what = "" if kind == "coordinator" else f" node {metadata.get('node_id', '?')}"
    average_ms = (endpoint.get("average_processing_time") or 0) / 1e6
    last_error = endpoint.get("last_error")
    folded = (service.get("metadata") or {}).get("nons_folded_endpoints")
    return network, (
        f"{kind:<11} {service.get('id', '?')}{what} on {endpoint.get('subject')} "
        f"(requests {endpoint.get('num_requests', 0)}, errors {endpoint.get('num_errors', 0)}"
        + (f", last error {last_error}" if last_error else "")
        + f", avg {average_ms:.1f} ms)"
        + (
            f" [{folded} node endpoints summed per network: too many for one reply]"
            if folded
            else ""
        )
    )


def _merge(replies: list[Msg]) -> list[dict[str, Any]]:
    infos: dict[str, dict[str, Any]] = {}
    stats: dict[str, dict[str, Any]] = {}
    for msg in replies:
        try:
            document = json.loads(msg.data)
        except ValueError:
            continue
        if not isinstance(document, dict) or "id" not in document:
            continue
        kind = str(document.get("type", ""))
        if kind.endswith("info_response"):
            infos[document["id"]] = document
        elif kind.endswith("stats_response"):
            stats[document["id"]] = document
    services = []
    for service_id, info in infos.items():
        counted = {e.get("subject"): e for e in stats.get(service_id, {}).get("endpoints") or []}
        for endpoint in info.get("endpoints") or []:
            numbers = counted.get(endpoint.get("subject"), {})
            for key in (
                "num_requests",
                "num_errors",
                "last_error",
                "average_processing_time",
                "data",
            ):
                if key in numbers:
                    endpoint[key] = numbers[key]
        services.append(info)
    return services
