"""Large payloads by reference: values over a threshold travel through the object store.

A NATS message is capped by the server's `max_payload` (1 MiB by default). An input,
a node output or a reply above `threshold` bytes of JSON is put in the JetStream
object store bucket `NONS_PAYLOADS` and replaced, where the value would be, by a
reference any client can resolve:

    {"$nons_ref": {"bucket": "NONS_PAYLOADS", "name": "<execution>.<what>", "size": <bytes>}}

The object holds the value's JSON. Coordinators, actors and `nons.connect()` clients
resolve references transparently; objects expire with the bucket's TTL (the
durability retention).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig, StorageType

from nons.core.errors import InvalidRequestError, PayloadTooLargeError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.object_store import ObjectStore

__all__ = ("PAYLOAD_BUCKET", "REF_KEY", "Payloads", "is_ref")

PAYLOAD_BUCKET = "NONS_PAYLOADS"
REF_KEY = "$nons_ref"

_KNOWN = 8
"""Recent values kept with their references, so a value passed on (a node's output as the
next layer's input, an echo) is not uploaded again."""

_CHUNK = 512 * 1024
"""Object chunk size (the client's default of 128 KiB makes a large download four times
as many round trips); halved until it fits the server's max_payload."""

DEFAULT_THRESHOLD = 256 * 1024
"""Values above this (bytes of JSON) go by reference, or a quarter of max_payload if less."""

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()

logger = logging.getLogger("nons.runtime")


class _Ref(msgspec.Struct, frozen=True, kw_only=True):
    bucket: str
    name: str
    size: int = 0


_REF = msgspec.json.Decoder(_Ref)


def is_ref(value: Any) -> bool:
    """`value` is a payload reference (a one-key object `{"$nons_ref": {...}}`)."""
    return type(value) is dict and len(value) == 1 and REF_KEY in value


class Payloads:
    """Puts large values in the object store and resolves references to them."""

    def __init__(self, nc: Client, *, retention_s: float = 24 * 3600.0) -> None:
        self.nc = nc
        self.retention_s = retention_s
        self.threshold = min(DEFAULT_THRESHOLD, max(nc.max_payload // 4, 1024))
        self._store: ObjectStore | None = None
        self._unavailable = False
        self._known: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._chunk = _CHUNK
        while self._chunk > 16 * 1024 and self._chunk > nc.max_payload // 2:
            self._chunk //= 2

    async def _bucket(self) -> ObjectStore | None:
        if self._store is None and not self._unavailable:
            js = self.nc.jetstream()
            try:
                try:
                    self._store = await js.object_store(PAYLOAD_BUCKET)
                except nats.js.errors.BucketNotFoundError:
                    self._store = await js.create_object_store(
                        PAYLOAD_BUCKET,
                        config=ObjectStoreConfig(
                            ttl=self.retention_s,
                            storage=StorageType.FILE,
                            description="NoN payloads too large for one message",
                        ),
                    )
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                logger.info("no object store for large payloads: %s", exc)
                self._unavailable = True
        return self._store

    async def offload(self, name: str, data: bytes) -> Any:
        """Store `data` (a value's JSON) as `name`; the reference to put in its place.

        Raises:
            PayloadTooLargeError: no object store (no JetStream): today's typed error.
        """
        store = await self._bucket()
        if store is None:
            raise PayloadTooLargeError(
                f"a {len(data)}-byte payload needs the JetStream object store "
                f"({PAYLOAD_BUCKET}), which this server does not have",
                details={"size": len(data), "bucket": PAYLOAD_BUCKET},
            )
        meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=self._chunk))
        await store.put(name, data, meta=meta)
        return {REF_KEY: {"bucket": PAYLOAD_BUCKET, "name": name, "size": len(data)}}

    def known_ref(self, value: Any) -> Any | None:
        """The reference `value` came by or went out as recently, if any."""
        known = self._known.get(id(value))
        return known[1] if known is not None and known[0] is value else None

    def _remember(self, value: Any, ref: Any) -> None:
        self._known[id(value)] = (value, ref)
        self._known.move_to_end(id(value))
        while len(self._known) > _KNOWN:
            self._known.popitem(last=False)

    async def offload_if_large(self, name: str, data: bytes, value: Any) -> tuple[Any, bool]:
        """(`value` or its reference, whether it was offloaded) for a value whose JSON is `data`."""
        if len(data) <= self.threshold:
            return value, False
        ref = self.known_ref(value)
        if ref is None:
            ref = await self.offload(name, data)
            self._remember(value, ref)
        return ref, True

    async def resolve(self, value: Any) -> Any:
        """The value a reference names (anything else as is).

        Raises:
            InvalidRequestError: a malformed reference, or one naming no object.
        """
        if not is_ref(value):
            return value
        try:
            ref = _REF.decode(_ENCODER.encode(value[REF_KEY]))
        except msgspec.ValidationError as exc:
            raise InvalidRequestError(f"malformed payload reference: {exc}") from None
        store = self._store if ref.bucket == PAYLOAD_BUCKET else None
        if store is None:
            try:
                store = await self.nc.jetstream().object_store(ref.bucket)
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                raise InvalidRequestError(
                    f"payload reference to bucket {ref.bucket!r} cannot be read: {exc}",
                    details={"bucket": ref.bucket, "name": ref.name},
                ) from None
            if ref.bucket == PAYLOAD_BUCKET:
                self._store = store
        try:
            result = await store.get(ref.name)
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise InvalidRequestError(
                f"payload reference {ref.bucket}/{ref.name} names no object: {exc}",
                details={"bucket": ref.bucket, "name": ref.name},
            ) from None
        try:
            resolved = _DECODER.decode(result.data or b"null")
        except msgspec.DecodeError as exc:
            raise InvalidRequestError(f"payload {ref.name} is not JSON: {exc}") from None
        self._remember(resolved, value)
        return resolved
