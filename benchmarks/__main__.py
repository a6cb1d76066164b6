"""`python -m benchmarks`: run the suite, print the table, and save it as JSON.

Flags: `--quick` (about a minute, fewer samples), `--only NAME` (repeatable; one
scenario), `--no-save` (skip the JSON that every run writes to
`benchmarks/results/<timestamp>.json`, ignored by git), `--results-dir DIR` (write it
elsewhere), `--profile DIR` (py-spy profiles of every runtime's processes, see
`benchmarks.profiling`). `--save` is still accepted: saving is the default.
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

import msgspec

from benchmarks._harness import Bench, Sizes
from benchmarks.profiling import Profiler
from benchmarks.report import Figure, MachineInfo, Report, encode_report, render_report
from benchmarks.scenarios import SCENARIOS
from nons.runtime.server import find_server_binary

__all__ = ("RESULTS_DIR", "BenchOptions", "machine_info", "main", "parse_args", "save_report")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where each run's JSON goes unless `--results-dir` says otherwise (git-ignored)."""


class BenchOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the command line asked for."""

    quick: bool = False
    """A short smoke run (fewer samples, smaller networks)."""
    only: tuple[str, ...] = ()
    """Scenarios to run; all of them when empty."""
    save: bool = True
    """Write the report as JSON (`--no-save` turns it off)."""
    results_dir: Path = RESULTS_DIR
    """Directory of the JSON reports."""
    profile_dir: Path | None = None
    """Write py-spy profiles of every runtime's processes here (`--profile DIR`)."""


def parse_args(argv: list[str] | None = None) -> BenchOptions:
    """The options of `argv` (the process's arguments when `None`); exits on bad flags."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    saving = parser.add_mutually_exclusive_group()
    saving.add_argument(
        "--save",
        dest="save",
        action="store_true",
        default=True,
        help="write the JSON report (the default)",
    )
    saving.add_argument(
        "--no-save", dest="save", action="store_false", help="print the table only, no JSON"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        metavar="DIR",
        help="where the JSON report goes (default: benchmarks/results/)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record py-spy profiles (collapsed stacks) of each runtime's processes in DIR; "
        "summarize them with `python -m benchmarks.profiling DIR/*.txt`",
    )
    args = parser.parse_args(argv)
    return BenchOptions(
        quick=args.quick,
        only=tuple(args.only or ()),
        save=args.save,
        results_dir=args.results_dir,
        profile_dir=args.profile,
    )


def save_report(report: Report, directory: Path) -> Path:
    """Write `report` as `<directory>/<start time>[-quick].json`, creating the directory."""
    started = dt.datetime.fromisoformat(report.started_at).astimezone(dt.UTC)
    suffix = "-quick" if report.quick else ""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.strftime('%Y%m%dT%H%M%SZ')}{suffix}.json"
    path.write_bytes(encode_report(report))
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run the scenarios, print the report and save it unless `--no-save`."""
    options = parse_args(argv)
    names = list(options.only) or list(SCENARIOS)
    started_at = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    machine = machine_info()
    sys.stdout.write(f"running {', '.join(names)} on {machine.cores} cores...\n")
    sys.stdout.flush()
    profiler = Profiler(options.profile_dir) if options.profile_dir is not None else None
    figures = asyncio.run(_run(names, Sizes.for_run(quick=options.quick), profiler))
    report = Report(
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=time.perf_counter() - began,
        quick=options.quick,
        machine=machine,
        figures=figures,
    )
    sys.stdout.write(render_report(report) + "\n")
    if options.save:
        path = save_report(report, options.results_dir)
        sys.stdout.write(f"saved {path}\n")
    return 0


async def _run(names: list[str], sizes: Sizes, profiler: Profiler | None) -> list[Figure]:
    figures: list[Figure] = []
    async with Bench(sizes, profiler) as bench:
        for name in names:
            if profiler is not None:
                profiler.scenario = name
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
