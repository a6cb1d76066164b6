"""The networks the page draws: who answers `$SRV.INFO`, arranged into layers and nodes.

Discovery requests get one reply per service instance, so the replies are gathered on
an inbox for a bounded time (as `nons ls` does). An actor endpoint names its network,
node and operator; a coordinator endpoint its network and layer count. The layer of a
node comes from the last `layer.started` event seen (the coordinator's own word), else
from the deterministic id (`l<index>-...`) every network gives its nodes.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from nons.ui.board import Board

__all__ = ("SERVICE_NAMES", "discover", "topology")

SERVICE_NAMES = ("nons-coordinator", "nons-actor")
"""The micro-service names coordinators and actor hosts register under."""

_LAYER_OF_ID = re.compile(r"^l(\d+)-")


async def discover(nc: Client, timeout_s: float) -> list[dict[str, Any]]:
    """Every `$SRV.INFO` reply of a nons service that arrives within `timeout_s`."""
    inbox = nc.new_inbox()
    replies: list[Msg] = []

    async def collect(msg: Msg) -> None:
        replies.append(msg)

    subscription = await nc.subscribe(inbox, cb=collect)
    try:
        for name in SERVICE_NAMES:
            await nc.publish(f"$SRV.INFO.{name}", b"", reply=inbox)
        await nc.flush()
        await asyncio.sleep(timeout_s)  # every instance answers meanwhile
    finally:
        await subscription.unsubscribe()
    services = []
    for msg in replies:
        try:
            document = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("name") in SERVICE_NAMES:
            services.append(document)
    return services


def topology(services: list[dict[str, Any]], board: Board) -> list[dict[str, Any]]:
    """Networks, each with its coordinators and its nodes per layer, for the page."""
    networks: dict[str, dict[str, Any]] = {}
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for service in services:
        for endpoint in service.get("endpoints") or []:
            metadata = endpoint.get("metadata") or {}
            if service.get("name") == "nons-coordinator":
                network = _network(networks, str(endpoint.get("name", "?")))
                network["coordinators"] += 1
                network["layer_count"] = _int(metadata.get("layers"), network["layer_count"])
                continue
            name, node_id = metadata.get("network"), metadata.get("node_id")
            if not name or not node_id:
                continue
            _network(networks, str(name))
            node = nodes.setdefault(
                (str(name), str(node_id)),
                {"node_id": str(node_id), "operator": metadata.get("operator"), "replicas": 0},
            )
            node["replicas"] += 1
    for (name, node_id), node in nodes.items():
        node["model"] = board.models.get((name, node_id))
        node["breaker"] = board.breakers.get((name, node_id), "closed")
        network = networks[name]
        network["layers"].setdefault(_layer_of(board, name, node_id), []).append(node)
    return [_finish(networks[name]) for name in sorted(networks)]


def _network(networks: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    found = networks.get(name)
    if found is None:
        found = networks[name] = {"name": name, "coordinators": 0, "layer_count": 0, "layers": {}}
    return found


def _finish(network: dict[str, Any]) -> dict[str, Any]:
    layers: dict[int, list[dict[str, Any]]] = network["layers"]
    placed = sorted(index for index in layers if index >= 0)
    ordered = [
        {"layer_index": index, "nodes": sorted(layers[index], key=lambda n: n["node_id"])}
        for index in placed
    ]
    if -1 in layers:  # ids that say nothing of their layer, before any execution ran
        ordered.append({"layer_index": None, "nodes": layers[-1]})
    network["layers"] = ordered
    network["layer_count"] = max(network["layer_count"], len(placed))
    return network


def _layer_of(board: Board, network: str, node_id: str) -> int:
    for index, node_ids in enumerate(board.layouts.get(network, [])):
        if node_id in node_ids:
            return index
    match = _LAYER_OF_ID.match(node_id)
    return int(match.group(1)) if match else -1


def _int(text: object, default: int) -> int:
    try:
        return int(str(text))
    except ValueError:
        return default
