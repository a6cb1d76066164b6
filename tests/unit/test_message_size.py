from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nons.core.errors import ConfigurationError, PayloadTooLargeError, error_class_for
from nons.runtime.connection import (
    DEFAULT_URL,
    ConnectionSettings,
    NatsUnavailableError,
    check_message_size,
    message_size,
    redact_url,
)


def test_no_headers_counts_the_payload_only() -> None:
    assert message_size(b"abc") == 3
    assert message_size(b"abc", None) == 3


def test_empty_headers_still_send_the_header_block() -> None:
    assert message_size(b"abc", {}) == 3 + len(b"NATS/1.0\r\n\r\n")


def test_each_header_adds_its_line() -> None:
    block = b"NATS/1.0\r\ntraceparent: 00-abc-01\r\nNons-Execution-Id: e1\r\n\r\n"
    headers = {"traceparent": "00-abc-01", "Nons-Execution-Id": "e1"}
    assert message_size(b"data", headers) == len(block) + 4


def test_values_are_stripped_and_encoded_as_utf8() -> None:
    assert message_size(b"", {" K ": " v\r\nw "}) == len(b"NATS/1.0\r\nK: v  w\r\n\r\n")
    assert message_size(b"", {"K": "\u00e9"}) == len(b"NATS/1.0\r\nK: ") + 2 + 2 + 2


def test_empty_header_names_are_skipped() -> None:
    assert message_size(b"", {"  ": "ignored"}) == message_size(b"", {})


token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1
)
value = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=40).filter(
    lambda text: text == text.strip()  # nats-py strips values; tested apart above
)


@given(payload=st.binary(max_size=200), headers=st.dictionaries(token, value, max_size=5))
def test_size_is_payload_plus_header_block(payload: bytes, headers: dict[str, str]) -> None:
    block = b"NATS/1.0\r\n"
    for name, text in headers.items():
        block += name.encode() + b": " + text.encode() + b"\r\n"
    block += b"\r\n"
    assert message_size(payload, headers) == len(payload) + len(block)


def test_check_passes_at_the_limit_and_fails_one_over() -> None:
    headers = {"a": "b"}
    size = message_size(b"12345", headers)
    assert check_message_size("s", b"12345", headers, size) == size
    with pytest.raises(PayloadTooLargeError) as info:
        check_message_size("nons.node.net.n1", b"12345", headers, size - 1)
    error = info.value
    assert error.type == "payload_too_large"
    assert error.details == {"subject": "nons.node.net.n1", "size": size, "limit": size - 1}
    assert "nons.node.net.n1" in str(error)


def test_nats_unavailable_error_has_a_stable_wire_type() -> None:
    error = NatsUnavailableError("down", details={"url": "nats://127.0.0.1:1"})
    assert isinstance(error, ConnectionError)
    assert error.retryable
    assert error_class_for("nats_unavailable") is NatsUnavailableError
    assert str(error) == "down"


def test_settings_defaults_bound_the_first_connect() -> None:
    settings = ConnectionSettings()
    assert settings.url == DEFAULT_URL
    assert settings.max_connect_attempts == 3
    assert settings.connect_timeout_s == 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "http://127.0.0.1:4222"},
        {"url": "nats://"},
        {"max_connect_attempts": 0},
        {"connect_timeout_s": 0},
        {"reconnect_time_wait_s": -1},
    ],
)
def test_settings_reject_values_that_would_hang(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ConnectionSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_from_env_reads_the_mapping_only() -> None:
    assert ConnectionSettings.from_env({}).url == DEFAULT_URL
    settings = ConnectionSettings.from_env({"NONS_NATS_URL": "nats://nats:4222"}, name="c")
    assert settings.url == "nats://nats:4222"
    assert settings.name == "c"


def test_invalid_url_error_hides_credentials() -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectionSettings(url="http://bob:hunter2@example:4222")
    assert "hunter2" not in str(info.value)


def test_redact_url() -> None:
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert redact_url("nats://u:p@host:4222") == "nats://***@host:4222"
    assert redact_url("tls://token@host") == "tls://***@host"
