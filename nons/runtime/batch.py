"""Moved to `nons.client.batch` (what callers use sits above the transport); old path kept."""

from nons.client.batch import *  # noqa: F403
from nons.client.batch import __all__ as __all__
