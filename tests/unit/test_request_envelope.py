"""What a payload on `nons.exec.<network>` means: a request, an input, or a mistake."""

from __future__ import annotations

import pytest

from nons.core.errors import InvalidRequestError
from nons.runtime.messages import decode_exec_request


@pytest.mark.parametrize(
    ("payload", "fields", "unknown"),
    [
        (b'{"timeout_s": 30}', ["timeout_s"], []),
        (b'{"inputs": "x", "timeout_s": 5}', ["timeout_s"], ["inputs"]),
        (b'{"text": "x", "budget_usd": 1, "metadata": {}}', ["budget_usd", "metadata"], ["text"]),
        (b'{"execution_id": "e1"}', ["execution_id"], []),
    ],
)
def test_request_fields_without_input_are_refused_naming_what_is_missing(
    payload: bytes, fields: list[str], unknown: list[str]
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_exec_request(payload)
    assert "no 'input'" in caught.value.message
    assert 'wrap it: {"input": {...}}' in caught.value.message
    assert caught.value.details == {
        "missing": "input",
        "request_fields": fields,
        "unknown_keys": unknown,
    }


def test_an_object_without_request_fields_is_the_input_itself() -> None:
    assert decode_exec_request(b'{"text": "hi"}').input == {"text": "hi"}


def test_an_unknown_field_beside_input_is_still_refused() -> None:
    with pytest.raises(InvalidRequestError, match="bogus"):
        decode_exec_request(b'{"input": "x", "bogus": 1}')


@pytest.mark.parametrize(
    ("payload", "escape", "position"),
    [
        (b'{"input": "\\ud800"}', "\\ud800", 11),
        (b'{"input": "ok \\udc00"}', "\\udc00", 14),
        (b'"\\ud800"', "\\ud800", 1),
        (b'{"text": "a\\ud800b"}', "\\ud800", 11),
    ],
)
def test_a_lone_surrogate_is_named_with_its_position(
    payload: bytes, escape: str, position: int
) -> None:
    with pytest.raises(InvalidRequestError, match="invalid code point") as caught:
        decode_exec_request(payload)
    assert caught.value.details == {"position": position, "escape": escape}
    assert "truncated" not in caught.value.message


def test_a_complete_surrogate_pair_is_a_character() -> None:
    assert decode_exec_request(b'{"input": "\\ud83d\\ude00"}').input == "\U0001f600"
