"""One execution is one trace across a coordinator process and two actor processes (OTLP)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import nats
from opentelemetry.sdk.trace import TracerProvider

from nons.observability.propagation import inject_headers
from tests.support.otlp_receiver import OtlpReceiver, SpanRecord
from tests.support.processes import nons_env, nons_process

if TYPE_CHECKING:
    from pathlib import Path

PLANTED_KEY = "sk-ant-planted-NEVER-IN-SPANS-0123456789"


def otel_env(endpoint: str, service: str) -> dict[str, str]:
    env = nons_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": service,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "NONS_DEFAULT_PROVIDER": "mock",
            "ANTHROPIC_API_KEY": PLANTED_KEY,
        }
    )
    env.pop("NONS_NATS_URL", None)
    return env


async def test_spans_of_three_processes_form_one_trace(nats_url: str, tmp_path: Path) -> None:
    target = "examples.quickstart:network"
    with OtlpReceiver() as receiver, contextlib.ExitStack() as stack:
        actors = [
            stack.enter_context(
                nons_process(
                    ["--nats-url", nats_url, "actor", target],
                    tmp_path=tmp_path,
                    env=otel_env(receiver.endpoint, "nons-actor"),
                    name=f"actor{index}",
                )
            )
            for index in range(2)
        ]
        coordinator = stack.enter_context(
            nons_process(
                ["--nats-url", nats_url, "coordinator", target],
                tmp_path=tmp_path,
                env=otel_env(receiver.endpoint, "nons-coordinator"),
                name="coordinator",
            )
        )
        for process in (*actors, coordinator):
            await process.wait_for_line_async(r"ready", timeout=30)

        caller = TracerProvider().get_tracer("caller")
        nc = await nats.connect(nats_url)
        try:
            trace_ids = set()
            for index in range(6):
                with caller.start_as_current_span("caller") as span:
                    headers = inject_headers({})
                    reply = await nc.request(
                        "nons.exec.quickstart",
                        f"text {index}".encode(),
                        timeout=20,
                        headers=headers,
                    )
                    trace_ids.add(format(span.get_span_context().trace_id, "032x"))
                assert b'"status":"completed"' in reply.data
        finally:
            await nc.close()
        for process in (*actors, coordinator):
            process.stop()

        def complete(spans: list[SpanRecord]) -> bool:
            return sum(1 for s in spans if s.name.startswith("chat")) >= 6 * 4

        spans = receiver.wait_for_spans(complete, timeout=20)
    ours = [record for record in spans if record.trace_id in trace_ids]
    assert {record.trace_id for record in ours} == trace_ids
    by_id = {record.span_id: record for record in ours}
    services = {record.service_name for record in ours}
    assert services == {"nons-coordinator", "nons-actor"}
    for record in ours:
        if record.name.startswith("chat"):
            parent = by_id[record.parent_span_id]
            assert parent.name.startswith("process nons.node.quickstart.")
            assert parent.service_name == "nons-actor"
            grandparent = by_id[parent.parent_span_id]
            assert grandparent.name == parent.name.replace("process", "send", 1)
            assert grandparent.service_name == "nons-coordinator"
            assert record.attributes["gen_ai.operation.name"] == "chat"
    for record in ours:
        assert PLANTED_KEY not in repr(record)
    assert sum(1 for s in ours if s.name == "process nons.exec.quickstart") == 6
