"""Event sinks: record every execution's events somewhere durable, exactly once.

A sink reads `NONS_EVENTS` through a durable JetStream consumer and acknowledges each
batch only after its writer stored it (`run_sink`), so it resumes where it stopped and
a redelivered event is harmless. Writers: `nons.sinks.jsonl.JsonlSink` (a file) and
`nons.sinks.postgres.PostgresSink` (PostgreSQL, needs asyncpg).
"""

from __future__ import annotations

from nons.sinks._consume import (
    CONSUMER_PREFIX,
    EventWriter,
    ReceivedEvent,
    SinkSettings,
    SinkStats,
    SinkUnavailableError,
    StopReason,
    run_sink,
)
from nons.sinks.jsonl import JsonlSink

__all__ = (
    "CONSUMER_PREFIX",
    "EventWriter",
    "JsonlSink",
    "ReceivedEvent",
    "SinkSettings",
    "SinkStats",
    "SinkUnavailableError",
    "StopReason",
    "run_sink",
)
