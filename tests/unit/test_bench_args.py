"""`make bench` prints the table and writes JSON by default; `--no-save` skips the file.

Only the argument handling and the file writing are tested: the benchmarks themselves
never run in tests (issue 16, item 6).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import msgspec
import pytest

from benchmarks.__main__ import RESULTS_DIR, parse_args, save_report
from benchmarks.report import MachineInfo, Report
from tests.support.processes import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

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
REPORT = Report(
    started_at="2026-11-25T14:53:48+00:00",
    duration_s=91.0,
    quick=False,
    machine=MACHINE,
    figures=[],
)


def test_json_is_written_by_default_to_benchmarks_results() -> None:
    options = parse_args([])
    assert options.save is True
    assert options.results_dir == RESULTS_DIR
    assert RESULTS_DIR == REPO_ROOT / "benchmarks" / "results"


def test_no_save_skips_the_json() -> None:
    assert parse_args(["--no-save"]).save is False
    assert parse_args(["--quick", "--no-save", "--only", "latency"]).save is False


def test_save_is_still_accepted_and_results_dir_can_move(tmp_path: Path) -> None:
    assert parse_args(["--save"]).save is True
    options = parse_args(["--results-dir", str(tmp_path)])
    assert options.results_dir == tmp_path


def test_save_and_no_save_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--save", "--no-save"])
    assert "not allowed with" in capsys.readouterr().err


def test_save_report_creates_the_directory_and_writes_the_report(tmp_path: Path) -> None:
    directory = tmp_path / "results"
    path = save_report(REPORT, directory)
    assert path == directory / "20261125T145348Z.json"
    assert msgspec.json.decode(path.read_bytes(), type=Report) == REPORT
    quick = save_report(msgspec.structs.replace(REPORT, quick=True), directory)
    assert quick == directory / "20261125T145348Z-quick.json"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_results_are_ignored_by_git() -> None:
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "benchmarks/results/20261125T145348Z.json"],
        cwd=REPO_ROOT,
        check=False,
    )
    assert ignored.returncode == 0
