"""deploy/nats.conf on the real nats-server: it loads, and each user gets exactly its subjects.

The server runs the deployment's own file (copied, with only `store_dir` pointed at a
temporary directory); the command line moves it to loopback and free ports. The
passwords reach the server through its environment, as in compose and Kubernetes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nats.errors
import pytest
from nats.aio.client import Client as NatsClient

from nons.cli._discovery import discover
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime._process import LOOPBACK_HOST, free_port
from nons.runtime.event_store import read_execution_events
from nons.runtime.server import EmbeddedServer, find_server_binary
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.msg import Msg

CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats.conf"
USERS = ("client", "coordinator", "actor", "admin")
PASSWORD_VARS = {user: f"NATS_{user.upper()}_PASSWORD" for user in USERS}
STORE_LINE = "store_dir: /data/jetstream"


@dataclass(frozen=True)
class DeployServer:
    port: int
    monitor_port: int
    passwords: dict[str, str]

    def url(self, user: str, password: str | None = None) -> str:
        secret = self.passwords[user] if password is None else password
        return f"nats://{user}:{secret}@{LOOPBACK_HOST}:{self.port}"


@dataclass
class Session:
    nc: NatsClient
    errors: list[Exception]

    def violations(self) -> list[str]:
        return [str(e) for e in self.errors if "permissions violation" in str(e).lower()]


@pytest.fixture(scope="module")
def deploy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployServer]:
    workdir = tmp_path_factory.mktemp("deploy-nats")
    text = CONF.read_text(encoding="utf-8")
    assert text.count(STORE_LINE) == 1, "nats.conf must set store_dir exactly once"
    conf = workdir / "nats.conf"
    conf.write_text(text.replace(STORE_LINE, f'store_dir: "{workdir / "store"}"'), "utf-8")
    passwords = {user: f"{user}-{uuid.uuid4().hex}" for user in USERS}
    monitor_port = free_port()
    server = EmbeddedServer(
        jetstream=False,  # the config enables JetStream itself; -sd would clash with it
        extra_args=["-c", str(conf), "-m", str(monitor_port)],
    )
    with pytest.MonkeyPatch.context() as patch:
        for user, variable in PASSWORD_VARS.items():
            patch.setenv(variable, passwords[user])
        server.start()
    try:
        yield DeployServer(port=server.port, monitor_port=monitor_port, passwords=passwords)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@pytest.fixture
async def sessions(deploy_server: DeployServer) -> AsyncIterator[dict[str, Session]]:
    """One connection per user, each recording the errors the server sends it."""
    opened: dict[str, Session] = {}
    try:
        for user in USERS:
            opened[user] = await _connect(deploy_server.url(user))
        yield opened
    finally:
        for session in opened.values():
            await session.nc.close()


async def _connect(url: str) -> Session:
    errors: list[Exception] = []

    async def on_error(error: Exception) -> None:
        errors.append(error)

    nc = NatsClient()
    try:
        await nc.connect(url, error_cb=on_error, allow_reconnect=False, connect_timeout=2)
    except BaseException:
        await nc.close()
        raise
    return Session(nc=nc, errors=errors)


def _check_config(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_server_binary(), "-c", str(CONF), "-t"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_config_is_valid_and_refuses_to_start_without_passwords() -> None:
    with_passwords = dict.fromkeys(PASSWORD_VARS.values(), "local-test-pw")
    valid = _check_config(with_passwords)
    assert valid.returncode == 0, valid.stderr
    assert "is valid" in valid.stdout + valid.stderr

    missing = _check_config({})
    assert missing.returncode != 0
    assert "NATS_CLIENT_PASSWORD" in missing.stdout + missing.stderr


async def test_limits_and_jetstream(sessions: dict[str, Session]) -> None:
    assert sessions["client"].nc.max_payload == 1024 * 1024
    info = await sessions["admin"].nc.jetstream().account_info()
    assert info.limits.max_streams == -1


def test_monitoring_health_endpoint(deploy_server: DeployServer) -> None:
    url = f"http://{LOOPBACK_HOST}:{deploy_server.monitor_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        assert json.loads(response.read()) == {"status": "ok"}


@pytest.mark.parametrize(
    "credentials", [{}, {"user": "client", "pass": "wrong-password"}, {"user": "nobody"}]
)
def test_anonymous_and_unknown_connections_are_refused(
    deploy_server: DeployServer, credentials: dict[str, str]
) -> None:
    with socket.create_connection((LOOPBACK_HOST, deploy_server.port), timeout=5) as sock:
        info = json.loads(_read_line(sock).removeprefix(b"INFO "))
        assert info["auth_required"] is True
        connect = {"verbose": False, "pedantic": False, "protocol": 1, **credentials}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        assert _read_line(sock) == b"-ERR 'Authorization Violation'"


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data.removesuffix(b"\r\n")


async def request_when_served(nc: NatsClient, subject: str, payload: bytes) -> bytes:
    """A request retried while nats-server still answers "no responders".

    Right after a subscription from another connection (seen with accounts), the
    server may answer "no responders" for an instant before the interest arrives.
    """
    replies: list[bytes] = []

    async def answered() -> bool:
        try:
            replies.append((await nc.request(subject, payload, timeout=5)).data)
        except nats.errors.NoRespondersError:
            return False
        return True

    await wait_until(answered, timeout=5, message=f"nobody ever answered on {subject}")
    return replies[0]


async def test_client_requests_exec_and_watches_events_only(
    sessions: dict[str, Session],
) -> None:
    client, coordinator = sessions["client"], sessions["coordinator"]

    async def answer(msg: Msg) -> None:
        await msg.respond(b"served:" + msg.data)

    await coordinator.nc.subscribe("nons.exec.x", queue="nons.exec.x", cb=answer)
    events = await client.nc.subscribe("nons.events.>")
    await coordinator.nc.flush()

    assert await request_when_served(client.nc, "nons.exec.x", b"hello") == b"served:hello"
    await coordinator.nc.publish("nons.events.x.e1.execution.started", b"{}")
    event = await events.next_msg(timeout=5)
    assert event.subject == "nons.events.x.e1.execution.started"
    await client.nc.flush()
    assert client.violations() == []

    await client.nc.publish("nons.node.x.y", b"forged node call")
    await client.nc.publish("nons.events.x.e1.execution.completed", b"forged event")
    await client.nc.subscribe("nons.node.>")
    await client.nc.subscribe("nons.exec.>")
    await client.nc.flush()
    await wait_until(
        lambda: len(client.violations()) == 4, timeout=5, message=lambda: str(client.violations())
    )
    joined = "\n".join(client.violations()).lower()
    for fragment in (
        'publish to "nons.node.x.y"',
        'publish to "nons.events.x.e1.execution.completed"',
        'subscription to "nons.node.>"',
        'subscription to "nons.exec.>"',
    ):
        assert fragment in joined
    assert coordinator.violations() == []


async def test_actor_serves_node_subjects_and_coordinator_calls_them(
    sessions: dict[str, Session],
) -> None:
    actor, coordinator = sessions["actor"], sessions["coordinator"]

    async def run_node(msg: Msg) -> None:
        await msg.respond(b"node:" + msg.data)

    subject = "nons.node.x.n1"
    await actor.nc.subscribe(subject, queue=subject, cb=run_node)
    await actor.nc.subscribe("$SRV.PING")
    await actor.nc.flush()
    assert await request_when_served(coordinator.nc, subject, b"call") == b"node:call"
    assert actor.violations() == []
    assert coordinator.violations() == []

    await actor.nc.publish("nons.events.x.e1.node.completed", b"not an actor's job")
    await actor.nc.publish("nons.exec.x", b"not an actor's job")
    await actor.nc.subscribe("nons.exec.>")
    await actor.nc.subscribe("nons.events.>")
    await actor.nc.flush()
    await wait_until(
        lambda: len(actor.violations()) == 4, timeout=5, message=lambda: str(actor.violations())
    )

    await coordinator.nc.subscribe("nons.node.>")
    await coordinator.nc.flush()
    await wait_until(lambda: len(coordinator.violations()) == 1, timeout=5)
    assert 'subscription to "nons.node.>"' in coordinator.violations()[0].lower()


async def test_quickstart_runs_with_each_process_on_its_own_user(
    deploy_server: DeployServer, sessions: dict[str, Session], caplog: pytest.LogCaptureFixture
) -> None:
    # The compose topology in one process: a coordinator and an actor host of the
    # example network, each on the user compose gives it, and a client as `nons exec`.
    from examples.quickstart import network
    from nons.actors.host import ActorHost
    from nons.client import Client
    from nons.coordinator.service import Coordinator

    caplog.set_level("DEBUG", logger="nons")
    coordinator_session = await _connect(deploy_server.url("coordinator"))
    actor_session = await _connect(deploy_server.url("actor"))
    client = Client(sessions["client"].nc)
    received: list[str] = []

    async def on_event(msg: Msg) -> None:
        received.append(msg.subject)

    await sessions["client"].nc.subscribe("nons.events.quickstart.>", cb=on_event)
    try:
        async with (
            ActorHost(actor_session.nc, [network]),
            Coordinator(coordinator_session.nc, [network]),
        ):
            result = await client.execute("quickstart", "the app logs me out", timeout_s=20)
            assert result.metadata.execution_id
            assert result.output
            await wait_until(
                lambda: any(s.endswith(".execution.completed") for s in received), timeout=5
            )
            services = await discover(sessions["admin"].nc, timeout_s=0.5)
            names = {service["name"] for service in services}
            assert {"nons-coordinator", "nons-actor"} <= names
            recorded = await read_execution_events(
                sessions["admin"].nc, result.metadata.execution_id, network="quickstart"
            )
            assert recorded[0].type == "execution.started"
            assert recorded[-1].type == "execution.completed"
    finally:
        await coordinator_session.nc.close()
        await actor_session.nc.close()
    for session in (coordinator_session, actor_session, *sessions.values()):
        assert session.violations() == []
    assert "permissions violation" not in caplog.text.lower()
