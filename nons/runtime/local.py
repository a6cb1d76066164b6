"""Moved to `nons.client.local` (what callers use sits above the transport); old path kept."""

from nons.client.local import *  # noqa: F403
from nons.client.local import __all__ as __all__
