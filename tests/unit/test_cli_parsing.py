from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import pytest

from nons import cli
from nons.cli._common import EXIT_USAGE, describe_provider, parse_input, read_input
from nons.providers.settings import ProviderSettings

if TYPE_CHECKING:
    import argparse


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


def test_global_options_and_up() -> None:
    args = parse("--nats-url", "nats://h:1", "--log-level", "debug", "up", "a:b", "c.yaml")
    assert args.nats_url == "nats://h:1"
    assert args.log_level == "debug"
    assert args.targets == ["a:b", "c.yaml"]
    assert args.concurrency == 64
    assert args.no_events is False


def test_actor_nodes_repeat() -> None:
    args = parse("actor", "m:n", "--node", "a", "--node", "b", "--concurrency", "3")
    assert args.nodes == ["a", "b"]
    assert args.concurrency == 3


def test_exec_options() -> None:
    args = parse("exec", "triage", "{}", "--json", "--timeout", "2.5", "--budget", "0")
    assert (args.network, args.input, args.json) == ("triage", "{}", True)
    assert (args.timeout, args.budget) == (2.5, 0.0)


def test_events_ls_server_run() -> None:
    events = parse("events", "net", "--execution", "e1", "--count", "3", "--timeout", "1")
    assert (events.network, events.execution, events.count) == ("net", "e1", 3)
    assert parse("events").network is None
    assert parse("ls").timeout == 0.5
    server = parse("server", "--port", "0", "--max-payload", "65536")
    assert (server.port, server.max_payload) == (0, 65536)
    run = parse("run", "m:n", "hello", "--network", "x")
    assert (run.target, run.input, run.network) == ("m:n", "hello", "x")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["up"],
        ["exec", "net"],
        ["exec", "net", "x", "--timeout", "0"],
        ["exec", "net", "x", "--timeout", "nan"],
        ["exec", "net", "x", "--budget", "-1"],
        ["actor", "m:n", "--concurrency", "0"],
        ["events", "--count", "x"],
        ["server", "--port", "70000"],
        ["--log-level", "loud", "ls"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_invalid_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--nats-url", "http://nowhere", "ls"]) == EXIT_USAGE
    assert "invalid NATS URL" in capsys.readouterr().err


def test_env_url_is_read_when_no_argument(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NONS_NATS_URL", "ftp://bad")
    assert cli.main(["ls"]) == EXIT_USAGE
    assert "invalid NATS URL" in capsys.readouterr().err


def test_bad_provider_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NONS_DEFAULT_PROVIDER", "secret-value-xyz")
    assert cli.main(["ls"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "NONS_DEFAULT_PROVIDER" in err
    assert "secret-value-xyz" not in err


def test_bad_target_fails_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "no_such_module_abc:net", "x"]) == EXIT_USAGE
    assert "no module named 'no_such_module_abc'" in capsys.readouterr().err


def test_unknown_node_id_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["actor", "examples.quickstart:network", "--node", "l9-nothing"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "l9-nothing" in err
    assert "l0-transform" in err


def test_run_with_an_unknown_network_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "examples.quickstart:network", "x", "--network", "nope"]) == 2
    assert "--network nope" in capsys.readouterr().err


def test_input_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_input('{"a": 1}') == {"a": 1}
    assert parse_input("[1, 2]") == [1, 2]
    assert parse_input("42") == 42
    assert parse_input("hello world") == "hello world"
    assert parse_input("{bad json") == "{bad json"
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"input": "x"}\n'))
    assert read_input("-") == {"input": "x"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("plain text\n"))
    assert read_input("-") == "plain text"


def test_provider_description_says_mock_plainly() -> None:
    mock = describe_provider(ProviderSettings.from_env({}))
    assert "mock" in mock
    assert "ANTHROPIC_API_KEY is not set" in mock
    assert "NOT real" in mock
    real = describe_provider(ProviderSettings.from_env({"ANTHROPIC_API_KEY": "k"}))
    assert real.startswith("anthropic")
    assert "k" not in real.split("(")[0].replace("anthropic", "")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert "nons 0.1.0" in capsys.readouterr().out


def test_prompt_capture_follows_the_genai_variable() -> None:
    from nons.observability.autoconfigure import capture_content

    assert capture_content({}) is False
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}) is True
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}) is False
