import math

import msgspec
import pytest

from benchmarks.report import (
    Figure,
    MachineInfo,
    Report,
    Target,
    encode_report,
    percentile,
    ratio,
    render_report,
    summarize,
)

MACHINE = MachineInfo(
    cores=2,
    cpu_model="Test CPU",
    python="3.11.7",
    platform="Linux 6",
    nats_server="nats-server: v2.15.1",
    nats_py="2.16.0",
    msgspec="0.22.0",
    opentelemetry_sdk="1.45.2",
)


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_summarize_gives_p50_p99_and_mean() -> None:
    summary = summarize([float(i) for i in range(1, 101)])
    assert summary.n == 100
    assert summary.p50 == pytest.approx(50.5)
    assert summary.p99 == pytest.approx(99.01)
    assert summary.mean == pytest.approx(50.5)


def test_ratio_never_divides_by_zero() -> None:
    assert ratio(3.0, 2.0) == pytest.approx(1.5)
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(1.0, -1.0))
    assert math.isnan(ratio(math.nan, 1.0))


def test_target_judges_both_directions() -> None:
    at_most = Target(op="<=", bound=1.5)
    at_least = Target(op=">=", bound=0.4)
    assert at_most.holds(1.5) is True
    assert at_most.holds(1.51) is False
    assert at_least.holds(0.39) is False
    assert at_least.holds(0.4) is True
    assert at_most.holds(None) is None
    assert at_most.holds(math.nan) is None
    assert str(at_most) == "<= 1.5"


def test_verdict_uses_ratio_then_value() -> None:
    with_floor = Figure(
        scenario="latency",
        name="p50",
        value=2.0,
        unit="ms",
        floor=1.0,
        ratio=2.0,
        target=Target(op="<=", bound=1.5),
    )
    absolute = Figure(
        scenario="memory", name="rss", value=50.0, unit="MiB", target=Target(op="<=", bound=64)
    )
    untargeted = Figure(scenario="latency", name="floor", value=1.0, unit="ms", kind="floor")
    assert with_floor.verdict is False
    assert absolute.verdict is True
    assert untargeted.verdict is None


def _report(figures: list[Figure]) -> Report:
    return Report(
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=12.0,
        quick=False,
        machine=MACHINE,
        figures=figures,
    )


def test_render_report_prints_machine_floors_and_verdicts() -> None:
    figures = [
        Figure(scenario="latency", name="chain p50", value=0.8, unit="ms", kind="floor"),
        Figure(
            scenario="latency",
            name="single p50",
            value=1.2,
            unit="ms",
            floor=0.8,
            ratio=1.5,
            target=Target(op="<=", bound=1.5),
            note="ok",
        ),
        Figure(
            scenario="fanout",
            name="w1000",
            value=300.0,
            unit="ms",
            floor=100.0,
            ratio=3.0,
            target=Target(op="<=", bound=2.0),
        ),
    ]
    text = render_report(_report(figures))
    assert "2 cores, Test CPU" in text
    assert "nats-server: v2.15.1" in text
    assert "nats-py 2.16.0" in text
    assert "[floor] chain p50" in text
    assert "1.50x" in text
    assert "targets missed: 1" in text
    assert "- fanout: w1000" in text
    lines = text.splitlines()
    single = next(line for line in lines if "single p50" in line)
    assert " yes " in single


def test_render_report_all_met() -> None:
    figure = Figure(
        scenario="memory", name="rss", value=40.0, unit="MiB", target=Target(op="<=", bound=64)
    )
    assert "targets met: 1 of 1" in render_report(_report([figure]))


def test_encode_report_round_trips() -> None:
    report = _report(
        [Figure(scenario="s", name="n", value=1.0, unit="ms", target=Target(op=">=", bound=0.4))]
    )
    decoded = msgspec.json.decode(encode_report(report), type=Report)
    assert decoded == report
