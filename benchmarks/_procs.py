"""Child processes of the suite: start, wait for their ready line, read RSS and CPU, stop by PID.

Every child is started here and stopped here (SIGTERM, bounded wait, then SIGKILL),
so a failed scenario leaves nothing behind. Readiness is a line on the child's stdout;
its stderr goes to a log file quoted when it fails.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("REPO_ROOT", "Child", "cpu_seconds", "rss_mib")

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout the children import `nons` and `benchmarks` from."""

READY = b"ready"
"""What a child prints (as the start of a line) once it serves."""

_TICKS = os.sysconf("SC_CLK_TCK")


class Child:
    """One `python -m benchmarks._serve ...` process, owned by the suite."""

    def __init__(self, label: str, args: Sequence[str], env: Mapping[str, str] | None = None):
        """Start the child (it is not ready yet: call `wait_ready`)."""
        self.label = label
        merged = dict(os.environ)
        merged.update(env or {})
        merged["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), merged.get("PYTHONPATH", "")) if p
        )
        self._log = tempfile.NamedTemporaryFile(
            prefix=f"nons-bench-{label}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO_ROOT,
            env=merged,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The child's PID."""
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the child prints its ready line.

        Raises:
            RuntimeError: the child exited or stayed silent past `timeout`.
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        while READY not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise RuntimeError(f"{self.label} (pid {self.pid}) not ready:\n{self._tail()}")
            readable, _, _ = select.select([self.process.stdout], [], [], min(remaining, 0.2))
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buffer += chunk

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait (bounded), then SIGKILL; reap and close the log."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def _tail(self) -> str:
        self._log.flush()
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return text[-3000:]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS from /proc), in MiB; NaN when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # Fields after the command: state is [0], utime [11], stime [12].
    return (int(fields[11]) + int(fields[12])) / _TICKS
