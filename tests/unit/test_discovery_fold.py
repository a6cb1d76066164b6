"""A discovery reply that would pass max_payload is folded per network, and says so."""

from __future__ import annotations

from datetime import UTC, datetime

from nats.micro.service import EndpointInfo, EndpointStats, ServiceInfo, ServiceStats

from nons.actors._discovery import FOLDED_KEY, _fold_info, _fold_stats


def network_of(subject: str) -> str:
    return subject.split(".")[2]


def endpoint_stats(network: str, node: int) -> EndpointStats:
    return EndpointStats(
        name=f"{network}_n{node}",
        subject=f"nons.node.{network}.n{node}",
        queue_group=f"nons.node.{network}.n{node}",
        num_requests=2,
        num_errors=1,
        processing_time=10,
        average_processing_time=5,
        last_error=None,
        data={"completed": 1, "failed": 1},
    )


def test_a_small_reply_is_left_as_it_is() -> None:
    stats = ServiceStats(
        name="nons-actor",
        id="x",
        version="1",
        started=datetime.now(UTC),
        endpoints=[endpoint_stats("a", 1)],
    )
    assert _fold_stats(stats, 10_000, network_of) is stats


def test_a_reply_too_large_is_summed_per_network() -> None:
    endpoints = [endpoint_stats(net, node) for net in ("a", "b") for node in range(50)]
    stats = ServiceStats(
        name="nons-actor", id="x", version="1", started=datetime.now(UTC), endpoints=endpoints
    )
    folded = _fold_stats(stats, 2_000, network_of)
    assert [e.name for e in folded.endpoints] == ["a", "b"]
    assert folded.metadata[FOLDED_KEY] == "100"
    first = folded.endpoints[0]
    assert (first.num_requests, first.num_errors) == (100, 50)
    assert first.data == {"completed": 50, "failed": 50}
    assert first.average_processing_time == 5


def test_info_too_large_is_folded_per_network_too() -> None:
    endpoints = [
        EndpointInfo(name=f"a_n{i}", subject=f"nons.node.a.n{i}", queue_group="q", metadata={})
        for i in range(100)
    ]
    info = ServiceInfo(name="nons-actor", id="x", version="1", endpoints=endpoints)
    folded = _fold_info(info, 1_000, network_of)
    assert [(e.name, e.metadata["nodes"]) for e in folded.endpoints] == [("a", "100")]
    assert folded.metadata[FOLDED_KEY] == "100"
