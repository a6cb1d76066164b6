"""A planted API key never leaves the process that holds it: not in events, replies,
logs (at debug level), spans, metrics or service discovery.

The coordinator and actor processes hold `ANTHROPIC_API_KEY`; one node runs on the
anthropic provider against a fake Messages API that fails every call with a message
echoing the key it was sent (as a careless proxy might), so errors flow through every
channel. The fake's own request log is the positive control: the key was really sent.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import TYPE_CHECKING, Any

import nats

from tests.support.cluster import (
    READY_S,
    child_env,
    layer,
    start_actor,
    start_coordinator,
    unique_name,
    write_spec,
)
from tests.support.fake_anthropic import FakeAnthropic, error_response
from tests.support.otlp_receiver import OtlpReceiver, SpanRecord

if TYPE_CHECKING:
    from pathlib import Path

    from nats.aio.msg import Msg

    from tests.support.fake_http import RecordedRequest, ScriptedResponse

SUFFIX = secrets.token_hex(12)
PLANTED_KEY = f"sk-ant-api03-PLANTED-{SUFFIX}-AA"
"""The secret; its random `SUFFIX` alone must not appear anywhere either."""

NEEDLES = (PLANTED_KEY, SUFFIX, "PLANTED")


class EchoingAnthropic(FakeAnthropic):
    """Fails every call (401, then 500, alternately) with the key it got in the message."""

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self.requests.append(request)
            count = len(self.requests)
        presented = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if count % 2:
            return error_response(401, message=f"invalid x-api-key: {presented}")
        return error_response(500, message=f"upstream failed for key {presented}")


def secret_env(**overrides: str) -> dict[str, str]:
    return child_env(
        ANTHROPIC_API_KEY=PLANTED_KEY,
        NONS_DEFAULT_PROVIDER="mock",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        **overrides,
    )


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


async def test_planted_key_appears_in_no_output(nats_url: str, tmp_path: Path) -> None:
    name = unique_name("secrets")
    config = {"error_policy": "retry_with_backoff", "max_retries": 1, "retry_delay_seconds": 0.01}
    remote = {"provider": "anthropic", "model_name": "claude-haiku-4-5"}
    spec = write_spec(
        tmp_path,
        name,
        [
            layer({"node_id": "clean", "operator": "transform"}, **config),
            layer(
                {"node_id": "local", "operator": "generate"},
                {"node_id": "remote", "operator": "generate", "model": remote},
                **config,
            ),
        ],
    )
    captured: list[str] = []

    async def capture(msg: Msg) -> None:
        captured.append(f"{msg.subject} {msg.headers!r} {msg.data.decode(errors='replace')}")

    replies: list[dict[str, Any]] = []
    with EchoingAnthropic() as fake, OtlpReceiver() as receiver, contextlib.ExitStack() as stack:
        debug = ("--log-level", "debug")
        actor = start_actor(
            stack,
            nats_url,
            spec,
            tmp_path,
            name="actor",
            extra=debug,
            env=secret_env(
                ANTHROPIC_BASE_URL=fake.base_url,
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_SERVICE_NAME="nons-actor",
            ),
        )
        coordinator = start_coordinator(
            stack,
            nats_url,
            spec,
            tmp_path,
            extra=debug,
            env=secret_env(
                ANTHROPIC_BASE_URL=fake.base_url,
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_SERVICE_NAME="nons-coordinator",
            ),
        )
        for process in (actor, coordinator):
            await process.wait_for_line_async(r"^nons \w+ ready: ", timeout=READY_S)

        nc = await nats.connect(nats_url)
        try:
            # Every request, node call, event and reply of the cluster passes here.
            await nc.subscribe("nons.>", cb=capture)
            await nc.subscribe("_INBOX.>", cb=capture)
            await nc.flush()
            for index in range(3):
                msg = await nc.request(f"nons.exec.{name}", f"ticket {index}".encode(), timeout=30)
                replies.append(json.loads(msg.data))
                captured.append(f"reply {msg.headers!r} {msg.data.decode(errors='replace')}")
            info = json.loads((await nc.request("$SRV.INFO.nons-actor", b"", timeout=5)).data)
            [fingerprint] = [
                endpoint["metadata"]["fingerprint"]
                for endpoint in info["endpoints"]
                if endpoint["subject"] == f"nons.node.{name}.remote"
            ]
            direct = {
                "network": name,
                "node_id": "remote",
                "fingerprint": fingerprint,
                "execution_id": "direct-call",
                "layer_index": 1,
                "input": "call the provider directly",
                "timeout_s": 20,
            }
            msg = await nc.request(
                f"nons.node.{name}.remote", json.dumps(direct).encode(), timeout=30
            )
            node_reply = json.loads(msg.data)
            captured.append(f"node reply {msg.headers!r} {msg.data.decode(errors='replace')}")
            for subject in ("$SRV.INFO", "$SRV.STATS", "$SRV.PING"):
                msg = await nc.request(subject, b"", timeout=5)
                captured.append(f"{subject} {msg.data.decode(errors='replace')}")
            await nc.flush()
        finally:
            await nc.close()
        for process in (actor, coordinator):
            assert process.stop() == 0, process.output()[-2000:]

        def exported(spans: list[SpanRecord]) -> bool:
            services = {span.service_name for span in spans}
            failed_chats = [
                s for s in spans if s.name.startswith("chat") and s.status_code == "ERROR"
            ]
            return {"nons-actor", "nons-coordinator"} <= services and len(failed_chats) >= 4

        spans = receiver.wait_for_spans(exported, timeout=20)
        metrics = receiver.metrics
        requests = list(fake.message_requests)

    # Positive controls: the key really was used, and the errors really flowed.
    assert requests, "the anthropic node never called the fake API"
    assert all(
        PLANTED_KEY in (r.headers.get("x-api-key", ""), r.headers.get("authorization", ""))
        or r.headers.get("authorization") == f"Bearer {PLANTED_KEY}"
        for r in requests
    )
    assert [reply["status"] for reply in replies] == ["failed"] * 3
    assert {reply["error"]["type"] for reply in replies} <= {
        "provider_authentication",
        "provider_unavailable",
    }
    assert all("***" in reply["error"]["message"] for reply in replies), replies
    assert node_reply["status"] == "failed"
    assert "***" in node_reply["error"]["message"]
    assert any('"type":"node.failed"' in text for text in captured)

    channels: dict[str, str] = {
        "events and replies": "\n".join(captured),
        "coordinator log": coordinator.output(),
        "actor log": actor.output(),
        "spans": "\n".join(repr(span) for span in spans),
        "metrics": "\n".join(repr(metric) for metric in metrics),
    }
    assert "DEBUG" in channels["actor log"], "the actor did not log at debug level"
    assert "provider_authentication" in channels["spans"] or "provider_" in channels["spans"]
    found = {channel: leaks(text) for channel, text in channels.items() if leaks(text)}
    assert not found, f"the planted key leaked: {found}"
