"""Moved to `nons.resilience.settings`; this path stays, as the README documents it."""

from nons.resilience.settings import *  # noqa: F403
from nons.resilience.settings import __all__ as __all__
