"""Moved to `nons.client._client` (what callers use sits above the transport); old path kept."""

from nons.client._client import *  # noqa: F403
from nons.client._client import __all__ as __all__
