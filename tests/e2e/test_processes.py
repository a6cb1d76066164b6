"""`nons` processes as an operator runs them: coordinator, actor replicas, failover, drain, CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import nats
import nats.errors

from nons import LayerConfig, Node, NoN
from tests.support.processes import REPO_ROOT, NonsProcess, nons_env, nons_process
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from nats.aio.msg import Msg

    from nons.runtime.server import EmbeddedServer

READY_S = 30.0
"""Bound on a process's startup (interpreter, imports, connect)."""


def child_env(**overrides: str) -> dict[str, str]:
    """The environment of a child: offline (mock provider), no URL unless given."""
    env = nons_env()
    for name in ("NONS_NATS_URL", "ANTHROPIC_API_KEY", "NONS_DEFAULT_PROVIDER", "OPENAI_API_KEY"):
        env.pop(name, None)
    env.update(overrides)
    return env


@contextlib.contextmanager
def cluster(
    tmp_path: Path,
    url: str,
    target: str,
    *,
    actors: int = 2,
    actor_env: Mapping[str, str] | None = None,
) -> Iterator[tuple[NonsProcess, list[NonsProcess]]]:
    """`nons coordinator` and `actors` x `nons actor` for `target`, each ready; stopped after."""
    with contextlib.ExitStack() as stack:
        replicas = [
            stack.enter_context(
                nons_process(
                    ["--nats-url", url, "actor", target, "--concurrency", "16"],
                    tmp_path=tmp_path,
                    env=child_env(**(actor_env or {})),
                    name=f"actor{index}",
                )
            )
            for index in range(actors)
        ]
        coordinator = stack.enter_context(
            nons_process(
                ["--nats-url", url, "coordinator", target],
                tmp_path=tmp_path,
                env=child_env(),
                name="coordinator",
            )
        )
        for replica in replicas:
            replica.wait_for_line(r"^nons actor ready: \d+ nodes of ", timeout=READY_S)
        coordinator.wait_for_line(r"^nons coordinator ready: ", timeout=READY_S)
        yield coordinator, replicas


def failover_spec(tmp_path: Path, node_timeout: float = 1.0) -> tuple[str, str]:
    """A two-layer network whose node calls time out fast and are retried."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    config = LayerConfig(node_timeout_seconds=node_timeout, max_retries=4, retry_delay_seconds=0.05)
    network = NoN.from_operators(["transform", Node("generate")], name=name, layer_config=config)
    path = tmp_path / f"{name}.yaml"
    network.save(path)
    return name, str(path)


async def exec_requests(url: str, network: str, count: int, payload: bytes) -> list[dict[str, Any]]:
    nc = await nats.connect(url)

    async def one() -> Msg:
        try:
            return await nc.request(f"nons.exec.{network}", payload, timeout=30)
        except nats.errors.NoRespondersError:  # the server may lag a fresh subscription
            await asyncio.sleep(0.05)
            return await nc.request(f"nons.exec.{network}", payload, timeout=30)

    try:
        replies = await asyncio.gather(*(one() for _ in range(count)))
    finally:
        await nc.close()
    return [json.loads(reply.data) for reply in replies]


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nons", *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else child_env(),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


async def test_coordinator_and_two_actor_processes_share_the_work(
    nats_url: str, tmp_path: Path
) -> None:
    with cluster(tmp_path, nats_url, "examples.quickstart:network"):
        [first] = await exec_requests(nats_url, "quickstart", 1, b"the app crashes on upload")
        assert first["status"] == "completed"
        assert first["is_mock"] is True
        replies = await exec_requests(nats_url, "quickstart", 30, b"batch")
        assert {reply["status"] for reply in replies} == {"completed"}

        nc = await nats.connect(nats_url)
        try:
            stats = await _gather(nc, "$SRV.STATS.nons-actor", 0.5)
        finally:
            await nc.close()
    busy = [
        service
        for service in stats
        if any(
            e["subject"].startswith("nons.node.quickstart.") and e["num_requests"] > 0
            for e in service["endpoints"]
        )
    ]
    assert len(busy) >= 2, "both actor replicas should have served calls"


async def test_killed_actor_fails_over_to_the_other_replica(nats_url: str, tmp_path: Path) -> None:
    name, spec = failover_spec(tmp_path)
    events: list[dict[str, Any]] = []

    async def on_event(msg: Msg) -> None:
        events.append(json.loads(msg.data))

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(f"nons.events.{name}.>", cb=on_event)
        await nc.flush()
        with cluster(tmp_path, nats_url, spec, actor_env={"NONS_MOCK_LATENCY_S": "0.2"}) as (
            _,
            replicas,
        ):
            batch = asyncio.ensure_future(exec_requests(nats_url, name, 12, b"fail over"))
            await wait_until(
                lambda: sum(e["type"] == "node.started" for e in events) >= 12, timeout=15
            )
            assert replicas[0].kill() == -9
            replies = await asyncio.wait_for(batch, timeout=45)
    finally:
        await nc.close()
    assert [reply["status"] for reply in replies] == ["completed"] * 12
    retried = [e for e in events if e["type"] == "node.retrying"]
    assert retried, "calls in flight on the killed actor should have been retried"
    # The 1 s node timeout usually fires before the 2 s liveness window finds the call lost.
    assert {e["error"]["type"] for e in retried} <= {"node_timeout", "no_responders", "node_lost"}


async def test_sigterm_drains_the_coordinator(nats_url: str, tmp_path: Path) -> None:
    name, spec = failover_spec(tmp_path, node_timeout=5.0)
    started = asyncio.Event()

    async def on_event(msg: Msg) -> None:
        if msg.subject.endswith(".layer.started"):
            started.set()

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(f"nons.events.{name}.>", cb=on_event)
        await nc.flush()
        with cluster(
            tmp_path, nats_url, spec, actors=1, actor_env={"NONS_MOCK_LATENCY_S": "0.5"}
        ) as (coordinator, _):
            pending = asyncio.ensure_future(
                nc.request(f"nons.exec.{name}", b"drain me", timeout=30)
            )
            await asyncio.wait_for(started.wait(), timeout=15)
            os.kill(coordinator.pid, 15)
            reply = json.loads((await asyncio.wait_for(pending, timeout=30)).data)
            code = await asyncio.to_thread(coordinator.process.wait, 20)
    finally:
        await nc.close()
    assert reply["status"] == "completed"
    assert code == 0
    assert "stopping, draining" in coordinator.output()


async def test_stopping_while_the_server_is_down_exits_cleanly(
    fresh_nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    """Everything stopped at once (the server first): a line each, no traceback, exit 0."""
    with cluster(tmp_path, fresh_nats_server.url, "examples.quickstart:network", actors=1) as (
        coordinator,
        replicas,
    ):
        fresh_nats_server.stop()
        for process in (coordinator, *replicas):
            await process.wait_for_line_async("disconnected from NATS", timeout=15)
        codes = [await asyncio.to_thread(p.stop, timeout=20) for p in (coordinator, *replicas)]
        outputs = [p.output() for p in (coordinator, *replicas)]
    assert codes == [0, 0], outputs
    for output in outputs:
        assert "Traceback" not in output, output
        assert re.search(r"nons \w+: stopped", output), output


def test_exec_command_exit_codes_and_json(nats_url: str, tmp_path: Path) -> None:
    with cluster(tmp_path, nats_url, "examples.quickstart:network", actors=1):
        shown = run_cli("--nats-url", nats_url, "exec", "quickstart", "my invoice is wrong")
        assert shown.returncode == 0, shown.stderr
        assert "[mock] generate" in shown.stdout
        assert "layer 0 started (1 node)" in shown.stderr
        assert "layer 1 started (2 nodes)" in shown.stderr
        assert "node l1-classify completed in" in shown.stderr
        assert re.search(r"layer 2 completed in \d+ ms", shown.stderr)
        assert "[mock provider: offline output, not a real model answer]" in shown.stderr

        as_json = run_cli(
            "--nats-url", nats_url, "exec", "--json", "quickstart", '{"content": "x"}'
        )
        assert as_json.returncode == 0, as_json.stderr
        document = json.loads(as_json.stdout)
        assert document["status"] == "completed"
        assert {"execution_id", "network", "output", "usage", "cost_usd", "duration_ms"} <= set(
            document
        )

        failed = run_cli(
            "--nats-url", nats_url, "exec", "quickstart", '{"content": "x", "bogus": 1}'
        )
        assert failed.returncode == 1
        assert "validation_error" in failed.stderr

        unknown = run_cli("--nats-url", nats_url, "exec", "no-such-network", "x")
        assert unknown.returncode == 3
        assert "no coordinator serves network 'no-such-network'" in unknown.stderr

        listed = run_cli("--nats-url", nats_url, "ls")
        assert listed.returncode == 0
        assert "network quickstart" in listed.stdout
        assert "coordinator" in listed.stdout


def test_exec_without_a_server_exits_3() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("--nats-url", f"nats://127.0.0.1:{port}", "exec", "quickstart", "x")
    assert result.returncode == 3
    assert "no NATS server answers" in result.stderr


async def test_events_command_prints_an_execution(nats_url: str, tmp_path: Path) -> None:
    with cluster(tmp_path, nats_url, "examples.quickstart:network", actors=1):
        with nons_process(
            ["--nats-url", nats_url, "events", "quickstart", "--count", "3", "--json"],
            tmp_path=tmp_path,
            env=child_env(),
            name="events",
        ) as tail:
            await tail.wait_for_line_async("listening on", timeout=READY_S)
            await exec_requests(nats_url, "quickstart", 1, b"watch me")
            code = await asyncio.to_thread(tail.process.wait, 20)
    lines = [json.loads(line) for line in (tmp_path / "events.stdout").read_text().splitlines()]
    assert code == 0
    assert [line["type"] for line in lines][:2] == ["execution.started", "layer.started"]
    assert len(lines) == 3


async def test_up_without_url_starts_an_embedded_server(tmp_path: Path) -> None:
    with nons_process(
        ["up", "examples.quickstart:network"], tmp_path=tmp_path, env=child_env(), name="up"
    ) as up:
        ready = await up.wait_for_line_async(r"^nons up ready: ", timeout=READY_S)
        url_match = re.search(r"nats://127\.0\.0\.1:\d+", ready)
        assert url_match is not None
        pid_line = up.find_line(r"embedded nats-server, pid \d+")
        assert pid_line is not None
        assert up.find_line("ANTHROPIC_API_KEY is not set") is not None
        [reply] = await exec_requests(url_match.group(0), "quickstart", 1, b"hello")
        assert reply["status"] == "completed"
        os.kill(up.pid, 15)
        code = await asyncio.to_thread(up.process.wait, 20)
    assert code == 0
    server_pid = int(re.search(r"pid (\d+)", pid_line).group(1))  # type: ignore[union-attr]
    await wait_until(lambda: not _alive(server_pid), timeout=10)


async def _gather(nc: Any, subject: str, seconds: float) -> list[dict[str, Any]]:
    inbox = nc.new_inbox()
    replies: list[dict[str, Any]] = []

    async def collect(msg: Msg) -> None:
        replies.append(json.loads(msg.data))

    subscription = await nc.subscribe(inbox, cb=collect)
    await nc.publish(subject, b"", reply=inbox)
    await nc.flush()
    await asyncio.sleep(seconds)  # discovery: every instance answers within this window
    await subscription.unsubscribe()
    return replies


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_command_serves_a_spec_file_in_process() -> None:
    result = run_cli("run", "examples/triage.yaml", "The app crashes when I upload a photo")
    assert result.returncode == 0, result.stderr
    assert "[mock] synthesize" in result.stdout
    assert "[mock provider: offline output, not a real model answer]" in result.stderr
    refused = run_cli("run", "examples.custom_operator:network", '{"text": ""}')
    assert refused.returncode == 1
    assert "minLength" in refused.stderr


async def test_server_command_runs_until_sigterm(tmp_path: Path) -> None:
    with nons_process(
        ["server", "--port", "0", "--max-payload", "65536"],
        tmp_path=tmp_path,
        env=child_env(),
        name="server",
    ) as server:
        line = await server.wait_for_line_async(r"running at nats://", timeout=READY_S)
        url = re.search(r"nats://127\.0\.0\.1:\d+", line)
        assert url is not None
        nc = await nats.connect(url.group(0))
        try:
            assert nc.max_payload == 65536
        finally:
            await nc.close()
        os.kill(server.pid, 15)
        code = await asyncio.to_thread(server.process.wait, 20)
    assert code == 0
