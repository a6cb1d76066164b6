"""Moved to `nons.cli._loading` (loading `module:attribute` targets is the CLI's job)."""

from nons.cli._loading import *  # noqa: F403
from nons.cli._loading import __all__ as __all__
