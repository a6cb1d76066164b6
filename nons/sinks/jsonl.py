"""`nons sink jsonl FILE`: append every event to a file as one JSON line, exactly once.

The simple sink: the wire JSON of each event, one per line, for `jq`, a log shipper or
a notebook. Lines are flushed (not fsynced) before the batch is acknowledged. Beside
the file, `<FILE>.pos` remembers the last written stream sequence and the file's size
after it, so a redelivered event is skipped, and lines written after the last recorded
position (a crash between the write and the record) are cut off on start and written
again when JetStream redelivers them. One process per FILE.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import msgspec

from nons.core.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from nons.sinks._consume import ReceivedEvent

__all__ = ("POSITION_SUFFIX", "JsonlPosition", "JsonlSink")

POSITION_SUFFIX = ".pos"
"""The sidecar file is the output file's name plus this suffix."""

logger = logging.getLogger("nons.sinks.jsonl")

_POSITION_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


class JsonlPosition(msgspec.Struct, frozen=True, kw_only=True):
    """What `<FILE>.pos` holds: how far the file is known to be complete."""

    stream_sequence: int = 0
    """Last stream sequence written (0: none)."""
    offset: int = 0
    """The file's size right after that event's line."""


class JsonlSink:
    """An `EventWriter` appending JSON lines to one file; use as an async context manager.

    Attributes:
        written: lines written by this instance.
        duplicates: redelivered events skipped.
        malformed: events that were not JSON, skipped.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.position_path = self.path.with_name(self.path.name + POSITION_SUFFIX)
        self.position = JsonlPosition()
        self.written = 0
        self.duplicates = 0
        self.malformed = 0
        self._file: BinaryIO | None = None

    async def __aenter__(self) -> JsonlSink:
        await asyncio.to_thread(self._open)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        file, self._file = self._file, None
        if file is not None:
            await asyncio.to_thread(file.close)

    async def write(self, events: Sequence[ReceivedEvent]) -> None:
        """Append the events not written yet, flush, then record the new position.

        Raises:
            ConfigurationError: the sink is not open.
            OSError: the file cannot be written (the batch stays unacknowledged).
        """
        if self._file is None:
            raise ConfigurationError("JsonlSink.write() outside `async with JsonlSink(...)`")
        lines: list[bytes] = []
        last = self.position.stream_sequence
        duplicates = malformed = 0
        for item in sorted(events, key=lambda item: item.stream_sequence):
            if item.stream_sequence <= last:
                duplicates += 1
                continue
            last = item.stream_sequence
            line = _line(item.data)
            if line is None:
                logger.warning("skipping event %d on %s: not JSON", last, item.subject)
                malformed += 1
            else:
                lines.append(line)
        if last > self.position.stream_sequence:
            await asyncio.to_thread(self._append, b"".join(lines), last)
        self.written += len(lines)
        self.duplicates += duplicates
        self.malformed += malformed

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = self.path.stat().st_size if self.path.exists() else 0
        recorded = self._read_position()
        # Without a position file the file's content is someone else's: append after it.
        self.position = recorded or JsonlPosition(offset=size)
        if size > self.position.offset:
            logger.warning(
                "%s: cutting %d bytes written after the last recorded event "
                "(they are delivered again)",
                self.path,
                size - self.position.offset,
            )
            os.truncate(self.path, self.position.offset)
        elif size < self.position.offset:
            logger.warning("%s is shorter than recorded (rotated?): appending to it", self.path)
            self.position = msgspec.structs.replace(self.position, offset=size)
        self._file = self.path.open("ab")

    def _read_position(self) -> JsonlPosition | None:
        try:
            raw = self.position_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return msgspec.convert(_POSITION_DECODER.decode(raw), JsonlPosition)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConfigurationError(
                f"{self.position_path} is not a position file: delete it (and the file "
                "it belongs to) to start again"
            ) from exc

    def _append(self, data: bytes, stream_sequence: int) -> None:
        assert self._file is not None
        if data:
            self._file.write(data)
            self._file.flush()
        offset = os.fstat(self._file.fileno()).st_size
        position = JsonlPosition(stream_sequence=stream_sequence, offset=offset)
        temporary = self.position_path.with_name(self.position_path.name + ".tmp")
        temporary.write_bytes(_ENCODER.encode(position) + b"\n")
        os.replace(temporary, self.position_path)
        self.position = position


def _line(data: bytes) -> bytes | None:
    """The event as one line of JSON; `None` when it is not JSON."""
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    if b"\n" in data or b"\r" in data:
        return _ENCODER.encode(value) + b"\n"  # pretty-printed by some other publisher
    return data.strip() + b"\n"
