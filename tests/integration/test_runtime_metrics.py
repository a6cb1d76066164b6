"""The runtime records its own metrics: executions, node calls, latency, tokens."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from nons.actors.host import ActorHost
from nons.client import Client
from nons.coordinator.service import Coordinator
from nons.core.network import NoN
from nons.core.node import Node
from nons.core.types import ModelConfig, ModelProvider
from nons.runtime.connection import ConnectionSettings, connect_nats


def points(reader: InMemoryMetricReader) -> dict[str, float]:
    data = reader.get_metrics_data()
    totals: dict[str, float] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", 0)
                    totals[metric.name] = totals.get(metric.name, 0) + float(value or 0)
    return totals


async def test_executions_and_node_calls_are_counted(nats_url: str) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    mock = ModelConfig(provider=ModelProvider.MOCK)
    net = NoN.from_operators([Node("generate", mock) * 2], name="metered")
    nc = await connect_nats(ConnectionSettings(url=nats_url, name="metrics-test"))
    try:
        async with (
            ActorHost(nc, [net], meter_provider=meter_provider),
            Coordinator(nc, [net], meter_provider=meter_provider),
        ):
            client = Client(nc)
            for text in ("one", "two", "three"):
                assert (await client.execute("metered", text)).status == "completed"
            await client.close()
    finally:
        await nc.close()
        totals = points(reader)
        meter_provider.shutdown()
    assert totals["nons.executions"] == 3
    assert totals["nons.node.calls"] == 6
    assert totals["nons.execution.duration"] == 3
    assert totals["nons.tokens"] > 0
    assert totals["nons.node.in_flight"] == 0
