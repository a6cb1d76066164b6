"""Moved to `nons.coordinator.service`; this path keeps working for users."""

from nons.coordinator.service import *  # noqa: F403
from nons.coordinator.service import __all__ as __all__
