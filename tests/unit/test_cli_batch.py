"""The pure parts of `nons exec --batch`: parsing, the progress line, item lines, line counts."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from nons import cli
from nons.cli._batch import BatchProgress, count_lines, item_line
from nons.cli.commands.exec import batch_concurrency
from nons.client.batch import IndexedResult
from nons.core.errors import ConfigurationError
from nons.core.results import ErrorInfo, ExecutionMetadata

if TYPE_CHECKING:
    from pathlib import Path

    from nons.core.results import ExecutionStatus


def result(
    index: int, status: ExecutionStatus = "completed", output: object = "ok"
) -> IndexedResult:
    return IndexedResult(
        index=index,
        output=None if status == "failed" else output,
        status=status,
        metadata=ExecutionMetadata(execution_id=f"e{index}", network="n", is_mock=True),
        error=ErrorInfo(type="operator_error", message="it broke") if status == "failed" else None,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_exec_batch_arguments() -> None:
    args = cli.build_parser().parse_args(
        ["exec", "net", "--batch", "in.jsonl", "--concurrency", "3"]
    )
    assert (args.network, args.input, args.batch, args.concurrency) == ("net", None, "in.jsonl", 3)
    assert batch_concurrency(args) == 3
    online = cli.build_parser().parse_args(["exec", "net", "--batch", "f"])
    assert batch_concurrency(online) == 8
    batch = cli.build_parser().parse_args(["exec", "net", "--batch", "f", "--mode", "batch"])
    assert batch_concurrency(batch) == 256


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "net"],
        ["exec", "net", "x", "--batch", "f"],
        ["exec", "net", "--batch", "f", "--concurrency", "0"],
    ],
)
def test_exec_needs_exactly_one_of_input_and_batch(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_progress_on_a_terminal_redraws_one_line_at_a_bounded_rate() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = BatchProgress(stream, 4, interactive=True, clock=clock)
    clock.now += 1.0
    progress.add(result(0))
    progress.add(result(1, "failed"))  # same instant: not redrawn
    assert stream.getvalue() == "\rbatch: 1/4 done, 0 failed, 1.0 exec/s\x1b[K"
    clock.now += 1.0
    progress.add(result(2))
    assert stream.getvalue().endswith("\rbatch: 3/4 done, 1 failed, 1.5 exec/s\x1b[K")
    progress.clear()
    assert stream.getvalue().endswith("\r\x1b[K")
    progress.add(result(3))
    progress.finish()
    assert stream.getvalue().endswith("\r\x1b[Kbatch: 4/4 done, 1 failed, 2.0 exec/s in 2.0 s\n")
    assert "\n" not in stream.getvalue()[:-1]
    assert progress.mock


def test_progress_in_a_log_writes_plain_lines_every_interval() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = BatchProgress(stream, None, interactive=False, clock=clock)
    for index in range(10):
        clock.now += 0.5
        progress.add(result(index))
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "batch: 1 done, 0 failed, 2.0 exec/s",
        "batch: 5 done, 0 failed, 2.0 exec/s",
        "batch: 9 done, 0 failed, 2.0 exec/s",
        "batch: 10 done, 0 failed, 2.0 exec/s in 5.0 s",
    ]
    assert "\r" not in stream.getvalue()


def test_item_lines_are_single_lines() -> None:
    assert item_line(result(0, output="two\nlines")) == "#1 completed: two\\nlines"
    assert item_line(result(1, "partial", {"a": [1, "é"]})) == '#2 partial: {"a": [1, "é"]}'
    assert item_line(result(2, "failed")) == "#3 failed: operator_error: it broke (execution e2)"


def test_count_lines_skips_blank_ones(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('"a"\n\n  \n{"input": 1}\n"c"', encoding="utf-8")
    assert count_lines(str(path)) == 3
    with pytest.raises(ConfigurationError, match="cannot read it"):
        count_lines(str(tmp_path / "missing.jsonl"))
