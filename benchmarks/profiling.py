"""Sampling profiles of the bench's processes with py-spy: where a scenario's time goes.

`python -m benchmarks --profile DIR` attaches `py-spy record` to the coordinator and
every actor of each runtime a scenario starts, for as long as that runtime lives, and
writes one file of collapsed stacks per process (`DIR/<scenario>-<n>-<label>.txt`,
the format flame-graph tools read). `python -m benchmarks.profiling FILE...` prints
the summary that `benchmarks/README.md` quotes: the share of samples spent in each
function itself, and in each function with everything it calls. Idle time (the event
loop waiting in epoll) is not sampled, so the shares are of the CPU the process used.

py-spy is a separate tool (`pip install py-spy`); it needs to be allowed to ptrace
the children (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("Profiler", "py_spy", "summarize")

SAMPLE_RATE = 250
"""Samples per second: enough for a few-second scenario, cheap for the sampled process."""

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
_PACKAGE_ROOT = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def py_spy() -> str:
    """The py-spy executable next to this interpreter, else on PATH.

    Raises:
        SystemExit: py-spy is not installed (it is not a dependency of the project).
    """
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return found


class Profiler:
    """Attaches py-spy to the bench's processes and stops it with them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.executable = py_spy()
        self.scenario = "bench"
        self._runs = collections.Counter[str]()
        directory.mkdir(parents=True, exist_ok=True)

    def attach(self, processes: Iterable[tuple[str, int]]) -> list[subprocess.Popen[bytes]]:
        """Start recording each `(label, pid)`; the recorders to hand to `detach`."""
        self._runs[self.scenario] += 1
        run = self._runs[self.scenario]
        recorders = []
        for label, pid in processes:
            output = self.directory / f"{self.scenario}-{run}-{label}.txt"
            recorders.append(
                subprocess.Popen(
                    [
                        self.executable,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(SAMPLE_RATE),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(output),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        return recorders

    @staticmethod
    def detach(recorders: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
        """Stop each recorder (SIGINT makes py-spy write its file), by PID, bounded."""
        for recorder in recorders:
            if recorder.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(recorder.pid, signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait(timeout=timeout)


def _frame_name(frame: str) -> str:
    """`function (file)` with the line number dropped and the install prefix cut."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = _PACKAGE_ROOT.sub("", match["file"])
    return f"{match['function']} ({path})"


def summarize(path: Path, top: int = 12) -> str:
    """The self and inclusive shares of a collapsed-stacks file, as a text table."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    lines = [f"{path.name}: {samples} samples at {SAMPLE_RATE}/s (CPU, idle excluded)"]
    if samples == 0:
        return lines[0]
    lines.append("  self %  function")
    lines += [f"  {100.0 * n / samples:6.1f}  {name}" for name, n in own.most_common(top)]
    lines.append("  incl %  function (our code and the libraries it calls)")
    inclusive = [(name, n) for name, n in total.most_common() if 100.0 * n / samples < 99.5][:top]
    lines += [f"  {100.0 * n / samples:6.1f}  {name}" for name, n in inclusive]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the summary of each collapsed-stacks file given."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--top", type=int, default=12, help="rows per table (default 12)")
    args = parser.parse_args(argv)
    for path in args.files:
        sys.stdout.write(summarize(path, args.top) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
