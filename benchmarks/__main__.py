"""`python -m benchmarks`: run the suite, print the table, and save JSON when asked.

Flags: `--quick` (about a minute, fewer samples), `--only NAME` (repeatable; one
scenario), `--save` (write `benchmarks/results/<timestamp>.json`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import Bench, Sizes
from benchmarks.report import Figure, MachineInfo, Report, encode_report, render_report
from benchmarks.scenarios import SCENARIOS
from nons.runtime.server import find_server_binary

__all__ = ("machine_info", "main")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where `--save` writes."""


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the scenarios, print (and maybe save) the report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args(argv)
    names = args.only or list(SCENARIOS)
    started_at = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    machine = machine_info()
    sys.stdout.write(f"running {', '.join(names)} on {machine.cores} cores...\n")
    sys.stdout.flush()
    figures = asyncio.run(_run(names, Sizes.for_run(quick=args.quick)))
    report = Report(
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=time.perf_counter() - began,
        quick=args.quick,
        machine=machine,
        figures=figures,
    )
    sys.stdout.write(render_report(report) + "\n")
    if args.save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_bytes(encode_report(report))
        sys.stdout.write(f"saved {path}\n")
    return 0


async def _run(names: list[str], sizes: Sizes) -> list[Figure]:
    figures: list[Figure] = []
    async with Bench(sizes) as bench:
        for name in names:
            began = time.perf_counter()
            result = await SCENARIOS[name](bench)
            figures.extend(result)
            sys.stdout.write(f"  {name}: {time.perf_counter() - began:.1f} s\n")
            sys.stdout.flush()
    return figures


def machine_info() -> MachineInfo:
    """Cores, CPU, OS and the versions the figures depend on."""
    return MachineInfo(
        cores=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.release()}",
        nats_server=_nats_server_version(),
        nats_py=_version("nats-py"),
        msgspec=_version("msgspec"),
        opentelemetry_sdk=_version("opentelemetry-sdk"),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _nats_server_version() -> str:
    try:
        out = subprocess.run(
            [find_server_binary(), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "nats-server ?"
    return out.stdout.strip() or "nats-server ?"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
