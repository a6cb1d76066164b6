"""The fake Messages API with the Message Batches endpoints, for the real SDK's batch calls.

    POST /v1/messages/batches                 create: every request is answered at once,
                                              but the batch reads `in_progress` for
                                              `polls_before_end` retrieves
    GET  /v1/messages/batches/{id}            retrieve (request counts, results_url)
    GET  /v1/messages/batches/{id}/results    the results as JSONL, one line per request
    POST /v1/messages/batches/{id}/cancel     cancel

Answers are deterministic in the prompt, online and in a batch alike (`answer_for`), so
a test can compare the outputs of both modes. A request whose user message contains
`EXPIRE_WORD` expires, one with `ERROR_WORD` errors (`invalid_request_error`): the two
ways a batch request fails without the batch failing.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_anthropic import FakeAnthropic, error_response, message_body
from tests.support.fake_http import RecordedRequest, ScriptedResponse

__all__ = ("ERROR_WORD", "EXPIRE_WORD", "FakeBatch", "FakeMessageBatches", "answer_for")

EXPIRE_WORD = "EXPIRE-IN-BATCH"
ERROR_WORD = "ERROR-IN-BATCH"
_PREFIX = "/v1/messages/batches"


def _user_text(params: dict[str, Any]) -> str:
    messages = params.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content", "") if isinstance(last, dict) else ""
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content)


def answer_for(params: dict[str, Any]) -> str:
    """The fake model's answer to a request: the same online and in a batch."""
    return f"answer({_user_text(params)[-60:]})"


@dataclass
class FakeBatch:
    """One created batch: its requests' outcomes and how often it was polled."""

    batch_id: str
    results: list[dict[str, Any]]
    polls_left: int
    created_at: str
    canceled: bool = False
    retrieves: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.polls_left <= 0 or self.canceled


class FakeMessageBatches(FakeAnthropic):
    """`FakeAnthropic` that also serves the Message Batches API."""

    def __init__(self, api_key: str | None = None, *, polls_before_end: int = 1) -> None:
        super().__init__(api_key)
        self.polls_before_end = polls_before_end
        self.batches: dict[str, FakeBatch] = {}
        self.batch_order: list[str] = []
        self._batch_lock = threading.Lock()

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        if not request.path.startswith(_PREFIX):
            return super().route(request)
        with self._batch_lock:
            self.requests.append(request)
            return self._batch_route(request)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        body = request.body if isinstance(request.body, dict) else {}
        return ScriptedResponse(body=self._message(body))

    @property
    def batch_request_count(self) -> int:
        """Requests submitted in batches, all batches together."""
        return sum(len(batch.results) for batch in self.batches.values())

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        return message_body(
            answer_for(params),
            model=str(params.get("model") or "claude-haiku-4-5-20251001"),
            input_tokens=1000,
            output_tokens=200,
            cache_read_input_tokens=0,
            cache_creation_input_tokens=0,
            message_id=f"msg_{uuid.uuid4().hex[:16]}",
        )

    def _batch_route(self, request: RecordedRequest) -> ScriptedResponse:
        rest = request.path[len(_PREFIX) :].split("?")[0].strip("/")
        if request.method == "POST" and rest == "":
            return self._create(request.body if isinstance(request.body, dict) else {})
        batch_id, _, action = rest.partition("/")
        batch = self.batches.get(batch_id)
        if batch is None:
            return error_response(404, "not_found_error", f"no batch {batch_id}")
        if request.method == "GET" and action == "":
            batch.retrieves += 1
            batch.polls_left -= 1
            return ScriptedResponse(body=self._batch_body(batch))
        if request.method == "GET" and action == "results":
            if not batch.ended:
                return error_response(400, "invalid_request_error", "batch still in progress")
            lines = [json.dumps(line) for line in batch.results]
            return ScriptedResponse(
                raw=("\n".join(lines) + "\n").encode(), content_type="application/binary"
            )
        if request.method == "POST" and action == "cancel":
            batch.canceled = True
            return ScriptedResponse(body=self._batch_body(batch))
        return error_response(404, message=f"no route {request.path}")

    def _create(self, body: dict[str, Any]) -> ScriptedResponse:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return error_response(400, "invalid_request_error", "requests: at least one")
        results = []
        for item in requests:
            params = item.get("params") or {}
            text = _user_text(params)
            if EXPIRE_WORD in text:
                outcome: dict[str, Any] = {"type": "expired"}
            elif ERROR_WORD in text:
                outcome = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": "invalid_request_error", "message": "bad request"},
                    },
                }
            else:
                outcome = {"type": "succeeded", "message": self._message(params)}
            results.append({"custom_id": item.get("custom_id"), "result": outcome})
        batch = FakeBatch(
            batch_id=f"msgbatch_{uuid.uuid4().hex[:20]}",
            results=results,
            polls_left=self.polls_before_end,
            created_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        self.batches[batch.batch_id] = batch
        self.batch_order.append(batch.batch_id)
        return ScriptedResponse(body=self._batch_body(batch))

    def _batch_body(self, batch: FakeBatch) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.ended:
            for line in batch.results:
                kind = "canceled" if batch.canceled else line["result"]["type"]
                counts[kind] += 1
        else:
            counts["processing"] = len(batch.results)
        created = dt.datetime.fromisoformat(batch.created_at)
        return {
            "id": batch.batch_id,
            "type": "message_batch",
            "processing_status": "ended" if batch.ended else "in_progress",
            "request_counts": counts,
            "created_at": batch.created_at,
            "expires_at": (created + dt.timedelta(hours=24)).isoformat(),
            "ended_at": dt.datetime.now(dt.UTC).isoformat() if batch.ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.origin}{_PREFIX}/{batch.batch_id}/results"
            if batch.ended
            else None,
        }
