"""A private, throwaway PostgreSQL cluster for tests: initdb in a temporary folder, stop by PID.

The server listens on a free loopback port with its unix socket in the same folder,
trusts local connections (a password in a DSN is accepted and ignored) and runs with
`fsync=off`. PostgreSQL refuses to run as root, so as root the cluster belongs to the
`postgres` account that Debian's package creates and its commands run through
`runuser`. Tests skip only when the PostgreSQL binaries are not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ("PostgresServer", "find_bindir", "postgres_server")

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin")
_RUN_AS = "postgres"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


def find_bindir() -> Path | None:
    """The newest folder holding `initdb` and `pg_ctl`, else `None`."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates: list[Path] = []
    for pattern in _SEARCH:
        candidates += [
            path for path in Path("/").glob(pattern.lstrip("/")) if (path / "initdb").exists()
        ]
    if not candidates:
        return None
    return max(candidates, key=lambda path: [int(n) for n in re.findall(r"\d+", str(path))])


class PostgresServer:
    """One cluster; `start`, `stop` (by PID) and `start` again keep its data and port."""

    def __init__(self, bindir: Path, root: Path, run_as: str | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "postgres.log"
        self.run_as = run_as
        self.port = _free_port()
        self.pid: int | None = None

    def dsn(self, database: str = "postgres", *, password: str | None = None) -> str:
        """A URI DSN for `database` as the superuser `postgres` over loopback TCP."""
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (`initdb`)."""
        self.socket_dir.mkdir()
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        """Start on `self.port` and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(_START_TIMEOUT_S)),
                "start",
            ]
        )
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL after a bound; waits until it is gone."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        if not _wait_gone(pid, _STOP_TIMEOUT_S):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)

    def _run(self, command: Sequence[str]) -> None:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            argv,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S + 30,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}{log}"
            )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started private cluster for the block, stopped by PID and deleted afterwards.

    Skips the test when PostgreSQL is not installed (`make test` installs it as root),
    except in CI (`CI` set), where a missing server is a failure, not a silent skip.
    """
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; `make test` should have installed them")
        pytest.skip(message)
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_RUN_AS)
        except KeyError:
            raise RuntimeError(
                "running as root, and PostgreSQL refuses root: the `postgres` account "
                "(created by Debian's postgresql package) is missing"
            ) from None
        run_as = _RUN_AS
    root = Path(tempfile.mkdtemp(prefix="nons-pg-"))
    server = PostgresServer(bindir, root, run_as)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
