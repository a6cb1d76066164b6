"""`nons sink jsonl`: every event once, as its wire JSON, across restarts and redeliveries."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from nons.core.errors import ConfigurationError
from nons.core.types import ModelProvider
from nons.providers import registry
from nons.providers.settings import ProviderSettings
from nons.runtime.connection import ConnectionSettings, connect_nats
from nons.sinks import JsonlSink, ReceivedEvent, SinkSettings, run_sink
from tests.support.processes import nons_process
from tests.support.sinks import TERMINAL, recorded_event_count, run_inputs, serving, sink_network
from tests.support.sinks import unique as unique_name
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from nats.aio.client import Client as NatsClient


@pytest.fixture(autouse=True)
def mock_provider() -> Iterator[None]:
    registry.configure_providers(ProviderSettings(default_provider=ModelProvider.MOCK))
    yield
    registry.reset_providers()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await connect_nats(ConnectionSettings(url=nats_url, name="nons-sink-jsonl-test"))
    try:
        yield client
    finally:
        await client.close()


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_every_event_once_in_order_and_a_replay_adds_nothing(
    nats_url: str, nc: NatsClient, tmp_path: Path
) -> None:
    name = unique_name("sink-jsonl")
    async with serving(nats_url, sink_network(name)) as client:
        results = await run_inputs(client, name, ["hello", "fail now"])
    assert [result.status for result in results] == ["completed", "failed"]
    expected = await recorded_event_count(nc, name, results)

    out = tmp_path / "events.jsonl"
    settings = SinkSettings(name=unique_name("jsonl"), network=name, max_events=expected)
    async with JsonlSink(out) as sink:
        stats = await run_sink(nc, sink, settings)
    assert (stats.events, stats.stopped_by, sink.written) == (expected, "count", expected)
    lines = read_lines(out)
    assert len(lines) == expected
    for result in results:
        mine = [line for line in lines if line["execution_id"] == result.execution_id]
        assert mine[0]["type"] == "execution.started"
        assert mine[-1]["type"] in TERMINAL
        assert {line["network"] for line in mine} == {name}
    completed = next(line for line in lines if line["type"] == "execution.completed")
    assert completed["usage"]["total_tokens"] == results[0].metadata.total_tokens > 0
    failed = next(line for line in lines if line["type"] == "execution.failed")
    assert results[1].error is not None
    assert failed["error"]["type"] == results[1].error.type
    position = json.loads(out.with_name("events.jsonl.pos").read_text())
    assert position["offset"] == out.stat().st_size

    # The same consumer has nothing left: everything was acknowledged.
    again = SinkSettings(name=settings.name, network=name, idle_timeout_s=0.5)
    async with JsonlSink(out) as sink:
        stats = await run_sink(nc, sink, again)
    assert (stats.events, stats.stopped_by) == (0, "idle")

    # A new consumer replays the whole stream into the same file: every event is a duplicate.
    replay = SinkSettings(name=unique_name("jsonl"), network=name, max_events=expected)
    async with JsonlSink(out) as sink:
        stats = await run_sink(nc, sink, replay)
    assert (stats.events, sink.written, sink.duplicates) == (expected, 0, expected)
    assert read_lines(out) == lines


async def test_lines_after_the_recorded_position_are_cut_and_written_again(
    tmp_path: Path,
) -> None:
    out = tmp_path / "crash.jsonl"

    def event(sequence: int) -> ReceivedEvent:
        data = json.dumps({"type": "x", "n": sequence}).encode()
        return ReceivedEvent(stream_sequence=sequence, subject="s", data=data, event=None)

    async with JsonlSink(out) as sink:
        await sink.write([event(1), event(2)])
    with out.open("ab") as file:  # a crash after writing, before recording the position
        file.write(b'{"type": "x", "n": 3}\n{"type": "x", "n"')
    async with JsonlSink(out) as sink:
        assert sink.position.stream_sequence == 2
        await sink.write([event(2), event(3), b_not_json(4)])
        assert (sink.written, sink.duplicates, sink.malformed) == (1, 1, 1)
    assert [line["n"] for line in read_lines(out)] == [1, 2, 3]
    assert json.loads(out.with_name("crash.jsonl.pos").read_text())["stream_sequence"] == 4


async def test_an_existing_file_without_position_is_appended_to(tmp_path: Path) -> None:
    out = tmp_path / "kept.jsonl"
    out.write_text('{"kept": true}\n')
    data = b'{"type": "x", "n": 1}'
    async with JsonlSink(out) as sink:
        await sink.write([ReceivedEvent(stream_sequence=1, subject="s", data=data, event=None)])
    assert read_lines(out) == [{"kept": True}, {"type": "x", "n": 1}]


def b_not_json(sequence: int) -> ReceivedEvent:
    return ReceivedEvent(stream_sequence=sequence, subject="s", data=b"{oops", event=None)


async def test_a_broken_position_file_is_a_configuration_error(tmp_path: Path) -> None:
    out = tmp_path / "broken.jsonl"
    out.with_name("broken.jsonl.pos").write_text("not json")
    with pytest.raises(ConfigurationError, match=r"broken\.jsonl\.pos"):
        async with JsonlSink(out):
            pass


async def test_cli_sink_counts_stops_on_sigterm_and_resumes(
    nats_url: str, nc: NatsClient, tmp_path: Path
) -> None:
    name = unique_name("sink-jsonl-cli")
    out = tmp_path / "cli.jsonl"
    async with serving(nats_url, sink_network(name)) as client:
        first = await run_inputs(client, name, ["one"])
        expected = await recorded_event_count(nc, name, first)
        args = ["--nats-url", nats_url, "sink", "jsonl", str(out), name]
        with nons_process([*args, "--count", str(expected)], tmp_path=tmp_path) as sink:
            await wait_until(lambda: not sink.running, timeout=30, message=sink.output)
            assert sink.process.returncode == 0, sink.output()
            assert sink.find_line(rf"{expected} events \({expected} written")
        assert len(read_lines(out)) == expected

        # Running until SIGTERM: the same (derived) consumer resumes after the first run.
        with nons_process(args, tmp_path=tmp_path, name="follow") as sink:
            await sink.wait_for_line_async(r"recording nons\.events\.", timeout=20)
            second = await run_inputs(client, name, ["two"])
            more = await recorded_event_count(nc, name, second)
            await wait_until(
                lambda: len(out.read_text().splitlines()) == expected + more,
                timeout=20,
                message=sink.output,
            )
            assert sink.stop() == 0
            assert re.search(r"stopped: signal", sink.output())
    lines = read_lines(out)
    assert len(lines) == expected + more
    assert {line["execution_id"] for line in lines} == {
        first[0].execution_id,
        second[0].execution_id,
    }
