"""Figures, ratios, percentiles and the printed table and JSON of a benchmark run.

Pure code (no I/O besides building strings and bytes), so that the arithmetic the
verdicts rest on is unit-tested. A figure is a measured value, the floor it is divided
by (measured in the same run on the same nats-server) and, when the issue sets one,
a target on the ratio.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = (
    "Figure",
    "MachineInfo",
    "Report",
    "Summary",
    "Target",
    "encode_report",
    "percentile",
    "ratio",
    "render_report",
    "summarize",
)

FigureKind = Literal["floor", "measure"]
"""A floor (raw nats-py) or a runtime measurement divided by a floor."""


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A bound on a figure's ratio: `ratio <= bound` or `ratio >= bound`."""

    op: Literal["<=", ">="]
    """Direction of the bound."""
    bound: float
    """The bound itself."""

    def holds(self, value: float | None) -> bool | None:
        """Whether `value` meets the target; `None` when there is no value to judge."""
        if value is None or math.isnan(value):
            return None
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


class Figure(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the report."""

    scenario: str
    """Scenario it belongs to (`latency`, `fanout`...)."""
    name: str
    """What was measured."""
    value: float
    """The measurement."""
    unit: str
    """Unit of `value` (`ms`, `exec/s`, `MiB`...)."""
    kind: FigureKind = "measure"
    """Floor or measurement."""
    floor: float | None = None
    """The floor `value` is divided by (same unit after any scaling), if any."""
    ratio: float | None = None
    """`value / floor` (or as the note explains); `None` for floors and absolute figures."""
    target: Target | None = None
    """The issue's bound on `ratio` (or on `value` when there is no ratio)."""
    note: str = ""
    """How the ratio was formed, or what else to know."""

    @property
    def verdict(self) -> bool | None:
        """Whether the target holds (`None` without a target)."""
        if self.target is None:
            return None
        return self.target.holds(self.ratio if self.ratio is not None else self.value)


class MachineInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where the run happened."""

    cores: int
    """Logical CPUs."""
    cpu_model: str
    """CPU model name."""
    python: str
    """Python version."""
    platform: str
    """OS and kernel."""
    nats_server: str
    """nats-server version line."""
    nats_py: str
    """nats-py version."""
    msgspec: str
    """msgspec version."""
    opentelemetry_sdk: str
    """OpenTelemetry SDK version."""


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """A whole run: machine, options and every figure in order."""

    started_at: str
    """ISO timestamp of the start of the run."""
    duration_s: float
    """Wall time of the run."""
    quick: bool
    """Whether this was a `--quick` smoke run (fewer samples, smaller networks)."""
    machine: MachineInfo
    """Where it ran."""
    figures: list[Figure]
    """Floors and measurements, grouped by scenario."""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """Percentiles of a sample."""

    n: int
    """Sample count."""
    p50: float
    """Median."""
    p99: float
    """99th percentile."""
    mean: float
    """Arithmetic mean."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0 to 100) with linear interpolation between ranks.

    Raises:
        ValueError: on an empty sample or `q` outside 0..100.
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    weight = position - low
    return ordered[low] * (1.0 - weight) + ordered[high] * weight


def summarize(samples: Sequence[float]) -> Summary:
    """p50, p99 and mean of a non-empty sample.

    Raises:
        ValueError: on an empty sample.
    """
    if not samples:
        raise ValueError("summary of an empty sample")
    return Summary(
        n=len(samples),
        p50=percentile(samples, 50.0),
        p99=percentile(samples, 99.0),
        mean=math.fsum(samples) / len(samples),
    )


def ratio(value: float, floor: float) -> float:
    """`value / floor`; NaN when the floor is not a positive number (never divides by 0)."""
    if not floor > 0.0 or math.isnan(value):
        return math.nan
    return value / floor


def render_report(report: Report) -> str:
    """The human table: machine and versions first, then each scenario's floors and figures."""
    machine = report.machine
    lines = [
        f"NoN benchmarks {'(quick) ' if report.quick else ''}started {report.started_at}, "
        f"took {report.duration_s:.0f} s",
        f"machine: {machine.cores} cores, {machine.cpu_model}, {machine.platform}",
        f"versions: Python {machine.python}, {machine.nats_server}, nats-py {machine.nats_py}, "
        f"msgspec {machine.msgspec}, opentelemetry-sdk {machine.opentelemetry_sdk}",
        "",
    ]
    lines.extend(render_table(report.figures))
    missed = [f for f in report.figures if f.verdict is False]
    lines.append("")
    if missed:
        lines.append(f"targets missed: {len(missed)}")
        lines.extend(f"  - {f.scenario}: {f.name}" for f in missed)
    else:
        judged = sum(1 for f in report.figures if f.verdict is not None)
        lines.append(f"targets met: {judged} of {judged}")
    return "\n".join(lines)


def render_table(figures: Iterable[Figure]) -> list[str]:
    """Rows of a fixed-width table; floors are marked and printed before their figures."""
    header = ("scenario", "figure", "value", "floor", "ratio", "target", "ok", "note")
    rows: list[tuple[str, ...]] = [header]
    for figure in figures:
        verdict = figure.verdict
        rows.append(
            (
                figure.scenario,
                ("[floor] " if figure.kind == "floor" else "") + figure.name,
                f"{_number(figure.value)} {figure.unit}",
                "" if figure.floor is None else _number(figure.floor),
                "" if figure.ratio is None else f"{_number(figure.ratio)}x",
                "" if figure.target is None else str(figure.target),
                {True: "yes", False: "NO", None: ""}[verdict],
                figure.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    out = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.append("  ".join([*cells, row[-1]]).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths) + "  ----")
    return out


def encode_report(report: Report) -> bytes:
    """The report as indented JSON (what `--save` writes)."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2)


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
