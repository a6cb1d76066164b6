"""A scripted loopback HTTP server: the base of the fake model APIs.

Runs stdlib `ThreadingHTTPServer` on 127.0.0.1, port 0, in a thread; records every
request (headers lower-cased, JSON body) and answers from a queue of scripted
responses, falling back to a default answer built by the subclass.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ("FakeHttpServer", "RecordedRequest", "ScriptedResponse", "SseEvent")


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event."""

    event: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer the server gives, in order, before falling back to its default.

    `events` makes it a `text/event-stream` answer; otherwise `body` is sent as JSON.
    `event_delay_s` paces the events (a model generating), after the first one.
    """

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: tuple[SseEvent, ...] | None = None
    event_delay_s: float = 0.0
    raw: bytes | None = None
    """Sent as is (with `content_type`) instead of `body`: a JSONL file, say."""
    content_type: str = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeHttpServer:
    """Context manager running the server; subclasses implement `default_response`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, *responses: ScriptedResponse) -> None:
        """Answer the next requests with `responses`, in order."""
        with self._lock:
            self._script.extend(responses)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        raise NotImplementedError

    def route(self, request: RecordedRequest) -> ScriptedResponse:
        """Record `request` and pick its answer (subclasses may check the path first)."""
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return scripted if scripted is not None else self.default_response(request)

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            assert not self._thread.is_alive(), "fake server thread did not stop"
        self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _handler_for(fake: FakeHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            request = RecordedRequest(
                method="GET",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=None,
            )
            self._send(fake.route(request))

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            self._send(fake.route(request))

        def _send(self, response: ScriptedResponse) -> None:
            if response.events is not None:
                self.send_response(response.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for index, event in enumerate(response.events):
                    if index and response.event_delay_s > 0:
                        time.sleep(response.event_delay_s)
                    chunk = f"event: {event.event}\ndata: {json.dumps(event.data)}\n\n"
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                self.close_connection = True
                return
            payload = (
                response.raw
                if response.raw is not None
                else json.dumps(response.body if response.body is not None else {}).encode()
            )
            self.send_response(response.status)
            self.send_header("content-type", response.content_type)
            self.send_header("content-length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
