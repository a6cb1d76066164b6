"""Start `python -m nons ...` as a user would, watch its output, and stop it by PID."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ("REPO_ROOT", "NonsProcess", "nons_env", "nons_process", "python_process")

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: put on the child's PYTHONPATH so `python -m nons` works uninstalled."""

_TAIL_CHARS = 4000


def nons_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child: the repo importable, output unbuffered."""
    env = dict(os.environ)
    python_path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), python_path) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides or {})
    return env


class NonsProcess:
    """A running `python -m nons` child whose stdout and stderr go to files."""

    def __init__(
        self, process: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path
    ) -> None:
        self.process = process
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return _read(self.stdout_path) + _read(self.stderr_path)

    def find_line(self, pattern: str | re.Pattern[str]) -> str | None:
        """The first output line matching `pattern` (a regex, searched), if any."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        for line in self.output().splitlines():
            if regex.search(line):
                return line
        return None

    def wait_for_line(self, pattern: str | re.Pattern[str], *, timeout: float) -> str:
        """Block until a line matches; fail fast when the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._check(pattern)
            if line is not None:
                return line
            if time.monotonic() >= deadline:
                raise AssertionError(self._describe(f"no line matching {pattern!r} in {timeout} s"))
            time.sleep(0.02)

    async def wait_for_line_async(
        self,
        pattern: str | re.Pattern[str],
        *,
        timeout: float,  # noqa: ASYNC109 - a polling bound, like wait_for_line
    ) -> str:
        """`wait_for_line` that lets the event loop run meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._check(pattern)
            if line is not None:
                return line
            if time.monotonic() >= deadline:
                raise AssertionError(self._describe(f"no line matching {pattern!r} in {timeout} s"))
            await anyio.sleep(0.02)

    def stop(self, *, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill(timeout=timeout)

    def kill(self, *, timeout: float = 10.0) -> int:
        """SIGKILL (a crash, for failover tests) and reap; returns the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=timeout)

    def _check(self, pattern: str | re.Pattern[str]) -> str | None:
        exited = self.process.poll() is not None  # read the exit state before the output
        line = self.find_line(pattern)
        if line is None and exited:
            raise AssertionError(
                self._describe(f"exited with code {self.process.returncode} before {pattern!r}")
            )
        return line

    def _describe(self, what: str) -> str:
        tail = self.output()[-_TAIL_CHARS:]
        return f"nons process {self.pid} {what}; output:\n{tail}"


@contextlib.contextmanager
def nons_process(
    args: Sequence[str],
    *,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    name: str = "nons",
    stop_timeout: float = 10.0,
) -> Iterator[NonsProcess]:
    """Run `python -m nons *args` for the duration of the block, then stop it by PID.

    Args:
        args: the command line after `python -m nons`.
        tmp_path: where `<name>.stdout` and `<name>.stderr` are written.
        env: the child's full environment (default: `nons_env()`).
        name: file name stem, to tell several processes of one test apart.
        stop_timeout: bound on each wait when stopping.
    """
    with python_process(
        ["-m", "nons", *args], tmp_path=tmp_path, env=env, name=name, stop_timeout=stop_timeout
    ) as process:
        yield process


@contextlib.contextmanager
def python_process(
    args: Sequence[str],
    *,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    name: str = "python",
    stop_timeout: float = 10.0,
) -> Iterator[NonsProcess]:
    """Run `python *args` (this interpreter) for the block; see `nons_process`."""
    stdout_path = tmp_path / f"{name}.stdout"
    stderr_path = tmp_path / f"{name}.stderr"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = _popen([sys.executable, *args], env, out, err)
        handle = NonsProcess(process, stdout_path, stderr_path)
        try:
            yield handle
        finally:
            handle.stop(timeout=stop_timeout)


def _popen(
    command: list[str], env: Mapping[str, str] | None, out: IO[bytes], err: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env=dict(env) if env is not None else nons_env(),
        cwd=REPO_ROOT,
        start_new_session=True,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
