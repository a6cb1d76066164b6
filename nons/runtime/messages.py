"""Wire messages of the exec and node subjects, their codecs and the request decoder.

Codecs are built once at import; the exec request decoder accepts what any NATS client
may send (`nats req nons.exec.triage "some text"`) and turns anything malformed into a
typed `InvalidRequestError` instead of an exception in a subscription callback.
Inputs nest at most `MAX_NESTING_DEPTH` deep: a deeper one is refused as invalid
rather than overflowing the interpreter's stack in a decoder, a schema validator or a
prompt template (Python recursion), where it would surface as an internal error.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from nons.core.deadlines import Limit
from nons.core.errors import InvalidNameError, InvalidRequestError
from nons.core.modes import ExecutionMode
from nons.core.names import validate_token
from nons.core.results import ErrorInfo, ExecutionStatus, LayerResult, NodeResult
from nons.core.types import ModelConfig, TokenUsage

__all__ = (
    "DEPTH_HEADER",
    "EXECUTION_ID_HEADER",
    "FINGERPRINT_HEADER",
    "MAX_NESTING_DEPTH",
    "ExecReply",
    "ExecRequest",
    "NodeCall",
    "decode_exec_reply",
    "decode_exec_request",
    "decode_node_call",
    "decode_node_reply",
    "encode",
)

EXECUTION_ID_HEADER = "Nons-Execution-Id"
"""Header carrying the execution id on every message of an execution."""

FINGERPRINT_HEADER = "Nons-Spec-Fingerprint"
"""Header a caller may set to insist on one definition of the network."""

DEPTH_HEADER = "Nons-Depth"
"""Header carrying how deep a sub-network call is nested."""

MAX_NESTING_DEPTH = 128
"""Deepest nesting of arrays and objects an input may have (serde_json's default)."""


class ExecRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request on `nons.exec.<network>`."""

    input: Any
    """The network's input: text or any JSON value."""
    execution_id: str | None = None
    """Caller-chosen id (a subject token); generated when absent."""
    budget_usd: float | None = None
    """Spending limit of this execution."""
    timeout_s: float | None = None
    """Deadline of this execution in seconds."""
    metadata: dict[str, str] | None = None
    """Caller's labels, echoed in events."""
    durable: bool | None = None
    """Record the execution in JetStream so it survives its coordinator (None: the
    network's `NetworkConfig.durable`)."""
    mode: ExecutionMode | None = None
    """`batch`: model calls go to Message Batches (half price, within 24 h); `None` or
    `online`: one API call each."""

    def __post_init__(self) -> None:
        if self.execution_id is not None and not _is_token(self.execution_id):
            raise ValueError("execution_id must be 1-128 letters, digits, '-' or '_'")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        if self.budget_usd is not None and not self.budget_usd >= 0:
            raise ValueError("budget_usd must be >= 0")


class ExecReply(msgspec.Struct, frozen=True, kw_only=True):
    """The reply on `nons.exec.<network>`, whatever happened."""

    execution_id: str
    """Id of the execution."""
    network: str
    """Name of the network."""
    status: ExecutionStatus
    """`completed`, `failed` or `partial`."""
    output: Any = None
    """The last layer's output (`None` when failed)."""
    usage: TokenUsage = TokenUsage()
    """Tokens of all node calls."""
    cost_usd: float = 0.0
    """Cost of all node calls."""
    duration_ms: float = 0.0
    """Wall time at the coordinator."""
    error: ErrorInfo | None = None
    """Why it failed or is partial."""
    trace_id: str | None = None
    """W3C trace id of the execution."""
    is_mock: bool = False
    """True when any output came from the offline mock provider."""
    layers: list[LayerResult] = msgspec.field(default_factory=list)
    """Per-layer results."""


class NodeCall(msgspec.Struct, frozen=True, kw_only=True):
    """A request on `nons.node.<network>.<node_id>`: run the node once."""

    network: str
    """Network name."""
    node_id: str
    """Node to run."""
    fingerprint: str
    """Spec fingerprint the coordinator holds; an actor holding another refuses."""
    execution_id: str
    """Execution the call belongs to."""
    layer_index: int
    """Layer of the node."""
    attempt: int = 1
    """1 for the first try, then 2, 3..."""
    input: Any = None
    """The node's input."""
    timeout_s: float | None = None
    """Time the coordinator will wait; the actor gives up after it too."""
    timeout_limit: Limit = "node"
    """Which limit `timeout_s` is (`node`, `layer` or `execution`): the actor names its
    timeout by it, so both sides report the limit that ran out, not the timer that fired."""
    timeout_limit_s: float | None = None
    """The configured length of that limit, for the timeout error's details."""
    model: ModelConfig | None = None
    """Model override (fallback model, cost-based routing)."""
    durable: bool = False
    """Part of a durable execution: the actor claims the call and records its result in
    JetStream (`NONS_CALLS`) before replying, so a resuming coordinator never pays twice."""
    batch: bool = False
    """The execution runs in batch mode: the node's model calls wait in a Message Batch
    (no node timeout; the actor holds no concurrency slot while they wait)."""


_ENCODER = msgspec.json.Encoder()
_REQUEST_DECODER = msgspec.json.Decoder(ExecRequest)
_ANY_DECODER = msgspec.json.Decoder()
_NODE_CALL_DECODER = msgspec.json.Decoder(NodeCall)
_NODE_REPLY_DECODER = msgspec.json.Decoder(NodeResult)
_EXEC_REPLY_DECODER = msgspec.json.Decoder(ExecReply)


def encode(message: object) -> bytes:
    """JSON bytes of any wire message."""
    return _ENCODER.encode(message)


def decode_exec_request(payload: bytes) -> ExecRequest:
    """Decode what a client sent on `nons.exec.<network>`.

    A JSON object with an `input` key is a request; any other payload (plain text,
    another JSON value, an object without `input`) is the input itself, except an
    object that carries a request field (`timeout_s`, `budget_usd`, `execution_id`,
    `metadata`) but no `input`: that is a request with a mistake, refused so that a
    limit the caller asked for is never dropped silently.

    Raises:
        InvalidRequestError: empty payload, invalid UTF-8, a string with a lone UTF-16
            surrogate, a request object whose fields have wrong types or are unknown,
            request fields without `input`, or an input nested deeper than
            `MAX_NESTING_DEPTH`.
    """
    if not payload:
        raise InvalidRequestError("empty request: send the input as text or JSON")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"request is not valid UTF-8 (byte {exc.start})", details={"position": exc.start}
        ) from None
    try:
        request = _decode_request(payload, text)
    except RecursionError:
        raise _too_deep() from None
    _check_nesting(payload, request.input)
    return request


def _decode_request(payload: bytes, text: str) -> ExecRequest:
    if payload[:1] == b"{":
        try:
            return _REQUEST_DECODER.decode(payload)
        except msgspec.ValidationError as exc:
            value = _decode_any(payload, text)
            if isinstance(value, dict) and "input" in value:
                raise InvalidRequestError(f"invalid request: {exc}") from None
            if isinstance(value, dict) and _REQUEST_FIELDS & value.keys():
                raise _missing_input(value) from None
            return ExecRequest(input=value)
        except msgspec.DecodeError as exc:
            _refuse_lone_surrogate(text)
            raise InvalidRequestError(f"request looks like JSON but is malformed: {exc}") from None
    return ExecRequest(input=_decode_any(payload, text))


_REQUEST_FIELDS = frozenset(ExecRequest.__struct_fields__) - {"input"}
"""Fields that make an object a request rather than an input."""

_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
"""A `\\uD800`-`\\uDFFF` escape that is not half of a surrogate pair."""


def _missing_input(value: dict[str, Any]) -> InvalidRequestError:
    fields = sorted(_REQUEST_FIELDS & value.keys())
    unknown = sorted(value.keys() - _REQUEST_FIELDS)
    message = f"request has {', '.join(fields)} but no 'input'"
    if unknown:
        message += f"; unknown keys: {', '.join(unknown)}"
    message += (
        '. Send {"input": ..., ' + ", ".join(f'"{f}": ...' for f in fields) + "}"
        '; to run an object as the input itself, wrap it: {"input": {...}}'
    )
    return InvalidRequestError(
        message, details={"missing": "input", "request_fields": fields, "unknown_keys": unknown}
    )


def _refuse_lone_surrogate(text: str) -> None:
    """Raise for a JSON string escape that names no character (half a surrogate pair)."""
    match = _LONE_SURROGATE.search(text)
    if match is not None:
        position = len(text[: match.start()].encode("utf-8"))
        raise InvalidRequestError(
            f"request holds an invalid code point: {match.group()} at byte {position} is a "
            "lone UTF-16 surrogate (half of a pair), which is no character; "
            "send the character itself or a complete surrogate pair",
            details={"position": position, "escape": match.group()},
        )


def decode_exec_reply(payload: bytes) -> ExecReply:
    """Decode a coordinator's reply.

    Raises:
        InvalidRequestError: the payload is not an exec reply.
    """
    try:
        return _EXEC_REPLY_DECODER.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"malformed exec reply: {exc}") from None


def decode_node_call(payload: bytes) -> NodeCall:
    """Decode a node call.

    Raises:
        InvalidRequestError: naming the field that is wrong (or invalid UTF-8 in a
            string, which msgspec reports as a `UnicodeDecodeError`), or an input
            nested deeper than `MAX_NESTING_DEPTH`.
    """
    try:
        call = _NODE_CALL_DECODER.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"malformed node call: {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    _check_nesting(payload, call.input)
    return call


def decode_node_reply(payload: bytes) -> NodeResult:
    """Decode an actor's reply.

    Raises:
        InvalidRequestError: the payload is not a node result.
    """
    try:
        return _NODE_REPLY_DECODER.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"malformed node reply: {exc}") from None


def _check_nesting(payload: bytes, value: Any) -> None:
    """Refuse a decoded input nested deeper than `MAX_NESTING_DEPTH`.

    Nesting needs an opening bracket per level, so a payload with few brackets (text,
    flat objects: nearly all) is passed by two byte counts at C speed; only the rest
    is walked, iteratively.
    """
    if payload.count(b"[") + payload.count(b"{") <= MAX_NESTING_DEPTH:
        return
    if not isinstance(value, (dict, list)):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise _too_deep()
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(
        f"input nests arrays or objects deeper than {MAX_NESTING_DEPTH} levels",
        details={"max_depth": MAX_NESTING_DEPTH},
    )


def _is_token(value: str) -> bool:
    try:
        validate_token(value)
    except InvalidNameError:
        return False
    return True


def _decode_any(payload: bytes, text: str) -> Any:
    try:
        return _ANY_DECODER.decode(payload)
    except msgspec.DecodeError:
        if payload[:1] in (b'"', b"[", b"{"):
            _refuse_lone_surrogate(text)
        return text
