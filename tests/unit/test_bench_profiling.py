"""`--profile DIR` and the profile summary: flags parsed, collapsed stacks read right.

py-spy itself never runs in tests (it is not a dependency); the summary is checked on
a collapsed-stacks file written here, in the format `py-spy record --format raw` writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.__main__ import parse_args
from benchmarks.profiling import summarize

if TYPE_CHECKING:
    from pathlib import Path

SITE = "/work/.venv/lib/python3.11/site-packages"
LOOP = "run (asyncio/base_events.py:600)"


def test_profile_flag_names_the_directory(tmp_path: Path) -> None:
    assert parse_args([]).profile_dir is None
    assert parse_args(["--profile", str(tmp_path)]).profile_dir == tmp_path


def test_summary_gives_self_and_inclusive_shares(tmp_path: Path) -> None:
    stacks = tmp_path / "fanout-1-coordinator.txt"
    stacks.write_text(
        f"{LOOP};emit (nons/events.py:10);publish ({SITE}/nats/aio/client.py:40) 30\n"
        f"{LOOP};emit (nons/events.py:12) 10\n"
        f"{LOOP};send (nons/attempt.py:5);encode (msgspec.py:1) 60\n"
        "not a stack line\n"
    )
    lines = summarize(stacks).splitlines()
    assert lines[0].startswith("fanout-1-coordinator.txt: 100 samples")
    incl = lines.index("  incl %  function (our code and the libraries it calls)")
    own, inclusive = lines[2:incl], lines[incl + 1 :]
    assert own[0].split() == ["60.0", "encode", "(msgspec.py)"]
    assert "    30.0  publish (nats/aio/client.py)" in own  # install prefix cut
    assert "    10.0  emit (nons/events.py)" in own  # its two lines merged into one row
    assert "    40.0  emit (nons/events.py)" in inclusive  # its own 10 and publish's 30
    assert not any("base_events" in row for row in inclusive)  # 100%: says nothing


def test_an_empty_profile_says_so(tmp_path: Path) -> None:
    stacks = tmp_path / "idle.txt"
    stacks.write_text("")
    assert summarize(stacks) == "idle.txt: 0 samples at 250/s (CPU, idle excluded)"
