"""A local fake of the Anthropic Messages API (`POST /v1/messages`) for the real SDK.

Point `anthropic.AsyncAnthropic(base_url=fake.base_url)` at it. It answers from a
queue of scripted responses (status, JSON body, headers), then with a default
message; it records every request; and it turns a 200 message into the SSE event
sequence of the streaming API when the request says `"stream": true`.

    with FakeAnthropic() as fake:
        fake.enqueue(error_response(429, "rate_limit_error", "slow down"))
        ...  # call the SDK with base_url=fake.base_url
        assert len(fake.requests) == 2

A request that forces a tool (`tool_choice: {"type": "tool", "name": ...}`) is answered
with a `tool_use` block of that tool when the fake was given its `tool_inputs`.

Prompt caching works as the API documents it: a default answer to a request with
`cache_control` blocks bills the prefix up to its last breakpoint (tools, system,
messages, in that order, at four characters a token) as `cache_creation_input_tokens`
when it is new, as `cache_read_input_tokens` when an earlier request wrote it within
the TTL (five minutes, refreshed by a read; `advance()` moves the fake's clock), and
the rest as `input_tokens`; a prefix shorter than the model's minimum (1024 tokens,
2048 for Haiku) is not cached. An entry becomes readable only once the answer that
wrote it has started (after `latency_s`), so concurrent requests all write, as on
the real API. `cache_log` records each marked request's accounting and timing. With
`count_tokens`, an unmarked request is billed by its size as well (all `input_tokens`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.support.fake_http import FakeHttpServer, RecordedRequest, ScriptedResponse, SseEvent

__all__ = (
    "DEFAULT_TEXT",
    "CacheRecord",
    "FakeAnthropic",
    "error_response",
    "message_body",
    "message_response",
    "stream_events",
    "tool_use_body",
    "tool_use_response",
)

DEFAULT_TEXT = "Hello from the fake Messages API."

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class CacheRecord:
    """How the fake billed one request that carried `cache_control` blocks."""

    received_at: float
    """`time.monotonic()` when the request arrived."""
    input_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    answered_at: float | None = None
    """When the answer started (its headers, or the first event of a stream)."""
    finished_at: float | None = None
    """When its last event was due (`answered_at` for an answer that is not streamed)."""


@dataclass
class _Entry:
    available_at: float
    expires_at: float


def message_body(
    text: str = DEFAULT_TEXT,
    *,
    model: str = "claude-haiku-4-5-20251001",
    input_tokens: int = 12,
    output_tokens: int = 7,
    cache_read_input_tokens: int | None = 100,
    cache_creation_input_tokens: int | None = 20,
    stop_reason: str = "end_turn",
    message_id: str = "msg_fake_0001",
) -> dict[str, Any]:
    """A Messages API response body with one text block."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
        },
    }


def message_response(text: str = DEFAULT_TEXT, **fields: Any) -> ScriptedResponse:
    """A 200 answer carrying `message_body(text, **fields)`."""
    return ScriptedResponse(status=200, body=message_body(text, **fields))


def tool_use_body(name: str, tool_input: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Messages API response body whose one block is a call of tool `name`."""
    body = message_body(**{"stop_reason": "tool_use", **fields})
    body["content"] = [
        {"type": "tool_use", "id": "toolu_fake_0001", "name": name, "input": tool_input}
    ]
    return body


def tool_use_response(name: str, tool_input: dict[str, Any], **fields: Any) -> ScriptedResponse:
    """A 200 answer carrying `tool_use_body(name, tool_input, **fields)`."""
    return ScriptedResponse(status=200, body=tool_use_body(name, tool_input, **fields))


def error_response(
    status: int,
    error_type: str | None = None,
    message: str = "scripted failure",
    *,
    headers: dict[str, str] | None = None,
) -> ScriptedResponse:
    """An API error envelope; `retry-after: 0` (and 1 ms) keeps SDK retries fast."""
    all_headers = {"retry-after": "0", "retry-after-ms": "1", "request-id": f"req_fake_{status}"}
    all_headers.update(headers or {})
    return ScriptedResponse(
        status=status,
        body={
            "type": "error",
            "error": {
                "type": error_type or _ERROR_TYPES.get(status, "api_error"),
                "message": message,
            },
        },
        headers=all_headers,
    )


def stream_events(body: dict[str, Any], chunk_size: int = 6) -> tuple[SseEvent, ...]:
    """The SSE sequence the streaming API sends for the message `body`."""
    usage = body["usage"]
    if any(block["type"] != "text" for block in body["content"]):
        return _block_events(body, chunk_size)
    text = "".join(block["text"] for block in body["content"] if block["type"] == "text")
    start_message = {
        **body,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events = [
        SseEvent("message_start", {"type": "message_start", "message": start_message}),
        SseEvent(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        SseEvent("ping", {"type": "ping"}),
    ]
    for start in range(0, len(text), chunk_size):
        events.append(
            SseEvent(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text[start : start + chunk_size]},
                },
            )
        )
    events += [
        SseEvent("content_block_stop", {"type": "content_block_stop", "index": 0}),
        SseEvent(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        SseEvent("message_stop", {"type": "message_stop"}),
    ]
    return tuple(events)


def _block_events(body: dict[str, Any], chunk_size: int) -> tuple[SseEvent, ...]:
    """The SSE sequence of a message with tool_use blocks (their input as JSON deltas)."""
    usage = body["usage"]
    start_message = {**body, "content": [], "stop_reason": None}
    start_message["usage"] = {**usage, "output_tokens": 1}
    events = [SseEvent("message_start", {"type": "message_start", "message": start_message})]
    for index, block in enumerate(body["content"]):
        if block["type"] == "text":
            opening, delta_type, key, whole = (
                {**block, "text": ""},
                "text_delta",
                "text",
                block["text"],
            )
        else:
            opening, delta_type, key = {**block, "input": {}}, "input_json_delta", "partial_json"
            whole = json.dumps(block["input"])
        events.append(
            SseEvent(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        for start in range(0, len(whole), chunk_size):
            delta = {"type": delta_type, key: whole[start : start + chunk_size]}
            events.append(
                SseEvent(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(
            SseEvent("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    events += [
        SseEvent(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        SseEvent("message_stop", {"type": "message_stop"}),
    ]
    return tuple(events)


class FakeAnthropic(FakeHttpServer):
    """The fake Messages API; `base_url` is what the SDK takes.

    With `api_key`, a request that carries neither `x-api-key: <key>` nor
    `authorization: Bearer <key>` (SDK 2.x sends the latter) gets a 401.
    With `tool_inputs` (tool name -> input), a request whose `tool_choice` forces one
    of those tools gets, by default, a `tool_use` block calling it with that input.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        tool_inputs: dict[str, dict[str, Any]] | None = None,
        latency_s: float = 0.0,
        cache_ttl_s: float = 300.0,
        count_tokens: bool = False,
        stream_delay_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.tool_inputs = dict(tool_inputs or {})
        self.latency_s = latency_s
        """Seconds each message request waits before it is answered (model latency)."""
        self.cache_ttl_s = cache_ttl_s
        self.count_tokens = count_tokens
        self.stream_delay_s = stream_delay_s
        """Seconds between the events of a streamed answer (after `latency_s` to the first)."""
        """Bill a request without `cache_control` by its size too (default: fixed usage)."""
        self.cache_log: list[CacheRecord] = []
        self._cache: dict[str, _Entry] = {}
        self._cache_lock = threading.Lock()
        self._offset = 0.0
        self._local = threading.local()
        """The `CacheRecord` of the request this handler thread is answering."""

    def now(self) -> float:
        """The fake's clock: `time.monotonic()` plus what `advance` added."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on, e.g. past the cache TTL."""
        self._offset += seconds

    def cache_totals(self) -> tuple[int, int, int]:
        """Input, cache-read and cache-write tokens of every marked request so far."""
        with self._cache_lock:
            records = list(self.cache_log)
        return (
            sum(r.input_tokens for r in records),
            sum(r.cache_read_input_tokens for r in records),
            sum(r.cache_creation_input_tokens for r in records),
        )

    @property
    def base_url(self) -> str:
        return self.origin

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/v1/messages")]

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        if not request.path.startswith("/v1/messages"):
            self.requests.append(request)
            return error_response(404, message=f"no route {request.path}")
        if self.api_key is not None and self.api_key not in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ):
            self.requests.append(request)
            return error_response(401, message="invalid x-api-key")
        self._local.record = None
        response = super().route(request)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        record = self._local.record
        if record is not None:
            with self._cache_lock:
                record.answered_at = self.now()
        wants_stream = isinstance(request.body, dict) and request.body.get("stream") is True
        if wants_stream and response.status == 200 and response.events is None and response.body:
            events = stream_events(response.body)
            if record is not None and record.answered_at is not None:
                record.finished_at = record.answered_at + (len(events) - 1) * self.stream_delay_s
            return ScriptedResponse(
                status=200,
                headers=response.headers,
                events=events,
                event_delay_s=self.stream_delay_s,
            )
        if record is not None:
            record.finished_at = record.answered_at
        return response

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        model = "claude-haiku-4-5-20251001"
        if isinstance(request.body, dict) and isinstance(request.body.get("model"), str):
            model = request.body["model"]
        usage: dict[str, Any] = (
            self._cache_usage(request.body, model) if isinstance(request.body, dict) else {}
        )
        forced = request.body.get("tool_choice") if isinstance(request.body, dict) else None
        if isinstance(forced, dict) and forced.get("type") == "tool":
            name = forced.get("name")
            if isinstance(name, str) and name in self.tool_inputs:
                return tool_use_response(name, self.tool_inputs[name], model=model, **usage)
        return message_response(model=model, **usage)

    def _cache_usage(self, body: dict[str, Any], model: str) -> dict[str, int]:
        """The usage fields of a request with `cache_control` blocks (none otherwise)."""
        segments = _segments(body)
        if not any(marked for _, _, marked in segments):
            if not self.count_tokens:
                return {}
            tokens = sum(tokens for _, tokens, _ in segments)
            return {
                "input_tokens": tokens,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            }
        minimum = 2048 if "haiku" in model else 1024
        digest = hashlib.sha256()
        total = 0
        breakpoints: list[tuple[int, str]] = []
        for text, tokens, marked in segments:
            digest.update(text.encode())
            total += tokens
            if marked and total >= minimum:
                breakpoints.append((total, digest.copy().hexdigest()))
        with self._cache_lock:
            now = self.now()
            read = 0
            for tokens, key in breakpoints:
                entry = self._cache.get(key)
                if entry is not None and entry.available_at <= now < entry.expires_at:
                    read = tokens
                    entry.expires_at = now + self.cache_ttl_s
            written = breakpoints[-1][0] - read if breakpoints else 0
            for tokens, key in breakpoints:
                entry = self._cache.get(key)
                if tokens > read and (entry is None or entry.expires_at <= now):
                    start = now + self.latency_s
                    self._cache[key] = _Entry(start, start + self.cache_ttl_s)
            record = CacheRecord(
                received_at=now,
                input_tokens=total - read - written,
                cache_read_input_tokens=read,
                cache_creation_input_tokens=written,
            )
            self.cache_log.append(record)
        self._local.record = record
        return {
            "input_tokens": record.input_tokens,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        }


def _segments(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """The prompt in cache order (tools, system, messages): text, tokens, breakpoint."""
    pieces: list[tuple[str, bool]] = []
    tools = body.get("tools") or []
    if tools:
        pieces.append((json.dumps(tools), "cache_control" in tools[-1]))
    system = body.get("system")
    if isinstance(system, str):
        pieces.append((system, False))
    elif isinstance(system, list):
        pieces += [(block.get("text", ""), "cache_control" in block) for block in system]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            pieces.append((content, False))
        elif isinstance(content, list):
            for block in content:
                text = block.get("text") if block.get("type") == "text" else json.dumps(block)
                pieces.append((str(text), "cache_control" in block))
    return [(text, math.ceil(len(text) / 4), marked) for text, marked in pieces]
