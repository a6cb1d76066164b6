"""`nons exec NETWORK --batch FILE.jsonl` against `nons up`, and the batch example, as processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.support.processes import REPO_ROOT, nons_env, nons_process

if TYPE_CHECKING:
    from pathlib import Path

READY_S = 30.0
"""Bound on a process's startup (interpreter, imports, connect)."""


def offline_env() -> dict[str, str]:
    env = nons_env()
    for name in ("NONS_NATS_URL", "ANTHROPIC_API_KEY", "NONS_DEFAULT_PROVIDER", "OPENAI_API_KEY"):
        env.pop(name, None)
    return env


def run_python(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def test_exec_batch_prints_replies_in_line_order_and_exits_1_on_a_failure(
    nats_url: str, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"input": f"message number {i}", "execution_id": f"batch-line-{i}"})
        for i in range(8)
    ]
    lines.insert(3, json.dumps({"content": "x", "bogus": 1}))  # fails validation
    lines.insert(5, "")  # blank lines are not inputs
    batch = tmp_path / "inputs.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    good = tmp_path / "good.jsonl"
    good.write_text('"one"\n"two"\n"three"\n', encoding="utf-8")

    with nons_process(
        ["--nats-url", nats_url, "up", "examples.quickstart:network"],
        tmp_path=tmp_path,
        env=offline_env(),
        name="up",
    ) as up:
        up.wait_for_line(r"^nons up ready: ", timeout=READY_S)
        as_json = run_python(
            "-m", "nons", "--nats-url", nats_url, "exec", "quickstart",
            "--batch", str(batch), "--concurrency", "3", "--json",
        )  # fmt: skip
        as_text = run_python(
            "-m", "nons", "--nats-url", nats_url, "exec", "quickstart", "--batch", "-",
            stdin=good.read_text(encoding="utf-8"),
        )  # fmt: skip

    assert as_json.returncode == 1, as_json.stderr
    replies = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(replies) == 9
    ids = [reply["execution_id"] for reply in replies]
    assert [i for i in ids if i.startswith("batch-line-")] == [f"batch-line-{i}" for i in range(8)]
    assert ids.index("batch-line-3") == 4  # the failing line keeps its place
    statuses = [reply["status"] for reply in replies]
    assert statuses == ["completed"] * 3 + ["failed"] + ["completed"] * 5
    assert replies[3]["error"]["type"] == "validation_error"
    assert "batch: 9/9 done, 1 failed" in as_json.stderr
    assert re.search(r"batch: 9/9 done, 1 failed, [\d.]+ exec/s in [\d.]+ s", as_json.stderr)
    assert "\r" not in as_json.stderr  # not a terminal: plain lines, no redraws
    assert "[mock provider: offline output, not a real model answer]" in as_json.stderr

    assert as_text.returncode == 0, as_text.stderr
    shown = as_text.stdout.splitlines()
    assert [line.split(" ")[:2] for line in shown] == [
        ["#1", "completed:"],
        ["#2", "completed:"],
        ["#3", "completed:"],
    ]
    assert "batch: 3 done, 0 failed" in as_text.stderr  # stdin: no total known


def test_exec_batch_usage_errors() -> None:
    both = run_python("-m", "nons", "exec", "quickstart", "x", "--batch", "f.jsonl")
    assert both.returncode == 2
    assert "either INPUT or --batch FILE" in both.stderr
    missing = run_python("-m", "nons", "exec", "quickstart", "--batch", "/no/such/file.jsonl")
    assert missing.returncode == 2
    assert "--batch /no/such/file.jsonl: cannot read it" in missing.stderr


def test_batch_example_runs_offline() -> None:
    result = run_python("examples/batch.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    items = re.findall(r"^#\s*(\d+) (\w+)", out, flags=re.MULTILINE)
    assert items == [(str(i), "completed") for i in range(20)]
    assert re.search(r"batch: 20 inputs, 0 failed, [\d.]+ s total", out)
    streamed = re.findall(r"input #\s*(\d+) completed", out)
    assert sorted(int(i) for i in streamed) == list(range(10))
    assert "mock provider" in out
