"""A local fake of an OpenAI-compatible `POST /v1/chat/completions` endpoint.

Point `openai.AsyncOpenAI(base_url=fake.base_url)` at it (the base URL ends in `/v1`).
Same scripting and recording as `fake_anthropic`, without streaming.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_http import FakeHttpServer, RecordedRequest, ScriptedResponse

__all__ = ("FakeOpenAI", "chat_body", "chat_error_response")


def chat_body(
    text: str = "Hello from the fake chat API.",
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    prompt_tokens: int = 30,
    completion_tokens: int = 8,
    cached_tokens: int = 10,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A Chat Completions response body with one choice."""
    return {
        "id": "chatcmpl-fake-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        },
    }


def chat_error_response(status: int, message: str = "scripted failure") -> ScriptedResponse:
    """An OpenAI error envelope; `retry-after-ms: 1` keeps SDK retries fast."""
    return ScriptedResponse(
        status=status,
        body={"error": {"message": message, "type": "scripted_error", "code": None}},
        headers={"retry-after": "0", "retry-after-ms": "1", "x-request-id": f"req_{status}"},
    )


class FakeOpenAI(FakeHttpServer):
    """The fake chat API; `base_url` is what the SDK takes."""

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        if request.path != "/v1/chat/completions":
            self.requests.append(request)
            return chat_error_response(404, f"no route {request.path}")
        return super().route(request)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        model = "gpt-4o-mini-2024-07-18"
        if isinstance(request.body, dict) and isinstance(request.body.get("model"), str):
            model = request.body["model"]
        return ScriptedResponse(status=200, body=chat_body(model=model))
