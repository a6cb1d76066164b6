"""The exec request decoder and wire codecs, including a property test."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nons.core.errors import InvalidRequestError
from nons.core.results import ErrorInfo, NodeResult
from nons.runtime.messages import (
    ExecReply,
    ExecRequest,
    NodeCall,
    decode_exec_reply,
    decode_exec_request,
    decode_node_call,
    decode_node_reply,
    encode,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_text_is_the_input() -> None:
    assert decode_exec_request(b"some text") == ExecRequest(input="some text")


def test_request_object_is_decoded() -> None:
    request = decode_exec_request(
        b'{"input": {"a": 1}, "execution_id": "e-1", "budget_usd": 0.5, "timeout_s": 3,'
        b' "metadata": {"k": "v"}}'
    )
    assert request == ExecRequest(
        input={"a": 1}, execution_id="e-1", budget_usd=0.5, timeout_s=3.0, metadata={"k": "v"}
    )


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00", "UTF-8"),
        (b'{"input": 1, "timeout_s": "soon"}', "timeout_s"),
        (b'{"input": 1, "bogus": true}', "bogus"),
        (b'{"input": 1, "execution_id": "a.b"}', "execution_id"),
        (b'{"input": 1, "budget_usd": -1}', "budget_usd"),
        (b'{"input": ', "malformed"),
    ],
)
def test_malformed_requests_are_typed_errors(payload: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        decode_exec_request(payload)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_without_input_key_is_the_input(value: object) -> None:
    payload = json.dumps(value).encode()
    if isinstance(value, dict) and set(ExecRequest.__struct_fields__) & value.keys():
        return  # a request (or a request missing its input): covered by the cases above
    assert decode_exec_request(payload).input == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_fail_typed(payload: bytes) -> None:
    outcome: object
    try:
        outcome = decode_exec_request(payload)
    except InvalidRequestError as exc:
        outcome = exc.type
    assert isinstance(outcome, ExecRequest) or outcome == "invalid_request"


@settings(max_examples=200, deadline=None)
@given(json_values, st.one_of(st.none(), st.floats(0.001, 1e6)))
def test_request_round_trip(value: object, timeout: float | None) -> None:
    request = ExecRequest(input=value, timeout_s=timeout)
    assert decode_exec_request(encode(request)) == request


def test_node_messages_round_trip_and_reject_garbage() -> None:
    call = NodeCall(
        network="n",
        node_id="a",
        fingerprint="f",
        execution_id="e",
        layer_index=0,
        input=[1, 2],
        timeout_s=1.5,
    )
    assert decode_node_call(encode(call)) == call
    result = NodeResult(
        node_id="a",
        operator="x",
        status="failed",
        error=ErrorInfo(type="node_timeout", message="m", retryable=True),
    )
    assert decode_node_reply(encode(result)) == result
    reply = ExecReply(execution_id="e", network="n", status="completed", output="o")
    assert decode_exec_reply(encode(reply)) == reply
    for decoder in (decode_node_call, decode_node_reply, decode_exec_reply):
        with pytest.raises(InvalidRequestError):
            decoder(b'{"nope": 1}')


def test_reply_document_has_the_design_fields() -> None:
    reply = ExecReply(
        execution_id="e",
        network="n",
        status="failed",
        error=ErrorInfo(type="budget_exceeded", message="m"),
    )
    document = msgspec.json.decode(encode(reply))
    assert {
        "execution_id",
        "network",
        "status",
        "output",
        "usage",
        "cost_usd",
        "duration_ms",
        "error",
    } <= set(document)
    assert document["error"] == {"type": "budget_exceeded", "message": "m"}
